"""Taught sounds heard live: the pipeline scores them from the taught network's embedding of the loud
windows only, the detector debounces them like the model's sounds, and the monitor gives them entities
like the model's."""

from __future__ import annotations

from pathlib import Path
import threading

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import ModelBackend
from custom_components.sound_sentry.engine.detection_settings import with_taught
from custom_components.sound_sentry.engine.entities import TAUGHT_TRANSLATION_KEY, entity_texts
from custom_components.sound_sentry.engine.events import SoundEvent
from custom_components.sound_sentry.engine.monitor import (
    DetectionUpdate,
    MonitorUpdate,
    SourceMonitor,
    StateUpdate,
)
from custom_components.sound_sentry.engine.pipeline import Pipeline, WindowResult
from custom_components.sound_sentry.engine.sources import Backoff, FileSource
from custom_components.sound_sentry.engine.taught import DEFAULT_LEVEL
from tests.audio import RATE_HZ, write_wav
from tests.taught import TaughtPlan, accurate_model, taught_plan

SLUG = "flush"


@pytest.fixture(scope="module")
def plan(data_dir: Path) -> TaughtPlan:
    """A sound the accurate model learns from real clips, and a clip of it that it hears."""
    return taught_plan(data_dir)


def stream(plan: TaughtPlan) -> npt.NDArray[np.float32]:
    """4 s of silence, the sound heard, 5 s of silence."""
    silence = np.zeros(4 * RATE_HZ, np.float32)
    return np.concatenate([silence, plan.heard, silence, np.zeros(RATE_HZ, np.float32)])


def windows_of(
    pipeline: Pipeline, samples: npt.NDArray[np.float32]
) -> tuple[list[WindowResult], list[object]]:
    """Every window and event of `samples` fed in 20 ms chunks (as a camera sends them)."""
    windows: list[WindowResult] = []
    events: list[object] = []
    for start in range(0, samples.size, 160):
        output = pipeline.process(samples[start : start + 160])
        windows.extend(output.windows)
        events.extend(output.events)
    return windows, events


def test_a_taught_sound_is_heard_from_the_same_windows_and_changes_nothing_else(plan: TaughtPlan) -> None:
    model = accurate_model()
    threshold = plan.sound.thresholds[DEFAULT_LEVEL]
    settings = with_taught(model.info.detector_settings(), {SLUG: threshold})
    taught = Pipeline.for_model(model, detector=settings, taught={SLUG: plan.sound})
    assert taught.labels == (*model.info.labels, SLUG)
    windows, events = windows_of(taught, stream(plan))
    plain_windows, plain_events = windows_of(Pipeline.for_model(model), stream(plan))

    starts = [e for e in events if isinstance(e, SoundEvent) and e.label == SLUG]
    assert [e.active for e in starts] == [True, False]
    assert starts[0].peak_probability >= threshold
    assert 4.0 < starts[0].time_s < 4.0 + plan.heard.size / RATE_HZ + 2.0
    # Quiet windows score 0 (the network never ran on them); the model's own sounds are untouched.
    assert all(w.probabilities[SLUG] == 0.0 for w in windows if not w.classified)
    assert any(w.classified for w in windows)
    for window, plain in zip(windows, plain_windows, strict=True):
        assert {k: v for k, v in window.probabilities.items() if k != SLUG} == pytest.approx(
            plain.probabilities
        )
    assert [e for e in events if getattr(e, "label", None) != SLUG] == plain_events


class CountingNetwork:
    """A taught network that counts the windows it embeds."""

    def __init__(self, network: ModelBackend) -> None:
        self.network = network
        self.name = network.name
        self.model_path = network.model_path
        self.embedding_size = network.embedding_size
        self.windows = 0

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        raise AssertionError("the taught network is only asked for its embedding")

    def embed(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        self.windows += len(features)
        return self.network.embed(features)


def test_the_taught_network_runs_on_the_loud_windows_only(plan: TaughtPlan) -> None:
    model = accurate_model()
    network = CountingNetwork(model.taught_backend())
    threshold = plan.sound.thresholds[DEFAULT_LEVEL]
    settings = with_taught(model.info.detector_settings(), {SLUG: threshold})
    pipeline = Pipeline.for_model(model, detector=settings, taught={SLUG: plan.sound}, taught_network=network)
    windows, _events = windows_of(pipeline, stream(plan))
    loud = sum(w.classified for w in windows)
    assert 0 < loud < len(windows)
    assert network.windows == loud


def test_a_pipeline_without_taught_sounds_needs_no_taught_network(plan: TaughtPlan) -> None:
    model = accurate_model()
    assert Pipeline.for_model(model).taught_network is None
    with pytest.raises(ValueError, match="taught network"):
        Pipeline(model.backend, model.info, temporal=model.temporal, taught={SLUG: plan.sound})


def test_a_taught_label_cannot_shadow_a_model_label(plan: TaughtPlan) -> None:
    with pytest.raises(ValueError, match="babycry"):
        Pipeline.for_model(accurate_model(), taught={"babycry": plan.sound})


def test_the_monitor_gives_a_taught_sound_its_entities_and_events(plan: TaughtPlan, tmp_path: Path) -> None:
    model = accurate_model()
    path = write_wav(tmp_path / "heard.wav", stream(plan))
    updates: list[MonitorUpdate] = []
    started, peaked = threading.Event(), threading.Event()
    threshold = plan.sound.thresholds[DEFAULT_LEVEL]

    def on_update(update: MonitorUpdate) -> None:
        updates.append(update)
        if isinstance(update, DetectionUpdate) and update.event.label == SLUG and update.event.active:
            started.set()
        if isinstance(update, StateUpdate) and update.peaks and update.peaks.probabilities[SLUG] >= threshold:
            peaked.set()  # the probability sensor shows it

    monitor = SourceMonitor(
        "taught",
        lambda: FileSource(str(path)),
        model,
        title="Bathroom",
        detector=with_taught(model.info.detector_settings(), {SLUG: threshold}),
        alarms=None,
        on_update=on_update,
        backoff=Backoff(60.0, 60.0),
        taught={SLUG: plan.sound},
    )
    assert monitor.labels == (*model.info.thresholds, SLUG)
    by_key = {spec.key: spec for spec in monitor.entities}
    sensor, probability = by_key[SLUG], by_key[f"{SLUG}_probability"]
    assert (sensor.platform, sensor.translation_key, sensor.sound_name, sensor.device_class) == (
        "binary_sensor",
        TAUGHT_TRANSLATION_KEY,
        plan.category,
        "sound",
    )
    assert SLUG in by_key["sound"].event_types
    texts = entity_texts()
    assert texts.name(sensor) == plan.category
    assert texts.name(probability) == f"{plan.category} probability"
    monitor.start()
    try:
        assert started.wait(60)
        assert peaked.wait(10)
    finally:
        monitor.stop(10)
    active = [u.active[SLUG] for u in updates if isinstance(u, StateUpdate)]
    assert True in active
