"""A model's front end: PCM to feature frames, and a window's model input from its frames.

Two front ends exist, one per model family, named in the model's sidecar (`front_end.type`):
- `kaldi-fbank`: 24-band Kaldi FBANK, each window mean-normalised per band (the compact ResNetSE);
- `efficientat-logmel`: EfficientAT's log mel at 8 kHz, used as is (the accurate MobileNet).
Both compute each 10 ms frame once, streaming; a window's input is a slice of the frames.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, TypeAlias

import numpy as np
import numpy.typing as npt

from .fbank import FbankExtractor, FbankSettings, normalise
from .logmel import LogMelExtractor, LogMelSettings

FrontEndSettings: TypeAlias = FbankSettings | LogMelSettings

_TYPES: dict[str, type[FbankSettings | LogMelSettings]] = {
    "kaldi-fbank": FbankSettings,
    "efficientat-logmel": LogMelSettings,
}


def front_end_type(settings: FrontEndSettings) -> str:
    """The sidecar's name of a front end."""
    return next(name for name, cls in _TYPES.items() if isinstance(settings, cls))


def front_end_from_json(raw: Any) -> FrontEndSettings:
    """Parse the sidecar's `front_end` object; raise ValueError for an unknown type or setting."""
    if not isinstance(raw, dict):
        raise TypeError("front_end is not an object")
    kind = raw.get("type")
    cls = _TYPES.get(str(kind))
    if cls is None:
        raise ValueError(f"unknown front end {kind!r}: this engine knows {', '.join(_TYPES)}")
    known = {field.name for field in fields(cls)}
    if unknown := set(raw) - known - {"type"}:
        raise ValueError(f"unknown {kind} settings {sorted(unknown)}")
    return cls(**{key: value for key, value in raw.items() if key != "type"})


def front_end_to_json(settings: FrontEndSettings) -> dict[str, Any]:
    """The sidecar's `front_end` object."""
    return {"type": front_end_type(settings), **asdict(settings)}


class FrontEnd:
    """Frames of a model's features, one-shot (`compute`) or streaming, and a window's input from them."""

    def __init__(self, settings: FrontEndSettings) -> None:
        self.settings = settings
        self.extractor: FbankExtractor | LogMelExtractor
        if isinstance(settings, FbankSettings):
            self.extractor = FbankExtractor(settings)
            self.num_bands = settings.num_mel_bins
            self._normalise = True
        else:
            self.extractor = LogMelExtractor(settings)
            self.num_bands = settings.num_bands
            self._normalise = False
        self.frame_shift = settings.frame_shift
        """Samples between frames."""

    def num_frames(self, num_samples: int) -> int:
        """Frames that `compute()` returns for this many samples."""
        return self.extractor.num_frames(num_samples)

    def compute(self, waveform: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Frames of a whole waveform in [-1, 1]: (num_frames, num_bands)."""
        return self.extractor.compute(waveform)

    def process_streaming(self, chunk: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Frames completed by this chunk, continuing from the previous calls."""
        return self.extractor.process_streaming(chunk)

    def reset(self) -> None:
        """Forget the samples carried between `process_streaming()` calls."""
        self.extractor.reset()

    def window(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """The model's input from a window's frames [..., frames, bands] (FBANK: mean-normalised)."""
        return normalise(frames) if self._normalise else frames

    def features(self, waveform: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """The model's input for one window of samples, one-shot."""
        return self.window(self.compute(waveform))
