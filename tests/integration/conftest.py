"""Fixtures for the integration tests: the model, fast timeouts, entries on real sources."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
import functools
import inspect
import json
import logging
import math
from pathlib import Path
import socket
import threading
import time
from typing import Any

import av
from homeassistant import block_async_io
from homeassistant.config_entries import OptionsFlow
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowHandler
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed

from custom_components.sound_sentry import const
from custom_components.sound_sentry.const import (
    DOMAIN,
    EVENT_CLASSES,
)
from custom_components.sound_sentry.engine import model as engine_model
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from custom_components.sound_sentry.engine.sources import UdpPcmSource
from custom_components.sound_sentry.engine.sources.av_sources import _PyAvSource
from tests.audio import (
    RATE_HZ,
    OfflineEngine,
    UdpMicrophone,
    background_bed,
    clip_paths,
    event_scene,
    free_udp_port,
    read_clip,
)
from tests.entries import TEST_MODEL, udp_entry
from tests.peers import RtspServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RANDOM_MODEL = FIXTURES / "resnetse_random.onnx"


@pytest.fixture(autouse=True)
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short waits, so that failures show within seconds."""
    monkeypatch.setattr(const, "PROBE_TIMEOUT_S", 3.0)
    monkeypatch.setattr(const, "OPEN_TIMEOUT_S", 3.0)
    monkeypatch.setattr(const, "READ_TIMEOUT_S", 2.0)


@pytest.fixture
def model_path() -> Path:
    """The shipped file of the test entries' model."""
    return engine_model.model_path(TEST_MODEL)


async def wait_for(hass: HomeAssistant, condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Let the loop run until `condition()` holds (audio arrives from real threads in real time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
        await hass.async_block_till_done()


RUNNER_LOGGER = "custom_components.sound_sentry.engine.sources.runner"


async def wait_for_retries(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture, entry: MockConfigEntry, count: int
) -> None:
    """Let the entry's source thread fail `count` more connection attempts (its backoff grows each time).

    The source thread retries in real time against a real peer: this waits for the attempts it logs
    ("next attempt in ..."), not for a fixed number of seconds. Needs the runner's debug logging.
    """
    caplog.set_level(logging.DEBUG, logger=RUNNER_LOGGER)

    def retries() -> int:
        text = f"{entry.entry_id}: next attempt in"  # the runner is named sound_sentry_source_<entry id>
        return sum(1 for r in caplog.records if r.name == RUNNER_LOGGER and text in r.getMessage())

    target = retries() + count
    await wait_for(hass, lambda: retries() >= target, timeout_s=30)


def fire_repair_timer(hass: HomeAssistant) -> None:
    """Move Home Assistant's clock past the repair delay (const.REPAIR_AFTER_S, a Home Assistant timer)."""
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(seconds=const.REPAIR_AFTER_S + 1))


# -- Detection plan: which real clips the installed model detects, and at which thresholds ------------

LEAD_S = 3.0
"""Room background before the event in a scene (the connection settles)."""
MIN_LOGIT_MARGIN = 2.0
"""How far apart (in log-odds) a scene's detection and everything that must not trigger have to be."""
GOOD_LOGIT_MARGIN = 4.0
"""A candidate clip this clear is taken at once (the search stops)."""
MAX_CANDIDATES = 25


@dataclass(frozen=True)
class Scene:
    """A test-split event clip in the room background, as a stream plays it from its start."""

    label: str
    clip: str
    samples: npt.NDArray[np.float32]
    start_s: float
    end_s: float


@dataclass(frozen=True)
class DetectionPlan:
    """Per-class thresholds between what must and what must not trigger, derived from the installed model."""

    thresholds: dict[str, float]
    scenes: dict[str, Scene]
    background: npt.NDArray[np.float32]
    table: str
    """How each threshold was derived (printed on failure)."""


def _logit(p: float) -> float:
    p = min(max(p, 1e-7), 1 - 1e-7)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def derive_detection_plan(data_dir: Path, model_file: Path) -> DetectionPlan:
    """Choose one scene per class that the engine detects offline, and thresholds with a margin.

    Offline, on the 8 kHz recordings, with every quarter-hop offset of the window grid: a scene's
    strength is the lowest (over offsets) k-of-n vote of its class; what must not trigger is the highest
    probability of the class in the background and in the other classes' scenes. The threshold sits
    half-way between the two in log-odds, rounded to the slider's 0.001 step. Then the engine's own
    detector confirms: each scene starts and ends exactly one event of its class, the background none.
    """
    engine = OfflineEngine(model_file)
    info = engine.info
    window_s = info.window_samples / info.sample_rate_hz
    tail_s = window_s + info.hold_s + 1.5
    background = background_bed(data_dir, 12.0)
    bg_probs = np.concatenate([engine.probabilities(background, shift) for shift in engine.hop_shifts_s])
    quiet = {label: float(bg_probs[:, engine.labels.index(label)].max()) for label in EVENT_CLASSES}

    scenes: dict[str, Scene] = {}
    strength: dict[str, float] = {}
    scene_probs: dict[str, npt.NDArray[np.float64]] = {}
    for label in EVENT_CLASSES:
        best: tuple[float, Path, npt.NDArray[np.float32]] | None = None
        for path in clip_paths(data_dir, label)[:MAX_CANDIDATES]:
            samples = event_scene(background, read_clip(path), lead_s=LEAD_S, tail_s=tail_s)
            margin = _logit(engine.vote_strength(engine.probabilities(samples), label)) - _logit(quiet[label])
            if best is None or margin > best[0]:
                best = (margin, path, samples)
            if margin >= GOOD_LOGIT_MARGIN:
                break
        assert best is not None, f"no {label} clips in the test split"
        _, path, samples = best
        probs = [engine.probabilities(samples, shift) for shift in engine.hop_shifts_s]
        strength[label] = min(engine.vote_strength(p, label) for p in probs)
        scene_probs[label] = np.concatenate(probs)
        clip_s = read_clip(path).size / RATE_HZ
        scenes[label] = Scene(label, path.name, samples, LEAD_S, LEAD_S + clip_s)

    thresholds: dict[str, float] = {}
    rows = [
        "| class | clip | scene's k-of-n strength | highest elsewhere | threshold |",
        "|---|---|---|---|---|",
    ]
    problems = []
    for label in EVENT_CLASSES:
        column = engine.labels.index(label)
        elsewhere = max(
            quiet[label],
            *(float(scene_probs[other][:, column].max()) for other in EVENT_CLASSES if other != label),
        )
        threshold = round(_sigmoid((_logit(strength[label]) + _logit(elsewhere)) / 2), 3)
        threshold = min(max(threshold, 0.05), 0.999)  # the slider's range
        thresholds[label] = threshold
        rows.append(
            f"| {label} | {scenes[label].clip} | {strength[label]:.4f} | {elsewhere:.4f} | {threshold} |"
        )
        if not (
            _logit(elsewhere) + MIN_LOGIT_MARGIN / 2
            <= _logit(threshold)
            <= _logit(strength[label]) - MIN_LOGIT_MARGIN / 2
        ):
            problems.append(f"{label}: the model does not separate its best clip from the rest by a margin")
    table = "\n".join(rows)

    settings = DetectorSettings(thresholds=thresholds, k=info.k, n=info.n, hold_s=info.hold_s)
    for shift in engine.hop_shifts_s:
        for label, scene in scenes.items():
            got = [(e.label, e.active) for e in engine.events(scene.samples, settings, shift)]
            if got != [(label, True), (label, False)]:
                problems.append(f"{label} scene at offset {shift} s gives {got} offline")
        if got := engine.events(background, settings, shift):
            problems.append(f"background at offset {shift} s gives {got} offline")
    if problems:
        pytest.fail("The installed model cannot be tested end to end:\n" + "\n".join(problems) + "\n" + table)
    return DetectionPlan(thresholds, scenes, background, table)


@pytest.fixture(scope="session")
def detection_plan(data_dir: Path) -> DetectionPlan:
    """Scenes and thresholds for the installed model (the shipped one, else the random fixture)."""
    plan = derive_detection_plan(data_dir, engine_model.model_path(TEST_MODEL))
    print("\n" + plan.table)
    return plan


# -- Faults leave nothing behind, and the event loop never blocks -----------------------------------

EXECUTOR_THREADS = ("SyncWorker", "ImportExecutor", "ThreadPoolExecutor", "asyncio_")
"""Pools that grow on demand (Home Assistant's executors): not resources a source may leak."""


@dataclass(frozen=True)
class Resources:
    """This process's open file descriptors (by what they point to) and its threads but the pools."""

    fds: frozenset[str]
    threads: tuple[str, ...]

    @classmethod
    def now(cls) -> Resources:
        fds = set()
        for fd in Path("/proc/self/fd").iterdir():
            try:
                fds.add(f"{fd.name}:{fd.readlink()}")
            except OSError:  # the one that listed the folder is gone already
                continue
        threads = sorted(t.name for t in threading.enumerate() if not t.name.startswith(EXECUTOR_THREADS))
        return cls(frozenset(fds), tuple(threads))

    def assert_back_to(self, before: Resources) -> None:
        """Exactly the same descriptors and threads as `before`."""
        assert self.threads == before.threads, f"threads {before.threads} -> {self.threads}"
        assert self.fds == before.fds, (
            f"opened {sorted(self.fds - before.fds)}, closed {sorted(before.fds - self.fds)}"
        )


@pytest.fixture
def no_blocking_calls(
    caplog: pytest.LogCaptureFixture, rtsp_server: Callable[..., RtspServer]
) -> Iterator[list[str]]:
    """Home Assistant's detection of blocking calls in the event loop, switched on; it must stay silent.

    Also watched: the integration's own blocking work (PyAV, sockets, inference, model loading) must
    never run in the loop's thread. Yields the list of offences (asserted empty at teardown). Set up
    after `rtsp_server`, so it is switched off before the test's servers are stopped (a blocking wait).
    """
    loop_thread = threading.get_ident()
    offences: list[str] = []
    originals: list[tuple[object, str, Any]] = []

    def watch(owner: object, name: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() == loop_thread and any(
                "/custom_components/sound_sentry/" in frame.filename for frame in inspect.stack(0)[1:]
            ):
                offences.append(f"{getattr(owner, '__name__', owner)}.{name} ran in the event loop")
            return original(*args, **kwargs)

        originals.append((owner, name, original))
        setattr(owner, name, guarded)

    for owner, name in [
        (av, "open"),
        (_PyAvSource, "read"),
        (UdpPcmSource, "open"),
        (UdpPcmSource, "read"),
        (Pipeline, "process"),
        (engine_model, "load_backend"),
        (ModelInfo, "load"),
        (socket.socket, "bind"),
    ]:
        watch(owner, name)
    block_async_io.enable()
    try:
        yield offences
    finally:
        # Undone as the plugin's own disable_block_async_io fixture does.
        calls = block_async_io._BLOCKED_CALLS.calls
        for call in calls:
            setattr(call.object, call.function, call.original_func)
        calls.clear()
        for owner, name, original in originals:
            setattr(owner, name, original)
    detected = [r.getMessage() for r in caplog.records if "blocking call" in r.getMessage()]
    assert not detected, detected
    assert not offences, offences


class Bystander:
    """The rest of Home Assistant: an input_boolean and a healthy UDP microphone entry of its own.

    `check()` asserts that both still work: the helper toggles, the microphone is live and classifying.
    """

    def __init__(self, hass: HomeAssistant, data_dir: Path) -> None:
        self.hass = hass
        self.port = free_udp_port()
        self.microphone = UdpMicrophone(self.port, background_bed(data_dir, 4.0))
        self.entry = udp_entry(self.port, title="Bystander microphone", threshold=0.999)
        self._windows = 0

    async def start(self) -> None:
        assert await async_setup_component(self.hass, "input_boolean", {"input_boolean": {"bystander": {}}})
        self.microphone.start()
        self.entry.add_to_hass(self.hass)
        assert await self.hass.config_entries.async_setup(self.entry.entry_id)
        await wait_for(self.hass, lambda: self.entry.runtime_data.windows_classified > 0)
        self._windows = self.entry.runtime_data.windows_classified

    async def check(self) -> None:
        """The bystanders are unaffected: the helper toggles, the microphone stays live and classifying."""
        before = self.hass.states.get("input_boolean.bystander").state
        await self.hass.services.async_call(
            "input_boolean", "toggle", {"entity_id": "input_boolean.bystander"}, blocking=True
        )
        assert self.hass.states.get("input_boolean.bystander").state != before
        runtime = self.entry.runtime_data
        await wait_for(self.hass, lambda: runtime.windows_classified > self._windows, timeout_s=5)
        self._windows = runtime.windows_classified
        assert runtime.connected
        assert runtime.last_error is None

    async def stop(self) -> None:
        assert await self.hass.config_entries.async_unload(self.entry.entry_id)
        self.microphone.stop()


@pytest.fixture
async def bystander(hass: HomeAssistant, socket_enabled: None, data_dir: Path) -> AsyncIterator[Bystander]:
    """A healthy neighbour running through the whole test."""
    neighbour = Bystander(hass, data_dir)
    try:
        await neighbour.start()
        yield neighbour
    finally:
        await neighbour.stop()


# -- Every form explains every field -----------------------------------------------------------------

STRINGS = Path(__file__).resolve().parents[2] / "custom_components" / DOMAIN / "strings.json"


@pytest.fixture(autouse=True)
def forms_are_described(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every field of every Sound Sentry form a test shows has a label and a `data_description`.

    Watches the real forms (config, reconfigure, reauth and options steps as the tests reach them), so a
    field added to a schema without its strings fails the test that shows it. Yields the forms seen.
    """
    strings = json.loads(STRINGS.read_text())
    seen: list[str] = []
    missing: list[str] = []
    original = FlowHandler.async_show_form

    def show_form(self: FlowHandler, **kwargs: Any) -> Any:
        if type(self).__module__.startswith("custom_components.sound_sentry"):
            section = "options" if isinstance(self, OptionsFlow) else "config"
            step_id = kwargs.get("step_id") or ""
            step = strings[section]["step"].get(step_id, {})
            seen.append(f"{section}.{step_id}")
            schema = kwargs.get("data_schema")
            missing.extend(
                f"{section}.step.{step_id}.{part}.{key}"
                for key in (schema.schema if schema is not None else ())
                for part in ("data", "data_description")
                if str(key) not in step.get(part, {})
            )
        return original(self, **kwargs)

    monkeypatch.setattr(FlowHandler, "async_show_form", show_form)
    yield seen
    assert not missing, f"fields without strings: {sorted(set(missing))}"
