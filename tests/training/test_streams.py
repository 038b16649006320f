"""The stream protocol: how events are put into background, labelled, and scored through the engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine.model import model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from training import streams
from training.audio import read_clips


def _clip(label: str):  # type: ignore[no-untyped-def]
    return next(c for c in read_clips("shared") if c.label == label and c.split == "test")


@pytest.mark.parametrize("snr_db", [-5.0, 0.0, 15.0])
def test_no_level_cue_scales_the_event_against_the_background_it_lands_on(
    snr_db: float, data_dir: Path
) -> None:
    clip = _clip("glassbreak")
    event = streams.load_audio(clip.path)
    rng = np.random.default_rng(0)
    bed = (rng.standard_normal(20 * 8000) * 10 ** (-30 / 20)).astype(np.float32)
    stream = streams.Stream(samples=bed.copy())
    streams.place(stream, event, clip.label_index, 5.0, construction="no_level_cue", snr_db=snr_db)
    (placed,) = stream.events
    mask = np.repeat(placed.active, streams.FRAME)
    span = slice(placed.start_sample, placed.start_sample + mask.size)
    added = (stream.samples - bed)[span][mask]
    ratio = 20 * np.log10(streams.rms(added) / streams.rms(bed[span][mask]))
    assert ratio == pytest.approx(snr_db, abs=0.01)
    assert placed.onset_s >= 5.0
    assert placed.end_s > placed.onset_s


def test_level_construction_keeps_the_recorded_level(data_dir: Path) -> None:
    clip = _clip("gunshot")
    event = streams.load_audio(clip.path)
    stream = streams.Stream(samples=np.zeros(10 * 8000, np.float32))
    streams.place(stream, event, clip.label_index, 2.0, construction="level", snr_db=0.0)
    np.testing.assert_array_equal(stream.samples[16_000 : 16_000 + event.size], event[: 8 * 8000])


def test_windows_are_labelled_by_what_they_hold_of_the_event() -> None:
    """A window is the event's when it holds >= 0.15 s of its active part; else background."""
    active = np.zeros(300, bool)
    active[100:150] = True  # active 1.0-1.5 s after the clip's start
    placed = streams.Placed(label=3, onset_s=11.0, end_s=11.5, start_sample=10 * 8000, active=active)
    ends = np.array([10.5, 11.1, 11.2, 12.0, 12.9, 13.4, 13.5])
    labels = streams.window_labels([placed], ends, window_s=2.0)
    # [8.5, 10.5] none; [9.1, 11.1] 0.1 s; [9.2, 11.2] 0.2 s; [10.0, 12.0] all; [10.9, 12.9] all;
    # [11.4, 13.4] 0.1 s; [11.5, 13.5] none
    assert labels.tolist() == [0, 0, 3, 3, 3, 0, 0]


def test_extractor_feeds_exactly_what_the_live_pipeline_feeds_the_stage(data_dir: Path) -> None:
    """The cached training inputs are the engine pipeline's own: the stage on them gives the live output."""
    from custom_components.sound_sentry.engine import temporal as stage
    from custom_components.sound_sentry.engine.model import load_model
    from custom_components.sound_sentry.engine.pipeline import Pipeline

    info = ModelInfo.load(model_path("compact"))
    clip = _clip("babycry")
    rng = np.random.default_rng(1)
    bed = (rng.standard_normal(25 * 8000) * 0.01).astype(np.float32)
    stream = streams.Stream(samples=bed)
    streams.place(
        stream, streams.load_audio(clip.path), clip.label_index, 6.0, construction="no_level_cue", snr_db=5.0
    )
    stream = streams.finish(stream, 0)
    sequence = streams.InputExtractor(info)(stream)
    assert info.temporal is not None
    runtime = stage.load_temporal(info.temporal.path, "onnxruntime")
    offline, _ = runtime.run(sequence.inputs, stage.initial_state(runtime))
    live = Pipeline.for_model(load_model(info.path, "onnxruntime"))
    windows = [
        w
        for i in range(0, stream.samples.size, 160)
        for w in live.process(stream.samples[i : i + 160]).windows
    ]
    np.testing.assert_allclose(sequence.ends, [w.end_s for w in windows])
    np.testing.assert_allclose(
        offline, [[w.probabilities[label] for label in info.labels] for w in windows], atol=1e-5
    )
    assert sequence.labels.max() == 1


def _fold_metrics(recall: float, events: int) -> dict[str, object]:
    labels = ("babycry", "glassbreak", "gunshot")
    return {
        "recall": dict.fromkeys(labels, recall),
        "events": dict.fromkeys(labels, events),
        "false_alarms_per_hour": dict.fromkeys(labels, 0.5),
        "best": {label: {"1.0": {"recall": recall}, "10.0": {"recall": 1.0}} for label in labels},
        "latency_s": {label: {"p50": 1.0, "p95": 2.0} for label in labels} if events else {},
    }


def test_fold_summary_pools_recall_over_events_and_marks_classes_a_fold_lacks() -> None:
    reports = {
        "A": {c: _fold_metrics(0.9, 90) for c in streams.CONSTRUCTIONS},
        "B": {c: _fold_metrics(0.5, 10) for c in streams.CONSTRUCTIONS},
        "C": {c: _fold_metrics(0.0, 0) for c in streams.CONSTRUCTIONS},
    }
    lines = streams.fold_summary(reports).splitlines()
    (fold_c,) = [line for line in lines if line.startswith("| C | level")]
    assert "| - / - / - |" in fold_c  # no events of any class: no recall to show
    (pooled,) = [line for line in lines if line.startswith("| **all** | level")]
    # (0.9 * 90 + 0.5 * 10) / 100 = 86%; fold C's empty classes weigh nothing.
    assert "**86%** / **86%** / **86%**" in pooled
    assert pooled.endswith("| 100 / 100 / 100 |")
