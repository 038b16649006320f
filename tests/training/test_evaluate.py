"""The evaluation scores models exactly as a live source runs them: the engine's Pipeline and EventDetector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from training import evaluate

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "resnetse_random.onnx"


def test_a_stream_is_scored_as_a_live_source_hears_it() -> None:
    """Window for window, `evaluate.stream` equals the pipeline fed 20 ms chunks, as a camera feeds it."""
    pipeline = evaluate.stream_pipeline(FIXTURE)
    rng = np.random.default_rng(0)
    samples = (rng.standard_normal(8000 * 8) * 0.05).astype(np.float32)
    samples[8000 * 3 : 8000 * 6] = 0.0  # quiet seconds: the level floor's "background, certain"
    probs, ends = evaluate.stream(pipeline, samples)
    pipeline.reset()
    live = [w for i in range(0, samples.size, 160) for w in pipeline.process(samples[i : i + 160]).windows]
    assert len(live) == len(probs) > 20
    np.testing.assert_allclose(ends, [w.end_s for w in live])
    np.testing.assert_allclose(
        probs, [[w.probabilities[label] for label in pipeline.info.labels] for w in live], atol=1e-6
    )
    assert not all(w.classified for w in live)


@pytest.mark.parametrize(("k", "n"), [(1, 1), (2, 3), (3, 5), (4, 5)])
def test_count_starts_counts_what_the_engine_detector_starts(k: int, n: int) -> None:
    rng = np.random.default_rng([k, n])
    for trial in range(20):
        scores = rng.random(400) ** rng.uniform(0.2, 3.0)
        times = np.arange(400) * 0.25 + 2.0
        for threshold in (0.3, 0.9, 0.999):
            detector = EventDetector(
                ["background", "x"],
                DetectorSettings(thresholds={"x": threshold}, k=k, n=n, hold_s=evaluate.HOLD_S),
            )
            starts = sum(
                e.active for t, s in zip(times, scores, strict=True) for e in detector.process(t, (0.0, s))
            )
            assert evaluate.count_starts(scores, times, threshold, k, n) == starts, (trial, threshold)
