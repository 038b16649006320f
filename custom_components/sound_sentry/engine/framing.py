"""Framing shared by the feature extractors: frames of a whole waveform, or only a stream's new ones."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import numpy.typing as npt


class FrameExtractor(ABC):
    """Features of frames of `frame_length` samples every `frame_shift`, without padding (snip_edges).

    `compute()` turns a whole waveform into frames. `process_streaming()` takes audio in chunks of any
    size, carries the samples that do not yet fill a frame, and returns only the new frames, so that
    overlapping windows never compute a frame twice. `reset()` forgets the carried samples. A subclass
    says what one frame's features are (`_features`).
    """

    def __init__(self, *, frame_length: int, frame_shift: int, num_features: int) -> None:
        self.frame_length = frame_length
        """Samples per frame."""
        self.frame_shift = frame_shift
        """Samples between frame starts."""
        self.num_features = num_features
        """Features per frame."""
        self._pending = np.zeros(0, dtype=np.float32)

    @abstractmethod
    def _features(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Features of frames [count >= 1, frame_length]: (count, num_features), float32."""

    def num_frames(self, num_samples: int) -> int:
        """Frames that `compute()` returns for this many samples."""
        if num_samples < self.frame_length:
            return 0
        return 1 + (num_samples - self.frame_length) // self.frame_shift

    def compute(self, waveform: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Features of a waveform in [-1, 1]; shape (num_frames, num_features), float32."""
        samples = np.asarray(waveform, dtype=np.float32).reshape(-1)
        count = self.num_frames(samples.size)
        if count == 0:
            return np.zeros((0, self.num_features), dtype=np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(samples, self.frame_length)
        return self._features(frames[:: self.frame_shift][:count])

    def process_streaming(self, chunk: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Frames completed by this chunk, continuing from the previous calls."""
        samples = np.concatenate([self._pending, np.asarray(chunk, dtype=np.float32).reshape(-1)])
        count = self.num_frames(samples.size)
        self._pending = samples[count * self.frame_shift :]
        end = (count - 1) * self.frame_shift + self.frame_length if count else 0
        return self.compute(samples[:end])

    def reset(self) -> None:
        """Forget the samples carried between `process_streaming()` calls."""
        self._pending = np.zeros(0, dtype=np.float32)
