"""From 8 kHz PCM to window probabilities, sound levels and events: the streaming pipeline."""

from __future__ import annotations

from dataclasses import dataclass
import math

import numpy as np
import numpy.typing as npt

from .backends import ModelBackend
from .detector import DetectorSettings, EventDetector, SoundEvent
from .fbank import FbankExtractor
from .model_info import ModelInfo

DEFAULT_HOP_S = 0.25
SILENCE_DBFS = -120.0
"""Level reported for digital silence (log of zero)."""


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One classified window of the stream."""

    start_s: float
    end_s: float
    probabilities: dict[str, float]
    dbfs: float
    """RMS level of the window relative to a full-scale square wave."""


@dataclass(frozen=True, slots=True)
class PipelineOutput:
    """What one chunk of audio produced."""

    windows: list[WindowResult]
    events: list[SoundEvent]


def to_float(pcm: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """int16 PCM (or floats already in [-1, 1]) as float32 in [-1, 1]."""
    samples = np.asarray(pcm)
    if samples.dtype == np.int16:
        return (samples.astype(np.float32) / 32768.0).reshape(-1)
    return samples.astype(np.float32, copy=False).reshape(-1)


def level_dbfs(samples: npt.NDArray[np.float32]) -> float:
    """RMS level in dBFS; silence gives SILENCE_DBFS."""
    mean_square = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS


class Pipeline:
    """Windows a PCM stream, classifies each window and debounces the results into events.

    FBANK frames are computed once as audio arrives and shared by the overlapping windows (a window
    every `hop_s`, rounded to whole 10 ms frames); the windows a chunk completes are classified in one
    batch. Each window's features are exactly those of a one-shot FBANK of its samples.
    """

    def __init__(
        self,
        backend: ModelBackend,
        info: ModelInfo,
        *,
        hop_s: float = DEFAULT_HOP_S,
        detector: DetectorSettings | None = None,
    ) -> None:
        self.backend = backend
        self.info = info
        self.fbank = FbankExtractor(info.fbank)
        shift = info.fbank.frame_shift
        self.window_frames = self.fbank.num_frames(info.window_samples)
        self.hop_frames = max(1, round(hop_s * info.sample_rate_hz / shift))
        self.hop_s = self.hop_frames * shift / info.sample_rate_hz
        self.detector = EventDetector(list(info.labels), detector or info.detector_settings())
        self.reset()

    def reset(self) -> None:
        """Start over, as for a new stream: no audio, no events."""
        self.fbank.reset()
        self.detector.reset()
        self._frames = np.zeros((0, self.info.fbank.num_mel_bins), dtype=np.float32)
        self._samples = np.zeros(0, dtype=np.float32)
        self._frames_seen = 0  # frames produced since reset
        self._next_window_end = self.window_frames  # frame count at which the next window completes

    def process(self, pcm: npt.ArrayLike) -> PipelineOutput:
        """Feed a chunk of 8 kHz mono PCM; return the windows it completed and their events."""
        samples = to_float(pcm)
        shift, rate = self.info.fbank.frame_shift, self.info.sample_rate_hz
        new_frames = self.fbank.process_streaming(samples)
        first_frame = self._frames_seen - len(self._frames)
        frames = np.concatenate([self._frames, new_frames])
        self._frames_seen += len(new_frames)
        self._samples = np.concatenate([self._samples, samples])

        ends = list(range(self._next_window_end, self._frames_seen + 1, self.hop_frames))
        if not ends:
            self._trim(frames, first_frame)
            return PipelineOutput([], [])
        self._next_window_end = ends[-1] + self.hop_frames
        # samples buffer starts at the first sample of frame `first_frame`.
        stack = np.stack([frames[end - self.window_frames - first_frame : end - first_frame] for end in ends])
        probabilities = self.backend.predict(stack - stack.mean(axis=1, keepdims=True))
        windows, events = [], []
        for end, probs in zip(ends, probabilities, strict=True):
            start_sample = (end - self.window_frames) * shift
            offset = start_sample - first_frame * shift
            window_samples = self._samples[offset : offset + self.info.window_samples]
            result = WindowResult(
                start_s=start_sample / rate,
                end_s=(start_sample + self.info.window_samples) / rate,
                probabilities={label: float(p) for label, p in zip(self.info.labels, probs, strict=True)},
                dbfs=level_dbfs(window_samples),
            )
            windows.append(result)
            events.extend(self.detector.process(result.end_s, probs))
        self._trim(frames, first_frame)
        return PipelineOutput(windows, events)

    def process_window(self, window: npt.ArrayLike, *, start_sample: int) -> PipelineOutput:
        """Classify one window given whole (e.g. a recording's last), outside the stream's hops."""
        samples = to_float(window)
        if samples.size != self.info.window_samples:
            raise ValueError(f"a window has {self.info.window_samples} samples, got {samples.size}")
        features = self.fbank.compute(samples)[None]
        probs = self.backend.predict(features - features.mean(axis=1, keepdims=True))[0]
        rate = self.info.sample_rate_hz
        result = WindowResult(
            start_s=start_sample / rate,
            end_s=(start_sample + samples.size) / rate,
            probabilities={label: float(p) for label, p in zip(self.info.labels, probs, strict=True)},
            dbfs=level_dbfs(samples),
        )
        return PipelineOutput([result], self.detector.process(result.end_s, probs))

    def _trim(self, frames: npt.NDArray[np.float32], first_frame: int) -> None:
        """Keep only the frames and samples that a future window can still use."""
        keep_from = max(first_frame, self._next_window_end - self.window_frames)
        self._frames = frames[keep_from - first_frame :]
        self._samples = self._samples[(keep_from - first_frame) * self.info.fbank.frame_shift :]
