"""The model contract: the JSON sidecar next to an .onnx file, read and written here only.

Training and export write it (`ModelInfo.to_json`), the engine, the CLI, Home Assistant and the
benchmarks read it (`ModelInfo.load`): architecture, front end, labels, window, detection defaults,
the licence of the weights, the operating curve, measured metrics and provenance.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .detector import DetectorSettings
from .frontend import FrontEndSettings, front_end_from_json, front_end_to_json

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


ARCHITECTURES = ("resnetse", "mobilenet")
"""Networks the engine runs (both runtimes): the compact ResNetSE and the accurate EfficientAT MobileNet."""


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

    def to_json(self) -> dict[str, Any]:
        """The sidecar's `operating_curve`."""
        return {
            "background_hours": self.background_hours,
            "k": self.k,
            "n": self.n,
            "classes": {
                label: [
                    {
                        "threshold": p.threshold,
                        "false_alarms_per_day": p.false_alarms_per_day,
                        "recall": p.recall,
                    }
                    for p in points
                ]
                for label, points in self.classes.items()
            },
        }

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


DEFAULT_HOP_S = 0.25
"""Seconds between windows of a model whose sidecar names no hop (one without a temporal stage)."""


@dataclass(frozen=True, kw_only=True)
class TemporalInfo:
    """The model's temporal stage: a second small ONNX graph next to the model (`temporal.py`)."""

    path: Path
    sha256: str
    hidden_size: int

    @classmethod
    def from_json(cls, model_path: Path, raw: Any) -> TemporalInfo:
        """Parse the sidecar's `temporal`; its `file` is next to the model's."""
        name = str(raw["file"])
        if Path(name).name != name:
            raise ValueError(f"temporal file {name!r} must be a file name next to the model")
        return cls(
            path=model_path.with_name(name),
            sha256=str(raw["sha256"]).lower(),
            hidden_size=int(raw["hidden_size"]),
        )

    def to_json(self) -> dict[str, Any]:
        """The sidecar's `temporal`."""
        return {
            "file": self.path.name,
            "sha256": self.sha256,
            "hidden_size": self.hidden_size,
            "inputs": "per window: embedding, then log(probabilities)",
            "state": "GRU hidden state [1, hidden_size], zeros at a stream's start",
        }


@dataclass(frozen=True, kw_only=True)
class TaughtGraphInfo:
    """The network taught sounds read: a second ONNX graph next to the model (`taught.py`).

    EfficientAT mn04 with its AudioSet weights, not fine-tuned, on the model's front end and hop; its
    `embedding` output is what a taught sound's head reads. Loaded only for a source with taught sounds.
    """

    path: Path
    sha256: str
    licence: str = ""

    @classmethod
    def from_json(cls, model_path: Path, raw: Any) -> TaughtGraphInfo:
        """Parse the sidecar's `taught`; its `file` is next to the model's."""
        name = str(raw["file"])
        if Path(name).name != name:
            raise ValueError(f"taught graph {name!r} must be a file name next to the model")
        return cls(
            path=model_path.with_name(name),
            sha256=str(raw["sha256"]).lower(),
            licence=_licence(raw.get("licence", "")),
        )

    def to_json(self) -> dict[str, Any]:
        """The sidecar's `taught`."""
        raw: dict[str, Any] = {
            "file": self.path.name,
            "sha256": self.sha256,
            "output": "embedding: batch x 384, what taught sounds' heads read (its probabilities are a dummy)",
        }
        if self.licence:
            raw["licence"] = self.licence
        return raw


@dataclass(frozen=True, kw_only=True)
class ModelInfo:
    """What the runtime needs to know about a model besides its weights, and what was measured of it."""

    path: Path
    """The .onnx file this sidecar describes."""
    name: str
    version: str
    architecture: str
    """One of `ARCHITECTURES`."""
    labels: tuple[str, ...]
    """Class names in output order."""
    sample_rate_hz: int
    window_samples: int
    """Samples per model window (15,480 = 192 FBANK frames; 16,176 = 200 log mel frames)."""
    front_end: FrontEndSettings
    thresholds: Mapping[str, float]
    """Default probability threshold per event class."""
    k: int
    """Default: passing windows among the last `n` that start an event."""
    n: int
    hold_s: float
    """Default: seconds without a passing window before an event ends."""
    sha256: str
    """Expected hex SHA-256 of the .onnx file."""
    licence: str = ""
    """The terms of use of the weights, as the user must read them (what the training audio's licences
    allow, e.g. non-commercial home use only); empty where the sidecar states none (older ones)."""
    hop_s: float = DEFAULT_HOP_S
    """Seconds between windows: k, n and the temporal stage count in windows of this hop."""
    temporal: TemporalInfo | None = None
    """The temporal stage that decides on the window sequence, when the model has one."""
    taught: TaughtGraphInfo | None = None
    """The network taught sounds read, when sounds can be taught on the model (the accurate one)."""
    operating_curve: OperatingCurve | None = None
    """Measured false alarms and recall per threshold, when the sidecar has them."""
    metrics: Mapping[str, Any] = field(default_factory=dict)
    """What was measured (recall, false alarms, CPU...), as the evaluation wrote it."""
    provenance: Mapping[str, Any] = field(default_factory=dict)
    """How the model was made: commit, seed, arguments, data hash."""

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
            return cls.from_json(onnx_path, raw)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            detail = f"missing key {err}" if isinstance(err, KeyError) else str(err)
            raise ModelLoadError(f"model metadata {path} is malformed ({detail}): restore it") from err

    @classmethod
    def from_json(cls, onnx_path: Path, raw: Any) -> ModelInfo:
        """Parse a sidecar's JSON object; raise KeyError, TypeError or ValueError if it is malformed."""
        if not isinstance(raw, dict):
            raise TypeError("top level is not an object")
        front_end = front_end_from_json(raw["front_end"])
        architecture = str(raw["architecture"])
        if architecture not in ARCHITECTURES:
            raise ValueError(
                f"unknown architecture {architecture!r}: this engine runs {', '.join(ARCHITECTURES)}"
            )
        detection = raw["detection"]
        labels = tuple(str(label) for label in raw["labels"])
        thresholds = {str(label): float(p) for label, p in dict(detection["thresholds"]).items()}
        if unknown := set(thresholds) - set(labels):
            raise ValueError(f"thresholds for unknown labels {sorted(unknown)}")
        sample_rate_hz = int(raw["sample_rate_hz"])
        if sample_rate_hz != front_end.sample_rate_hz:
            raise ValueError(
                f"sample_rate_hz {sample_rate_hz} differs from the front end's {front_end.sample_rate_hz}"
            )
        return cls(
            path=onnx_path,
            name=str(raw["name"]),
            version=str(raw["version"]),
            architecture=architecture,
            labels=labels,
            sample_rate_hz=sample_rate_hz,
            window_samples=int(raw["window_samples"]),
            front_end=front_end,
            thresholds=thresholds,
            k=int(detection["k"]),
            n=int(detection["n"]),
            hold_s=float(detection["hold_s"]),
            sha256=str(raw["sha256"]).lower(),
            licence=_licence(raw.get("licence", "")),
            hop_s=float(raw.get("hop_s", DEFAULT_HOP_S)),
            temporal=TemporalInfo.from_json(onnx_path, raw["temporal"]) if "temporal" in raw else None,
            taught=TaughtGraphInfo.from_json(onnx_path, raw["taught"]) if "taught" in raw else None,
            operating_curve=OperatingCurve.from_json(raw["operating_curve"])
            if "operating_curve" in raw
            else None,
            metrics=dict(raw.get("metrics", {})),
            provenance=dict(raw.get("provenance", {})),
        )

    def to_json(self) -> dict[str, Any]:
        """The sidecar's JSON object (what `from_json` reads back)."""
        raw: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "architecture": self.architecture,
            "labels": list(self.labels),
            "sample_rate_hz": self.sample_rate_hz,
            "window_samples": self.window_samples,
            "front_end": front_end_to_json(self.front_end),
            "input": {"name": "features", "layout": "batch x frames x bands", "dtype": "float32"},
            "output": {"name": "probabilities", "layout": "batch x labels", "softmax": True},
            "detection": {
                "thresholds": dict(self.thresholds),
                "k": self.k,
                "n": self.n,
                "hold_s": self.hold_s,
            },
            "sha256": self.sha256,
            "hop_s": self.hop_s,
        }
        if self.licence:
            raw["licence"] = self.licence
        if self.temporal is not None:
            raw["output"]["embedding"] = "batch x features (the temporal stage's input)"
            raw["temporal"] = self.temporal.to_json()
        if self.taught is not None:
            raw["taught"] = self.taught.to_json()
        if self.operating_curve is not None:
            raw["operating_curve"] = self.operating_curve.to_json()
        if self.metrics:
            raw["metrics"] = dict(self.metrics)
        if self.provenance:
            raw["provenance"] = dict(self.provenance)
        return raw

    @property
    def events(self) -> tuple[str, ...]:
        """The sounds the model detects, in output order: its labels with a threshold (not background)."""
        return tuple(label for label in self.labels if label in self.thresholds)

    @property
    def licence_text(self) -> str:
        """The licence as shown to users: the sidecar's terms, or that it states none."""
        return self.licence or "not stated in the model's sidecar: ask whoever made the model"

    def save(self) -> Path:
        """Write the sidecar next to the .onnx file; return its path."""
        path = sidecar_path(self.path)
        path.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        return path

    def detector_settings(self) -> DetectorSettings:
        """The model's default detection settings."""
        return DetectorSettings(thresholds=dict(self.thresholds), k=self.k, n=self.n, hold_s=self.hold_s)

    def verify_sha256(self) -> None:
        """Raise ModelLoadError unless the .onnx file (and its temporal stage) match the sidecar's checksums."""
        files = [(self.path, self.sha256)]
        if self.temporal is not None:
            files.append((self.temporal.path, self.temporal.sha256))
        for path, expected in files:
            verify_file_sha256(path, expected)


def verify_file_sha256(path: Path, expected: str) -> None:
    """Raise ModelLoadError unless the file's SHA-256 is `expected` (what its sidecar says)."""
    try:
        actual = file_sha256(path)
    except OSError as err:
        raise ModelLoadError(f"model file {path} is unreadable ({err})") from err
    if actual != expected:
        raise ModelLoadError(
            f"model file {path} does not match its sidecar (sha256 {actual[:12]}..., expected "
            f"{expected[:12]}...): the download is incomplete or the files are from different "
            "versions; reinstall the model"
        )


def _licence(raw: Any) -> str:
    """The sidecar's `licence`: one line of text."""
    if not isinstance(raw, str):
        raise TypeError(f"licence must be text, not {type(raw).__name__}")
    return raw.strip()
