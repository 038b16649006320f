"""The listening test (engine/listening.py): it decides as the live source does, sound by sound."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.alarm import AlarmSettings
from custom_components.sound_sentry.engine.detection_settings import resolve_detector_settings, with_taught
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.listening import listening_test
from custom_components.sound_sentry.engine.pipeline import Pipeline
from custom_components.sound_sentry.engine.taught import DEFAULT_LEVEL
from tests.audio import RATE_HZ, T3_PIEZO, alarm_signal, background_bed, clip_paths, event_scene, read_clip
from tests.taught import TaughtPlan, accurate_model, taught_plan

SLUG = "taught"


@pytest.fixture(scope="module")
def plan(data_dir: Path) -> TaughtPlan:
    return taught_plan(data_dir)


def live_detections(settings: DetectorSettings, samples: npt.NDArray[np.float32], **kwargs: Any) -> set[str]:
    """What a live source's pipeline turns on for `samples`, fed in 20 ms chunks as a camera sends them."""
    pipeline = Pipeline.for_model(accurate_model(), detector=settings, **kwargs)
    events = [
        e
        for start in range(0, samples.size, 160)
        for e in pipeline.process(samples[start : start + 160]).events
    ]
    return {e.label for e in [*events, *pipeline.finish().events] if e.active}


def test_a_taught_sound_playing_is_detected_and_the_room_alone_is_not(
    plan: TaughtPlan, data_dir: Path
) -> None:
    model = accurate_model()
    settings = with_taught(
        resolve_detector_settings(model.info), {SLUG: plan.sound.thresholds[DEFAULT_LEVEL]}
    )
    taught = {SLUG: plan.sound}
    bed = background_bed(data_dir, 12.0)
    playing = event_scene(bed, plan.heard, lead_s=3.0, tail_s=3.0)

    report = listening_test(model, settings, playing, taught=taught)
    result = report.result(SLUG)
    assert result.detected
    assert result.threshold == plan.sound.thresholds[DEFAULT_LEVEL]
    assert result.peak is not None
    assert result.threshold is not None
    assert result.peak >= result.threshold
    assert [s.label for s in report.sounds] == [*model.info.events, SLUG]
    assert {s.label for s in report.sounds if s.detected} == live_detections(settings, playing, taught=taught)
    assert not report.silent
    assert -60.0 < report.level_dbfs < report.peak_dbfs < 0.0

    quiet = listening_test(model, settings, bed, taught=taught)
    assert not quiet.result(SLUG).detected
    assert quiet.result(SLUG).peak is not None
    assert quiet.result(SLUG).peak < quiet.result(SLUG).threshold  # type: ignore[operator]


def test_a_built_in_sound_is_decided_as_the_live_pipeline_decides(data_dir: Path) -> None:
    model = accurate_model()
    settings = resolve_detector_settings(model.info)
    bed = background_bed(data_dir, 12.0)
    scenes = [
        event_scene(bed, read_clip(path), lead_s=3.0, tail_s=3.0)
        for path in clip_paths(data_dir, "glassbreak")[:3]
    ]
    heard = 0
    for samples in scenes:
        report = listening_test(model, settings, samples)
        assert {s.label for s in report.sounds if s.detected} == live_detections(settings, samples)
        glass = report.result("glassbreak")
        assert glass.threshold == settings.thresholds["glassbreak"]
        if glass.detected:  # a window over the threshold started it
            assert glass.peak is not None
            assert glass.threshold is not None
            assert glass.peak >= glass.threshold
        heard += glass.detected
    assert heard >= 1  # the accurate model hears most test glass breaks


def test_alarms_are_reported_without_a_score(data_dir: Path) -> None:
    model = accurate_model()
    settings = resolve_detector_settings(model.info)
    beeps = alarm_signal(T3_PIEZO, 3)
    samples = (beeps + background_bed(data_dir, beeps.size / RATE_HZ)[: beeps.size]).astype(np.float32)
    report = listening_test(model, settings, samples, alarms=AlarmSettings())
    smoke = report.result("smoke_alarm")
    assert (smoke.peak, smoke.threshold, smoke.detected) == (None, None, True)
    assert not report.result("co_alarm").detected


def test_silence_is_caught() -> None:
    model = accurate_model()
    report = listening_test(model, resolve_detector_settings(model.info), np.zeros(8 * RATE_HZ, np.float32))
    assert report.silent
    assert report.level_dbfs == report.peak_dbfs == -120.0
    assert not any(s.detected for s in report.sounds)
    with pytest.raises(KeyError):
        report.result("doorbell")
    short = listening_test(model, resolve_detector_settings(model.info), np.full(100, 0.1, np.float32))
    assert short.silent  # shorter than a window: nothing was classified
    assert short.level_dbfs == pytest.approx(-20.0, abs=0.1)
