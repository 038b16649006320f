"""Model metadata from the JSON sidecar next to an .onnx file (labels, features, detection defaults)."""

from __future__ import annotations

from dataclasses import dataclass, fields
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .detector import DetectorSettings
from .fbank import FbankSettings

if TYPE_CHECKING:
    from collections.abc import Mapping


class ModelLoadError(Exception):
    """A model file or its sidecar is missing, unreadable or not a model this engine can run."""


def sidecar_path(onnx_path: Path) -> Path:
    """The sidecar of a model: `foo.onnx` -> `foo.json`, `foo.int8.onnx` -> `foo.int8.json`."""
    return onnx_path.with_suffix(".json")


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1 << 16), b""):
            digest.update(block)
    return digest.hexdigest()


_FBANK_FIELDS = frozenset(field.name for field in fields(FbankSettings))


@dataclass(frozen=True, kw_only=True)
class CurvePoint:
    """One threshold of a class at the model's default k-of-n, as measured on recordings never trained on."""

    threshold: float
    false_alarms_per_day: float
    recall: float


@dataclass(frozen=True, kw_only=True)
class OperatingCurve:
    """What each threshold costs and buys: false alarms per day of background and the share of events heard."""

    background_hours: float
    """Hours of background the false alarms were counted in: 0 alarms means fewer than ~24 / hours a day."""
    k: int
    n: int
    classes: Mapping[str, tuple[CurvePoint, ...]]

    @classmethod
    def from_json(cls, raw: Any) -> OperatingCurve:
        """Parse the sidecar's `operating_curve`."""
        return cls(
            background_hours=float(raw["background_hours"]),
            k=int(raw["k"]),
            n=int(raw["n"]),
            classes={
                str(label): tuple(
                    CurvePoint(
                        threshold=float(row["threshold"]),
                        false_alarms_per_day=float(row["false_alarms_per_day"]),
                        recall=float(row["recall"]),
                    )
                    for row in rows
                )
                for label, rows in dict(raw["classes"]).items()
            },
        )

    def summary(self, label: str, current: float, count: int = 4) -> str:
        """A short line for a settings form, e.g. `0.5 → 40/day, 99% · 0.97 → 0 in 3.2 h, 93%`.

        A few thresholds spread over the curve, plus the one nearest `current`.
        """
        points = self.classes.get(label, ())
        if not points:
            return "-"
        nearest = min(points, key=lambda p: abs(p.threshold - current))
        spread = [points[round(i * (len(points) - 1) / (count - 1))] for i in range(count)]
        chosen = sorted({*spread, nearest}, key=lambda p: p.threshold)
        return " · ".join(
            f"{p.threshold:g} → "
            + (
                f"{p.false_alarms_per_day:.3g}/day"
                if p.false_alarms_per_day > 0
                else f"0 in {self.background_hours:.1f} h"
            )
            + f", {p.recall:.0%}"
            for p in chosen
        )


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What the runtime needs to know about a model besides its weights."""

    path: Path
    """The .onnx file this sidecar describes."""
    name: str
    version: str
    labels: tuple[str, ...]
    """Class names in output order."""
    sample_rate_hz: int
    window_samples: int
    """Samples per model window (15,480 = 192 FBANK frames at 8 kHz)."""
    fbank: FbankSettings
    thresholds: Mapping[str, float]
    """Default probability threshold per event class."""
    k: int
    """Default: passing windows among the last `n` that start an event."""
    n: int
    hold_s: float
    """Default: seconds without a passing window before an event ends."""
    sha256: str
    """Expected hex SHA-256 of the .onnx file."""
    operating_curve: OperatingCurve | None = None
    """Measured false alarms and recall per threshold, when the sidecar has them."""

    @classmethod
    def load(cls, onnx_path: Path | str) -> ModelInfo:
        """Read the sidecar of `onnx_path`; raise ModelLoadError when it is missing or malformed."""
        onnx_path = Path(onnx_path)
        path = sidecar_path(onnx_path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelLoadError(
                f"model metadata {path} not found: keep the .json sidecar next to {onnx_path.name}"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise ModelLoadError(f"model metadata {path} is unreadable ({err}): restore it") from err
        try:
            return cls._from_json(onnx_path, raw)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise ModelLoadError(f"model metadata {path} is malformed ({detail}): restore it") from err

    @classmethod
    def _from_json(cls, onnx_path: Path, raw: Any) -> ModelInfo:
        if not isinstance(raw, dict):
            raise TypeError("top level is not an object")
        fbank_raw = raw["fbank"]
        if not isinstance(fbank_raw, dict):
            raise TypeError("fbank is not an object")
        # The sidecar also describes fixed choices (window type, snip_edges...) for humans; only the
        # tunable settings map onto FbankSettings.
        fbank = FbankSettings(**{key: value for key, value in fbank_raw.items() if key in _FBANK_FIELDS})
        detection = raw["detection"]
        labels = tuple(str(label) for label in raw["labels"])
        thresholds = {str(label): float(p) for label, p in dict(detection["thresholds"]).items()}
        if unknown := set(thresholds) - set(labels):
            raise ValueError(f"thresholds for unknown labels {sorted(unknown)}")
        sample_rate_hz = int(raw["sample_rate_hz"])
        if sample_rate_hz != fbank.sample_rate_hz:
            raise ValueError(f"sample_rate_hz {sample_rate_hz} differs from fbank's {fbank.sample_rate_hz}")
        return cls(
            path=onnx_path,
            name=str(raw["name"]),
            version=str(raw["version"]),
            labels=labels,
            sample_rate_hz=sample_rate_hz,
            window_samples=int(raw["window_samples"]),
            fbank=fbank,
            thresholds=thresholds,
            k=int(detection["k"]),
            n=int(detection["n"]),
            hold_s=float(detection["hold_s"]),
            sha256=str(raw["sha256"]).lower(),
            operating_curve=OperatingCurve.from_json(raw["operating_curve"])
            if "operating_curve" in raw
            else None,
        )

    def detector_settings(self) -> DetectorSettings:
        """The model's default detection settings."""
        return DetectorSettings(thresholds=dict(self.thresholds), k=self.k, n=self.n, hold_s=self.hold_s)

    def verify_sha256(self) -> None:
        """Raise ModelLoadError unless the .onnx file's bytes match the sidecar's checksum."""
        try:
            actual = file_sha256(self.path)
        except OSError as err:
            raise ModelLoadError(f"model file {self.path} is unreadable ({err})") from err
        if actual != self.sha256:
            raise ModelLoadError(
                f"model file {self.path} does not match its sidecar (sha256 {actual[:12]}..., expected "
                f"{self.sha256[:12]}...): the download is incomplete or the files are from different "
                "versions; reinstall the model"
            )
