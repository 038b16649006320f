"""The operating curve a sidecar stores, and the line the threshold forms show from it."""

from __future__ import annotations

import pytest

from custom_components.sound_sentry.engine.model_info import OperatingCurve

RAW = {
    "background_hours": 3.24,
    "k": 2,
    "n": 3,
    "classes": {
        "babycry": [
            {"threshold": t, "false_alarms": fa, "false_alarms_per_day": fa * 24 / 3.24, "recall": r}
            for t, fa, r in [
                (0.3, 40, 1.0),
                (0.5, 20, 0.99),
                (0.9, 4, 0.97),
                (0.97, 1, 0.95),
                (0.99, 0, 0.9),
                (0.999, 0, 0.5),
            ]
        ]
    },
}


def test_summary_spreads_over_the_curve_and_includes_the_current_threshold() -> None:
    curve = OperatingCurve.from_json(RAW)
    line = curve.summary("babycry", 0.97)
    assert line.split(" · ")[0] == "0.3 → 296/day, 100%"
    assert "0.97 → 7.41/day, 95%" in line  # the current threshold, though not on the spread
    assert line.endswith("0.999 → 0 in 3.2 h, 50%")  # none measured: say in how long
    assert curve.summary("gunshot", 0.9) == "-"


def test_a_malformed_curve_is_an_error() -> None:
    with pytest.raises(KeyError):
        OperatingCurve.from_json({"k": 1})
