"""A source's detector settings from its model's defaults and its overrides, and the sensitivity levels
read off the model's operating curve."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from custom_components.sound_sentry.engine.detection_settings import (
    LEVEL_KEYS,
    SENSITIVITY_LEVELS,
    DetectionOverrides,
    curve_point,
    level_points,
    resolve_detector_settings,
)
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo, OperatingCurve

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "resnetse_random.onnx"
DAY_H = 24.0


def curve(rows: list[tuple[float, float, float]], hours: float = 240.0) -> OperatingCurve:
    """A curve of babycry from (threshold, false alarms in `hours`, recall) rows."""
    return OperatingCurve.from_json(
        {
            "background_hours": hours,
            "k": 2,
            "n": 3,
            "classes": {
                "babycry": [
                    {"threshold": t, "false_alarms_per_day": fa * DAY_H / hours, "recall": r}
                    for t, fa, r in rows
                ]
            },
        }
    )


# Ten days of background: 0.5 gives 30 a day, 0.9 one a day, 0.97 one in ten days, 0.99 none.
TEN_DAYS = curve(
    [(0.5, 300, 0.99), (0.9, 10, 0.9), (0.95, 5, 0.9), (0.97, 1, 0.8), (0.99, 0, 0.5), (0.999, 0, 0.5)]
)


def model(**changes: object) -> ModelInfo:
    """The random test model, with babycry's curve above and `changes`."""
    info = ModelInfo.load(FIXTURE)
    return replace(info, **{"operating_curve": TEN_DAYS, **changes})  # type: ignore[arg-type]


def test_levels_go_from_fewest_false_alarms_to_most_sounds_heard() -> None:
    budgets = [level.false_alarms_per_day for level in SENSITIVITY_LEVELS]
    assert budgets == sorted(budgets)
    assert LEVEL_KEYS == ("strict", "balanced", "eager")


def test_each_level_hears_the_most_within_its_budget() -> None:
    points = level_points(TEN_DAYS, "babycry")
    assert {key: p.threshold for key, p in points.items()} == {
        "strict": 0.97,  # 0.1 a day: within one a week; 0.99 hears less
        "balanced": 0.95,  # 0.5 a day hears as much as 0.9 at 1 a day, with fewer false alarms
        "eager": 0.95,
    }
    assert points["strict"].recall == 0.8


def test_on_equal_recall_and_false_alarms_the_higher_threshold() -> None:
    points = level_points(curve([(0.99, 0, 0.5), (0.999, 0, 0.5)]), "babycry")
    assert {p.threshold for p in points.values()} == {0.999}


def test_no_level_where_nothing_is_within_budget_or_heard() -> None:
    assert level_points(curve([(0.5, 300, 0.99), (0.9, 60, 0.9)]), "babycry") == {}  # 6 a day at best
    assert level_points(curve([(0.99, 0, 0.0)]), "babycry") == {}  # none heard: no level at all
    assert level_points(TEN_DAYS, "gunshot") == {}  # not measured
    assert level_points(None, "babycry") == {}  # a model without a curve


def test_a_few_hours_of_background_read_none_as_zero() -> None:
    """Measured at face value: with 2.5 h of background one alarm is 9.6 a day, so any level below that
    takes the thresholds with none (the forms say how many hours were measured)."""
    short = curve([(0.9, 1, 0.6), (0.97, 0, 0.2)], hours=2.5)
    assert {p.threshold for p in level_points(short, "babycry").values()} == {0.97}


def test_curve_point_at_a_threshold() -> None:
    point = curve_point(TEN_DAYS, "babycry", 0.9 + 1e-12)
    assert point is not None
    assert point.recall == 0.9
    assert curve_point(TEN_DAYS, "babycry", 0.91) is None
    assert curve_point(None, "babycry", 0.9) is None


def test_no_overrides_is_the_model_defaults() -> None:
    info = model()
    settings = resolve_detector_settings(info)
    assert settings == info.detector_settings()
    assert resolve_detector_settings(info, DetectionOverrides()) == settings


def test_overrides_replace_only_what_they_name() -> None:
    info = model(thresholds={"babycry": 0.9, "glassbreak": 0.8, "gunshot": 0.7}, k=2, n=3, hold_s=2.0)
    overrides = DetectionOverrides(
        thresholds={"gunshot": 0.5},
        levels={"babycry": "strict", "gunshot": "eager"},  # a threshold wins over a level
        off=frozenset({"glassbreak"}),
        n=4,
    )
    settings = resolve_detector_settings(info, overrides)
    assert dict(settings.thresholds) == {"babycry": 0.97, "gunshot": 0.5}
    assert list(settings.thresholds) == ["babycry", "gunshot"]  # the model's order
    assert (settings.k, settings.n, settings.hold_s) == (2, 4, 2.0)


def test_a_level_the_model_cannot_offer_is_its_default() -> None:
    info = model(operating_curve=None)
    settings = resolve_detector_settings(info, DetectionOverrides(levels={"babycry": "strict"}))
    assert settings.thresholds["babycry"] == info.thresholds["babycry"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (DetectionOverrides(thresholds={"doorbell": 0.5}), "'doorbell' is not a sound of model"),
        (DetectionOverrides(levels={"doorbell": "strict"}), "'doorbell' is not a sound of model"),
        (DetectionOverrides(off=frozenset({"doorbell"})), "'doorbell' is not a sound of model"),
        (DetectionOverrides(levels={"babycry": "paranoid"}), "'paranoid' is none of strict, balanced, eager"),
        (DetectionOverrides(k=4, n=3), "need 1 <= k <= n"),
        (DetectionOverrides(thresholds={"babycry": 1.5}), "must be in"),
    ],
)
def test_impossible_overrides_are_errors(overrides: DetectionOverrides, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_detector_settings(model(), overrides)


def test_without_defaults_keeps_only_real_changes() -> None:
    info = model(thresholds={"babycry": 0.97, "glassbreak": 0.99, "gunshot": 0.97}, k=3, n=5, hold_s=2.0)
    typed = DetectionOverrides(
        thresholds={"babycry": 0.97 + 1e-12, "gunshot": 0.9},  # a form's 0.97 is the default
        levels={"glassbreak": "strict"},
        k=3,
        n=4,
        hold_s=2.0,
    )
    changed = typed.without_defaults(info)
    # k of n is one setting: n changed, so k stays too (another model's n could be below this k).
    assert changed == DetectionOverrides(
        thresholds={"gunshot": 0.9}, levels={"glassbreak": "strict"}, k=3, n=4
    )
    assert DetectionOverrides(k=2).without_defaults(info) == DetectionOverrides(k=2, n=5)
    assert changed.model_bound
    assert not DetectionOverrides(levels={"babycry": "eager"}, off=frozenset({"gunshot"})).model_bound
    assert not typed.without_defaults(
        replace(info, thresholds={**info.thresholds, "gunshot": 0.9}, n=4)
    ).thresholds


@pytest.mark.parametrize("name", SHIPPED_MODELS)
def test_the_shipped_models_levels_are_on_their_curves(name: str) -> None:
    """Each level the shipped model offers is one of its measured thresholds, within the level's budget."""
    info = ModelInfo.load(model_path(name))
    assert info.operating_curve is not None
    for label in info.thresholds:
        for key, point in level_points(info.operating_curve, label).items():
            budget = next(level.false_alarms_per_day for level in SENSITIVITY_LEVELS if level.key == key)
            assert point in info.operating_curve.classes[label]
            assert point.false_alarms_per_day <= budget
            assert point.recall > 0
            settings = resolve_detector_settings(info, DetectionOverrides(levels={label: key}))
            assert settings.thresholds[label] == point.threshold
