"""What a source's detector runs with: its model's defaults, its overrides, and sensitivity levels.

Sensitivity levels are read off the model's measured operating curve. Every front end (Home Assistant, the MQTT service, the command line) resolves its detector settings here,
from overrides alone, so that a new model's defaults reach every source that did not change them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
import math
from typing import TYPE_CHECKING

from .detector import DetectorSettings

if TYPE_CHECKING:
    from .model_info import CurvePoint, ModelInfo, OperatingCurve


@dataclass(frozen=True, kw_only=True)
class SensitivityLevel:
    """A budget of false alarms that a user can choose instead of a probability."""

    key: str
    false_alarms_per_day: float
    """The most false alarms per day of background that the operating curve may show at the level."""


SENSITIVITY_LEVELS: tuple[SensitivityLevel, ...] = (
    SensitivityLevel(key="strict", false_alarms_per_day=1 / 7),  # about one a week (or none seen)
    SensitivityLevel(key="balanced", false_alarms_per_day=1.5),  # about one a day
    SensitivityLevel(key="eager", false_alarms_per_day=5.0),  # a few a day
)
"""From the fewest false alarms to the most sounds heard. "About one a day" allows up to half again: one
false alarm in 21 hours of background (1.1 a day) is about one a day."""
LEVEL_KEYS: tuple[str, ...] = tuple(level.key for level in SENSITIVITY_LEVELS)


def level_points(curve: OperatingCurve | None, label: str) -> dict[str, CurvePoint]:
    """Each level's point on `label`'s curve: within the level's budget, the one that hears the most.

    On equal recall, the one with fewer false alarms, then the higher threshold. A level is left out where no threshold is within its budget or the best one hears nothing; without a
    curve (or one without `label`) there are no levels. The curve was measured at the model's own k of n.
    """
    points = curve.classes.get(label, ()) if curve is not None else ()
    chosen: dict[str, CurvePoint] = {}
    for level in SENSITIVITY_LEVELS:
        within = [p for p in points if p.false_alarms_per_day <= level.false_alarms_per_day]
        if within:
            best = max(within, key=lambda p: (p.recall, -p.false_alarms_per_day, p.threshold))
            if best.recall > 0:
                chosen[level.key] = best
    return chosen


def curve_point(curve: OperatingCurve | None, label: str, threshold: float) -> CurvePoint | None:
    """The curve's point of `label` at exactly `threshold` (e.g. the model's default), if it was measured."""
    points = curve.classes.get(label, ()) if curve is not None else ()
    return next((p for p in points if _same(p.threshold, threshold)), None)


@dataclass(frozen=True, kw_only=True)
class DetectionOverrides:
    """What a source changes of its model's detection defaults; what it leaves out is the model's own."""

    thresholds: Mapping[str, float] = field(default_factory=dict)
    """A probability per sound instead of the model's default; it wins over a level for the same sound."""
    levels: Mapping[str, str] = field(default_factory=dict)
    """A sensitivity level per sound (a `LEVEL_KEYS` key), looked up on the installed model's curve."""
    off: frozenset[str] = frozenset()
    """Sounds of the model that this source does not detect."""
    k: int | None = None
    n: int | None = None
    hold_s: float | None = None

    @property
    def model_bound(self) -> bool:
        """Whether a number here was chosen for one model (a threshold, k, n or hold time).

        Levels and sounds switched off mean the same with any model; numbers may not (a new model may be
        surer, or slower, than the one they were tuned for).
        """
        return bool(self.thresholds) or any(v is not None for v in (self.k, self.n, self.hold_s))

    def without_defaults(self, info: ModelInfo) -> DetectionOverrides:
        """These overrides less the numbers that equal `info`'s defaults (they override nothing).

        k and n are one setting (k of n): where either differs, both stay, so that another model's
        default for the other cannot make k larger than n.
        """
        k, n = self.k, self.n
        if (k is None or k == info.k) and (n is None or n == info.n):
            k = n = None
        else:
            k, n = info.k if k is None else k, info.n if n is None else n
        return replace(
            self,
            thresholds={
                label: t
                for label, t in self.thresholds.items()
                if label not in info.thresholds or not _same(t, info.thresholds[label])
            },
            k=k,
            n=n,
            hold_s=None if self.hold_s is not None and _same(self.hold_s, info.hold_s) else self.hold_s,
        )


def resolve_detector_settings(
    info: ModelInfo, overrides: DetectionOverrides | None = None
) -> DetectorSettings:
    """A source's detector settings: `info`'s defaults with `overrides` applied.

    The thresholds follow the model's order. A level that the installed model's curve does not offer
    falls back to the model's default threshold. Raises ValueError for a sound the model does not have,
    an unknown level, or settings the detector rejects (k > n, a threshold outside (0, 1]).
    """
    overrides = overrides or DetectionOverrides()
    defaults = info.thresholds
    for labels in (overrides.thresholds, overrides.levels, overrides.off):
        if unknown := [label for label in labels if label not in defaults]:
            raise ValueError(
                f"{unknown[0]!r} is not a sound of model {info.name}; it has {', '.join(defaults)}"
            )
    for label, level in overrides.levels.items():
        if level not in LEVEL_KEYS:
            raise ValueError(f"sensitivity of {label}: {level!r} is none of {', '.join(LEVEL_KEYS)}")
    thresholds: dict[str, float] = {}
    for label, default in defaults.items():
        if label in overrides.off:
            continue
        if label in overrides.thresholds:
            thresholds[label] = float(overrides.thresholds[label])
        elif (chosen := overrides.levels.get(label)) and (
            point := level_points(info.operating_curve, label).get(chosen)
        ):
            thresholds[label] = point.threshold
        else:
            thresholds[label] = float(default)
    return DetectorSettings(
        thresholds=thresholds,
        k=info.k if overrides.k is None else overrides.k,
        n=info.n if overrides.n is None else overrides.n,
        hold_s=info.hold_s if overrides.hold_s is None else overrides.hold_s,
    )


def with_taught(settings: DetectorSettings, thresholds: Mapping[str, float]) -> DetectorSettings:
    """`settings` that also detect taught sounds, each at its own threshold (label -> probability).

    A taught sound is debounced like the model's sounds: the source's k of n and hold time.
    """
    return replace(settings, thresholds={**settings.thresholds, **thresholds})


def _same(a: float, b: float) -> bool:
    """Equal as settings: a form's 0.97 and a sidecar's 0.97 may differ in the last bits."""
    return math.isclose(a, b, rel_tol=0.0, abs_tol=1e-9)
