"""The source monitor that every front end adapts: real audio through a real source thread, its updates
checked as Home Assistant and the MQTT service receive them."""

from __future__ import annotations

import itertools
import logging
import math
from pathlib import Path
import threading

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine import monitor as monitor_module
from custom_components.sound_sentry.engine.alarm import AlarmSettings
from custom_components.sound_sentry.engine.clips import Clip
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.events import AlarmEvent, DetectionEvent
from custom_components.sound_sentry.engine.listener import ListenerObserver
from custom_components.sound_sentry.engine.model import load_model
from custom_components.sound_sentry.engine.monitor import (
    LEVEL_REFRESH_S,
    LEVEL_STEP_DB,
    STATE_INTERVAL_S,
    AvailabilityUpdate,
    DetectionUpdate,
    IntervalPeaks,
    MonitorUpdate,
    SourceMonitor,
    StateUpdate,
)
from custom_components.sound_sentry.engine.pipeline import PipelineOutput, WindowResult
from custom_components.sound_sentry.engine.sources import AudioSource, Backoff, FileSource, SourceError
from tests.audio import RATE_HZ, T3_PIEZO, alarm_signal, write_wav

MODEL = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "resnetse_random.onnx"
TITLE = "Hall microphone"


def tone(dbfs: float, seconds: int) -> npt.NDArray[np.float32]:
    """A 440 Hz sine whose RMS level is `dbfs` (whole seconds: whole periods, so tones join smoothly)."""
    t = np.arange(seconds * RATE_HZ) / RATE_HZ
    return (math.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def recording() -> npt.NDArray[np.float32]:
    """A room at -20 dBFS, 1.5 dB quieter for 70 s, 10 dB louder, then two cycles of a T3 smoke alarm."""
    rng = np.random.default_rng(1)
    alarm = alarm_signal(T3_PIEZO, 2)
    quiet = (rng.standard_normal(alarm.size + 10 * RATE_HZ) * 0.003).astype(np.float32)
    quiet[: alarm.size] += alarm
    return np.concatenate([tone(-20.0, 10), tone(-21.5, 70), tone(-10.0, 6), quiet])


class Flaky:
    """A source factory: refused twice, then no audio, then the recording once, then refused for good."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.calls = 0

    def __call__(self) -> AudioSource:
        self.calls += 1
        if self.calls <= 2:
            raise SourceError("cannot_connect", "refused")
        if self.calls == 3:
            raise SourceError("no_audio", "no audio track")
        if self.calls == 4:
            return FileSource(str(self.path))
        raise SourceError("cannot_connect", "refused")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[MonitorUpdate], list[WindowResult]]:
    """One monitor over the recording: every update it sent, and every window its listener saw."""
    path = write_wav(tmp_path_factory.mktemp("monitor") / "room.wav", recording())
    updates: list[MonitorUpdate] = []
    windows: list[WindowResult] = []
    clips: list[Clip] = []
    done = threading.Event()

    def on_update(update: MonitorUpdate) -> None:
        updates.append(update)
        availability = [u for u in updates if isinstance(u, AvailabilityUpdate)]
        if len(availability) >= 5:  # refused, no audio, connected, ended, refused again
            done.set()

    def key_for(event: DetectionEvent) -> str:
        return f"clip-{event.label}"

    def on_output(output: PipelineOutput) -> None:
        windows.extend(output.windows)

    monitor = SourceMonitor(
        "hall",
        Flaky(path),
        load_model(MODEL, "numpy"),
        title=TITLE,
        detector=DetectorSettings(thresholds={}),  # the random model's sounds mean nothing: alarms only
        alarms=AlarmSettings(),
        on_update=on_update,
        clips=(key_for, clips.append),
        backoff=Backoff(0.01, 0.01),
    )
    monitor.listener.add_observer(ListenerObserver(on_output=on_output))
    assert monitor.labels == ("smoke_alarm", "co_alarm")
    monitor.start()
    try:
        assert done.wait(120)
    finally:
        monitor.stop(10)
    assert monitor.windows_classified == len(windows)
    assert monitor.recent_windows == windows[-monitor_module.HISTORY_WINDOWS :]
    assert [clip.key for clip in clips] == ["clip-smoke_alarm"]
    return updates, windows


def interval_peaks(updates: list[MonitorUpdate]) -> list[tuple[IntervalPeaks, float]]:
    """Each state interval's peaks with the level shown after it, in order."""
    seen: list[tuple[IntervalPeaks, float]] = []
    for update in updates:
        if isinstance(update, StateUpdate) and update.peaks is not None:
            assert update.level_dbfs is not None
            if not seen or update.peaks is not seen[-1][0]:
                seen.append((update.peaks, update.level_dbfs))
    return seen


def test_a_smoke_alarm_starts_with_its_clip_and_ends(
    run: tuple[list[MonitorUpdate], list[WindowResult]],
) -> None:
    updates, _ = run
    detections = [u.event for u in updates if isinstance(u, DetectionUpdate)]
    assert [(e.label, e.active) for e in detections] == [("smoke_alarm", True), ("smoke_alarm", False)]
    start, end = detections
    assert isinstance(start, AlarmEvent)
    assert start.clip_key == "clip-smoke_alarm"
    assert end.clip_key is None
    # Each detection is followed by the state the entities show after it.
    for event in detections:
        following = updates[updates.index(DetectionUpdate(event)) + 1]
        assert isinstance(following, StateUpdate)
        assert following.active == {"smoke_alarm": event.active, "co_alarm": False}


def test_the_peaks_of_each_state_interval(run: tuple[list[MonitorUpdate], list[WindowResult]]) -> None:
    """The first window is reported at once; then each interval's loudest level and highest probabilities."""
    updates, windows = run
    hop_s = windows[1].end_s - windows[0].end_s
    peaks = [p for p, _ in interval_peaks(updates)]
    assert len(peaks) > 40
    assert peaks[0].end_s == windows[0].end_s
    for before, after in itertools.pairwise(peaks):
        assert STATE_INTERVAL_S <= after.end_s - before.end_s < STATE_INTERVAL_S + hop_s
        inside = [w for w in windows if before.end_s < w.end_s <= after.end_s]
        assert after.dbfs == max(w.dbfs for w in inside)
        assert after.probabilities == {
            label: max(w.probabilities[label] for w in inside) for label in windows[0].probabilities
        }


def test_the_level_shown_moves_on_3_db_at_once_and_otherwise_once_a_minute(
    run: tuple[list[MonitorUpdate], list[WindowResult]],
) -> None:
    updates, _ = run
    seen = interval_peaks(updates)
    shown_at = seen[0][0].end_s
    changes: list[tuple[float, float]] = []  # (stream time, level shown)
    for (_, before), (peaks, after) in itertools.pairwise(seen):
        if after != before:
            changes.append((peaks.end_s, after))
            assert after == round(peaks.dbfs, 1)
            assert abs(peaks.dbfs - before) >= LEVEL_STEP_DB or peaks.end_s - shown_at >= LEVEL_REFRESH_S
            shown_at = peaks.end_s
        else:
            assert abs(peaks.dbfs - before) < LEVEL_STEP_DB
            assert round(peaks.dbfs, 1) == before or peaks.end_s - shown_at < LEVEL_REFRESH_S
    assert abs(seen[0][1] + 20.0) < 0.3
    # 1.5 dB quieter from 10 s on: shown only when the minute since the first level is up.
    quieter = changes[0]
    assert LEVEL_REFRESH_S <= quieter[0] < LEVEL_REFRESH_S + seen[0][0].end_s + STATE_INTERVAL_S
    assert abs(quieter[1] + 21.5) < 0.3
    # 10 dB louder from 80 s on: shown within an interval, in steps of 3 dB or more.
    louder = [level for time_s, level in changes if 80 <= time_s < 80 + 2 * STATE_INTERVAL_S + 2]
    assert louder
    assert max(louder) > -10.0 - LEVEL_STEP_DB


def test_an_outage_says_since_when_and_clears_the_state(
    run: tuple[list[MonitorUpdate], list[WindowResult]],
) -> None:
    updates, _ = run
    availability = [u for u in updates if isinstance(u, AvailabilityUpdate)]
    assert [(u.connected, u.error.reason if u.error else None) for u in availability[:5]] == [
        (False, "cannot_connect"),
        (False, "no_audio"),
        (True, None),
        (False, "stream_ended"),
        (False, "cannot_connect"),
    ]
    refused, no_audio, back, ended, refused_again = availability[:5]
    assert refused.outage_since is not None
    assert no_audio.outage_since == refused.outage_since  # the same outage, another reason
    assert back.outage_since is None
    assert ended.outage_since is not None
    assert ended.outage_since > refused.outage_since
    assert refused_again.outage_since == ended.outage_since
    # Losing the audio clears what the entities show, right after saying so.
    cleared = updates[updates.index(ended) + 1]
    assert cleared == StateUpdate(
        active={"smoke_alarm": False, "co_alarm": False}, level_dbfs=None, peaks=None
    )


def test_an_outage_is_logged_once_when_lost_and_once_when_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """However many reasons a failing source gives in a row: one line when lost, one when back."""
    caplog.set_level(logging.INFO, logger=monitor_module.__name__)
    path = write_wav(tmp_path / "short.wav", tone(-20.0, 3))
    done = threading.Event()

    factory = Flaky(path)

    def on_update(update: MonitorUpdate) -> None:
        if isinstance(update, AvailabilityUpdate) and factory.calls > 4:
            done.set()  # refused again after the recording

    monitor = SourceMonitor(
        "short",
        factory,
        load_model(MODEL, "numpy"),
        title=TITLE,
        detector=DetectorSettings(thresholds={}),
        alarms=None,
        on_update=on_update,
        backoff=Backoff(0.01, 0.01),
    )
    monitor.start()
    try:
        assert done.wait(60)
    finally:
        monitor.stop(10)
    lines = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == monitor_module.__name__]
    assert lines == [
        (logging.INFO, f"{TITLE}: no audio (refused); retrying in the background"),
        (logging.INFO, f"{TITLE}: audio is back"),
        (logging.INFO, f"{TITLE}: no audio ({path}: the stream ended); retrying in the background"),
    ]
