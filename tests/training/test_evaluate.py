"""The evaluation's fast event counter agrees with the engine's detector (torch-free)."""

from __future__ import annotations

import numpy as np
import pytest

from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from training.evaluate import _count_starts


@pytest.mark.parametrize(("k", "n", "hold_s"), [(1, 1, 0.0), (2, 3, 2.0), (3, 5, 2.0), (4, 5, 0.5)])
def test_count_starts_is_the_engine_detector(k: int, n: int, hold_s: float) -> None:
    """On random bursty votes, `_count_starts` counts exactly the starts `EventDetector` emits."""
    rng = np.random.default_rng([k, n])
    for trial in range(20):
        # Bursts: runs of passing windows of random lengths, at a random share.
        passes = (rng.random(400) < rng.uniform(0.05, 0.6)).tolist()
        times = (np.arange(400) * 0.25 + 1.935).tolist()
        detector = EventDetector(
            ["background", "x"], DetectorSettings(thresholds={"x": 0.5}, k=k, n=n, hold_s=hold_s)
        )
        starts = sum(
            event.active
            for passed, time_s in zip(passes, times, strict=True)
            for event in detector.process(time_s, [0.0, 1.0 if passed else 0.0])
        )
        assert _count_starts(passes, times, k, n, hold_s) == starts, f"trial {trial}"
        if trial == 0 and k == 2:
            assert starts > 0  # the votes do start events
