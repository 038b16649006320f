"""Ship a trained model: detection defaults chosen on val streams, measured on test, into the integration.

One path for both models (the accurate MobileNet from `training.finetune`, the compact ResNetSE from
`training.train`): the exported .onnx gets its sidecar through the engine's own contract
(`ModelInfo`), `training.evaluate` scores it through the engine's `Pipeline` and `EventDetector`, and
the result is copied into `custom_components/sound_sentry/models/`, the one place models live.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
import shutil
from typing import Any

from custom_components.sound_sentry.engine.detector import DEFAULT_HOLD_S
from custom_components.sound_sentry.engine.frontend import FrontEndSettings
from custom_components.sound_sentry.engine.model import MODELS_DIR
from custom_components.sound_sentry.engine.model_info import ModelInfo, OperatingCurve, file_sha256
from training import evaluate
from training.labels import EVENT_LABELS, LABELS

PLACEHOLDER = {"thresholds": dict.fromkeys(EVENT_LABELS, 0.5), "k": 2, "n": 3, "hold_s": DEFAULT_HOLD_S}
"""Detection settings of a model not yet measured (the hold: the engine's fallback, as `DetectorSettings`)."""
NON_COMMERCIAL = (
    "Non-commercial home use only. Trained on audio licensed CC BY-NC 3.0 (ESC-50, UrbanSound8K: "
    "non-commercial, with attribution) and audio whose sources state no licence (gunshots cut from YouTube "
    "videos, glass-break and baby-cry recordings). Do not use the model, or anything derived from it, "
    "commercially. Every source with its licence and attribution: "
    "https://github.com/sound-sentry/sound-sentry/blob/main/models/compact.md#licences-and-attribution"
)
"""The licence of weights trained on the project's data (every `--data` choice holds ESC-50, CC BY-NC 3.0,
but `open`, whose model must state its own terms); the shipped sidecars state each model's own words."""


def write_info(
    path: Path,
    *,
    name: str,
    version: str,
    architecture: str,
    front_end: FrontEndSettings,
    window_samples: int,
    detection: Mapping[str, Any] = PLACEHOLDER,
    provenance: Mapping[str, Any] | None = None,
    licence: str = NON_COMMERCIAL,
) -> ModelInfo:
    """The sidecar of a freshly exported model (placeholder detection until `ship` measures it).

    `licence` is what its training audio allows; `ship` and `training.temporal` keep it (they replace
    only what they measure).
    """
    info = ModelInfo(
        path=path,
        name=name,
        version=version,
        architecture=architecture,
        labels=tuple(LABELS),
        sample_rate_hz=front_end.sample_rate_hz,
        window_samples=window_samples,
        front_end=front_end,
        thresholds=dict(detection["thresholds"]),
        k=int(detection["k"]),
        n=int(detection["n"]),
        hold_s=float(detection["hold_s"]),
        sha256=file_sha256(path),
        licence=licence,
        provenance=dict(provenance or {}),
    )
    info.save()
    return info


def ship(
    info: ModelInfo,
    *,
    log: Callable[[str], None] = print,
    data: str = "shared",
    metrics: Mapping[str, Any] | None = None,
    copy: bool = True,
) -> ModelInfo:
    """Choose the defaults on val, measure on test, store the operating curve; copy into the integration."""
    detection = evaluate.choose_detection(info.path, log=log, data=data)
    log(f"detection defaults chosen on val streams: {detection}")
    measured = evaluate.evaluate_model(info.path, "test", detection, data="shared")
    measured["split"] = "test"
    log(evaluate.format_table(f"{info.name} {info.version} on the dev test split", measured))
    curve = evaluate.operating_curve(info.path, detection, data=data)
    info = replace(
        info,
        thresholds=dict(detection["thresholds"]),
        k=int(detection["k"]),
        n=int(detection["n"]),
        hold_s=float(detection["hold_s"]),
        operating_curve=OperatingCurve.from_json(curve),
        metrics={**(metrics or {}), **measured},
    )
    info.save()
    if copy:
        MODELS_DIR.mkdir(parents=True, exist_ok=True)
        target = MODELS_DIR / info.path.name
        shutil.copyfile(info.path, target)
        info = replace(info, path=target)
        info.save()
        log(f"shipped {target} and its sidecar")
    return info
