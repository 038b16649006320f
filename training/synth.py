"""Procedurally synthesised glass breaks, for variety where real recordings are few (`--synth N`).

A glass break is an impact followed by a shower of shards: each shard rings as a few damped high
resonances (glass rings at 2-8 kHz; at 8 kHz audio up to 3.9 kHz is left), the shards arrive in a burst
that thins out over 0.2-1.5 s, and some fall again on the floor a moment later. Everything is drawn from
a seeded generator, so a given (seed, index) always gives the same clip. The clips are training-only
events; whether they help is decided by the cross-source folds (`training.crossval`), never by the dev
test split.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from training.audio import Clip
from training.audio_paths import cache_dir
from training.data.audio_io import write_flac

SAMPLE_RATE_HZ = 8000
VERSION = 1


def _damped(rng: np.random.Generator, length: int, freq_hz: float, decay_s: float) -> npt.NDArray[np.float64]:
    t = np.arange(length) / SAMPLE_RATE_HZ
    return np.sin(2 * np.pi * freq_hz * t + rng.uniform(0, 2 * np.pi)) * np.exp(-t / decay_s)


def glass_break(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """One synthetic glass break, 0.6-2.5 s, peak-normalised to -1..-12 dBFS."""
    duration = rng.uniform(0.6, 2.5)
    out = np.zeros(int(duration * SAMPLE_RATE_HZ) + SAMPLE_RATE_HZ // 2)
    start = int(rng.uniform(0.02, 0.1) * SAMPLE_RATE_HZ)
    # The impact: a short broadband burst with a low thump.
    impact_len = int(rng.uniform(0.005, 0.03) * SAMPLE_RATE_HZ)
    burst = rng.standard_normal(impact_len) * np.exp(-np.arange(impact_len) / (impact_len / 4))
    out[start : start + impact_len] += burst * rng.uniform(0.5, 1.0)
    thump_len = int(0.08 * SAMPLE_RATE_HZ)
    out[start : start + thump_len] += _damped(
        rng, thump_len, rng.uniform(80, 300), rng.uniform(0.01, 0.04)
    ) * rng.uniform(0.1, 0.6)
    # The shards: a dense shower of grains that thins out, then a few pieces falling later. Most grains
    # are short noise bursts (dense breaks sound broadband, like crackle), some ring as damped resonances.
    spread = rng.uniform(0.2, 1.5)
    count = int(rng.uniform(80, 500))
    onsets = start + (rng.exponential(spread / 3, count) * SAMPLE_RATE_HZ).astype(int)
    falls = int(rng.integers(0, 30))
    later = (
        start
        + int(rng.uniform(0.3, 0.9) * SAMPLE_RATE_HZ)
        + (rng.exponential(0.15, falls) * SAMPLE_RATE_HZ).astype(int)
    )
    tonal_share = rng.uniform(0.05, 0.5)
    for onset in np.concatenate([onsets, later]):
        if rng.random() < tonal_share:
            length = int(rng.uniform(0.02, 0.15) * SAMPLE_RATE_HZ)
            grain = sum(
                _damped(rng, length, rng.uniform(1500, 3900), rng.uniform(0.004, 0.05))
                * rng.uniform(0.2, 1.0)
                for _ in range(int(rng.integers(1, 4)))
            )
        else:
            length = int(rng.uniform(0.003, 0.03) * SAMPLE_RATE_HZ)
            grain = rng.standard_normal(length) * np.exp(
                -np.arange(length) / max(1.0, length / rng.uniform(2, 6))
            )
        if onset + length >= out.size:
            continue
        level = np.exp(-(onset - start) / SAMPLE_RATE_HZ / spread) * rng.uniform(0.1, 1.0)
        out[onset : onset + length] += grain * level
    # A first-order high shelf: thin, bright, as glass sounds through a small microphone.
    out[1:] -= rng.uniform(0.0, 0.9) * out[:-1]
    peak = np.max(np.abs(out)) + 1e-9
    return (out / peak * 10 ** (-rng.uniform(1, 12) / 20)).astype(np.float32)


def synth_clips(count: int, seed: int = 20261130) -> list[Clip]:
    """`count` synthetic glass breaks as train clips, written once to <cache>/data-synth/ (FLAC)."""
    root = cache_dir() / "data-synth"
    clips = []
    for index in range(count):
        path = root / "audio" / "glassbreak" / f"synth_glass__v{VERSION}-{seed}-{index:05d}.flac"
        if not path.is_file():
            samples = glass_break(np.random.default_rng([seed, index]))
            path.parent.mkdir(parents=True, exist_ok=True)
            write_flac(path, samples)
        clips.append(
            Clip(
                path=path,
                label="glassbreak",
                source="synth_glass",
                group=f"synth_glass:{index}",
                split="train",
                duration_s=0.0,
                original=f"training.synth.glass_break v{VERSION} seed {seed} index {index}",
                licence="MIT",
            )
        )
    return clips
