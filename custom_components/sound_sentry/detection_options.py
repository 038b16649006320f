"""The detection part of an entry's options: what the user changed, and for which model release.

Only what differs from the model's defaults is stored, so that a new model's defaults reach every source
that did not change them. Options (each detection key only when it overrides the model):
    threshold_<sound>    a probability chosen by hand ("Custom threshold")
    sensitivity_<sound>  a sensitivity level (strict, balanced, eager), looked up on the installed model
    k, n, hold_s         the debouncing
    overrides_for        {"name": ..., "version": ...}: the model release of the numbers above
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .const import (
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_MODEL,
    CONF_N,
    CONF_OVERRIDES_FOR,
    CONF_SENSITIVITY_PREFIX,
    CONF_THRESHOLD_PREFIX,
)
from .engine.detection_settings import DetectionOverrides, resolve_detector_settings
from .engine.detector import DetectorSettings
from .engine.model_info import ModelInfo


def is_number_key(key: str) -> bool:
    """Whether an option is a number chosen for one model release (a threshold, k, n or hold time)."""
    return key.startswith(CONF_THRESHOLD_PREFIX) or key in (CONF_K, CONF_N, CONF_HOLD_S)


def _is_override_key(key: str) -> bool:
    return is_number_key(key) or key.startswith(CONF_SENSITIVITY_PREFIX) or key == CONF_OVERRIDES_FOR


def release_of(info: ModelInfo) -> dict[str, str]:
    """A model's release, as `overrides_for` records it."""
    return {"name": info.name, "version": info.version}


def overrides_from_options(options: Mapping[str, Any], info: ModelInfo) -> DetectionOverrides:
    """The entry's overrides of `info`'s model.

    Its sounds (`ModelInfo.events`) missing from "Sounds to detect" are off; a value stored for a sound it
    does not have stays in the options but applies to nothing.
    """

    def per_sound(prefix: str) -> dict[str, Any]:
        return {label: options[key] for label in info.events if (key := f"{prefix}{label}") in options}

    return DetectionOverrides(
        thresholds={label: float(t) for label, t in per_sound(CONF_THRESHOLD_PREFIX).items()},
        levels={label: str(level) for label, level in per_sound(CONF_SENSITIVITY_PREFIX).items()},
        off=frozenset(label for label in info.events if label not in options[CONF_ENABLED_CLASSES]),
        k=int(options[CONF_K]) if CONF_K in options else None,
        n=int(options[CONF_N]) if CONF_N in options else None,
        hold_s=float(options[CONF_HOLD_S]) if CONF_HOLD_S in options else None,
    )


def detector_settings(options: Mapping[str, Any], info: ModelInfo) -> DetectorSettings:
    """What the entry's detector runs with: the installed model's defaults and the entry's overrides."""
    return resolve_detector_settings(info, overrides_from_options(options, info))


def without_overrides(options: Mapping[str, Any]) -> dict[str, Any]:
    """`options` back at the model's defaults (the sounds to detect, the model and clips unchanged)."""
    return {key: value for key, value in options.items() if not _is_override_key(key)}


def with_overrides(
    options: Mapping[str, Any], overrides: DetectionOverrides, info: ModelInfo
) -> dict[str, Any]:
    """`options` with `overrides` in place of its own, less what equals `info`'s defaults.

    The numbers are recorded as chosen for `info`'s release. (`overrides.off` is not stored here: the
    options keep "Sounds to detect".)
    """
    overrides = overrides.without_defaults(info)
    new = without_overrides(options)
    new |= {f"{CONF_THRESHOLD_PREFIX}{label}": t for label, t in overrides.thresholds.items()}
    new |= {
        f"{CONF_SENSITIVITY_PREFIX}{label}": level
        for label, level in overrides.levels.items()
        if label not in overrides.thresholds
    }
    new |= {
        key: value
        for key, value in ((CONF_K, overrides.k), (CONF_N, overrides.n), (CONF_HOLD_S, overrides.hold_s))
        if value is not None
    }
    if overrides.model_bound:
        new[CONF_OVERRIDES_FOR] = release_of(info)
    return new


def outdated_overrides(options: Mapping[str, Any], info: ModelInfo) -> bool:
    """Whether the entry holds numbers chosen for another model release than `info`'s (or an unknown one)."""
    numbers = overrides_from_options(options, info).model_bound
    return numbers and options.get(CONF_OVERRIDES_FOR) != release_of(info)


# -- Migration to 1.5: the options of older entries held a copy of every default ------------------------


_PAST_SOUNDS = ("babycry", "glassbreak", "gunshot")
"""The sounds of every release below (history: a new model's sounds come from its sidecar)."""


def _defaults(thresholds: tuple[float, float, float], *, k: int, n: int, hold_s: float) -> dict[str, float]:
    """One release's defaults: babycry, glassbreak and gunshot thresholds, k, n, hold."""
    return {**dict(zip(_PAST_SOUNDS, thresholds, strict=True)), CONF_K: k, CONF_N: n, CONF_HOLD_S: hold_s}


PAST_DEFAULTS: Mapping[str, tuple[Mapping[str, float], ...]] = {
    # models/sound_sentry_resnetse.json (its int8 copy had the same): 1.0.0, 1.0.0 retrained, 2.0.0, 3.0.0,
    # 4.0.0
    "compact": (
        _defaults((0.99, 0.98, 0.99), k=1, n=1, hold_s=2.0),
        _defaults((0.998, 0.98, 0.99), k=3, n=3, hold_s=2.0),
        _defaults((0.99, 0.95, 0.95), k=3, n=5, hold_s=2.0),
        _defaults((0.97, 0.99, 0.97), k=3, n=5, hold_s=2.0),
        _defaults((0.25, 0.5, 0.95), k=1, n=1, hold_s=2.0),
    ),
    # models/sound_sentry_mobilenet.json: 1.0.0, 2.0.0
    "accurate": (
        _defaults((0.99, 0.998, 0.995), k=1, n=1, hold_s=2.0),
        _defaults((0.55, 0.5, 0.99), k=1, n=1, hold_s=2.0),
    ),
}
"""Every detection default each shipped model had while entries copied them (from git history, up to
entry version 1.5: since then nothing copies them)."""


def drop_copied_defaults(options: Mapping[str, Any], release: dict[str, str] | None) -> dict[str, Any]:
    """Options of an entry before 1.5 as overrides: what equals a default its model ever shipped is dropped.

    Such an entry stored every threshold, k, n and hold time, copied from the model's defaults when it was
    added (or its options were saved), and not which model version they were copied from. A value equal
    to any past default of that model is far likelier an untouched copy than a choice, so it follows the
    model's defaults from now on; k and n count as one setting (k of n, a past default pair), so that
    what stays cannot make k larger than a new model's n. Any other value was chosen by the user: it
    stays, recorded as chosen for `release` (the model installed now; None when it cannot be read, which
    makes it an unknown one).
    """
    past = PAST_DEFAULTS.get(str(options.get(CONF_MODEL)), ())

    def copied(key: str, value: Any) -> bool:
        if key in (CONF_K, CONF_N):
            pair = (options.get(CONF_K), options.get(CONF_N))
            return any(pair == (defaults[CONF_K], defaults[CONF_N]) for defaults in past)
        field = key.removeprefix(CONF_THRESHOLD_PREFIX)
        return any(float(value) == defaults.get(field) for defaults in past)

    new = {key: value for key, value in options.items() if not (is_number_key(key) and copied(key, value))}
    if release is not None and any(is_number_key(key) for key in new):
        new[CONF_OVERRIDES_FOR] = release
    return new
