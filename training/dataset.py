"""Fixed, un-augmented windows of real clips for checkpoint choice (NumPy only).

Training windows come from `training.augment` (cached frames, log-domain augmentation); these are the
plain windows a checkpoint is judged on: loud windows of every val clip, over a quiet noise floor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.audio import WINDOW_SAMPLES, Clip, features, load_audio


def loud_starts(samples: npt.NDArray[np.float32], keep: float = 0.5, hop: int = 400) -> npt.NDArray[np.int64]:
    """Window starts (every `hop` samples) whose energy is at least `keep` of the loudest window's."""
    if samples.size <= WINDOW_SAMPLES:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, samples.size - WINDOW_SAMPLES + 1, hop)
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    energy = cumulative[starts + WINDOW_SAMPLES] - cumulative[starts]
    return starts[energy >= keep * energy.max()]


@dataclass
class LoadedClip:
    """A clip's audio and where its loud windows start."""

    clip: Clip
    samples: npt.NDArray[np.float32]
    starts: npt.NDArray[np.int64]


def load_clips(clips: list[Clip]) -> list[LoadedClip]:
    """Decode clips and precompute their loud window starts."""
    loaded = []
    for clip in clips:
        samples = load_audio(clip.path)
        loaded.append(LoadedClip(clip, samples, loud_starts(samples)))
    return loaded


def fixed_windows(
    clips: list[LoadedClip], seed: int, per_clip: int = 2
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
    """Deterministic un-augmented windows for checkpoint selection: loud windows of every clip."""
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for loaded in clips:
        samples = loaded.samples
        for _ in range(per_clip if samples.size > WINDOW_SAMPLES else 1):
            out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
            if samples.size >= WINDOW_SAMPLES:
                start = int(rng.choice(loaded.starts))
                out[:] = samples[start : start + WINDOW_SAMPLES]
            else:
                offset = (WINDOW_SAMPLES - samples.size) // 2
                out[offset : offset + samples.size] = samples
            out += (rng.standard_normal(WINDOW_SAMPLES) * 10 ** (-60 / 20)).astype(np.float32)
            feats.append(features(out))
            labels.append(loaded.clip.label_index)
    return np.stack(feats), np.array(labels, dtype=np.int64)
