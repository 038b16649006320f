"""Training windows that look like homes: events where the energy is, mixed into background (NumPy only).

Each call of `WindowSampler.sample()` draws a class (class-balanced), a clip, a window of 15,480
samples where that clip's energy is, and augments it in the waveform domain: events mixed into real
background at -6..+15 dB SNR (short clips placed at a random offset inside that context), overall gain
-20..+6 dB, a simple synthetic room reverb, and FBANK from the engine. SpecAugment and mixup act on
the feature batch in `training.train`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from training.audio import LABELS, WINDOW_SAMPLES, Clip, features, fit_window, load_audio

SAMPLE_RATE_HZ = 8000
CLASS_SHARE = (0.4, 0.2, 0.2, 0.2)
"""Share of each class in a batch: background gets more, since false alarms are what users hate."""

# ESC-50 background categories that sound like an event class or are impulsive household noises:
# sampled more often so that the model learns to keep them in `background`.
HARD_NEGATIVE_CATEGORIES = {
    5: "cat",  # meows resemble cries
    21: "sneezing",
    22: "clapping",
    24: "coughing",
    25: "footsteps",
    26: "laughing",
    30: "door_wood_knock",
    31: "mouse_click",
    33: "door_wood_creaks",
    34: "can_opening",
    37: "clock_alarm",
    38: "clock_tick",
    42: "siren",
    48: "fireworks",
    15: "water_drops",
    19: "thunderstorm",
    12: "crackling_fire",
    6: "hen",
    1: "rooster",
}
HARD_NEGATIVE_WEIGHT = 4.0
ESC50_WEIGHT = 2.0
"""ESC-50 clips are the most varied background; the 1 s Speech Commands / MS-SNSD windows are many."""


def rms(samples: npt.NDArray[np.float32]) -> float:
    """Root mean square, floored so that silence does not divide by zero."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def loud_starts(samples: npt.NDArray[np.float32], keep: float = 0.5, hop: int = 400) -> npt.NDArray[np.int64]:
    """Window starts (every `hop` samples) whose energy is at least `keep` of the loudest window's."""
    if samples.size <= WINDOW_SAMPLES:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, samples.size - WINDOW_SAMPLES + 1, hop)
    cumulative = np.concatenate([[0.0], np.cumsum(np.square(samples, dtype=np.float64))])
    energy = cumulative[starts + WINDOW_SAMPLES] - cumulative[starts]
    return starts[energy >= keep * energy.max()]


def room_impulse_response(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Exponentially decaying noise tail after a direct path: a crude but useful room model."""
    rt60 = rng.uniform(0.15, 0.8)
    length = int(rt60 * SAMPLE_RATE_HZ)
    t = np.arange(length) / SAMPLE_RATE_HZ
    tail = rng.standard_normal(length) * np.exp(-6.9 * t / rt60)  # -60 dB at rt60
    tail *= rng.uniform(0.1, 0.6) / (np.sqrt(np.sum(tail**2)) + 1e-9)
    tail[0] = 1.0
    return tail.astype(np.float32)


def convolve(samples: npt.NDArray[np.float32], ir: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Linear convolution by FFT, cut to the input length."""
    size = 1 << (samples.size + ir.size - 1).bit_length()
    out = np.fft.irfft(np.fft.rfft(samples, size) * np.fft.rfft(ir, size), size)[: samples.size]
    return out.astype(np.float32)


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


class WindowSampler:
    """Draws augmented (features, label) training windows from one split."""

    def __init__(
        self,
        clips: list[LoadedClip],
        seed: int,
        *,
        augment: bool = True,
        snr_db: tuple[float, float] = (-6.0, 15.0),
    ) -> None:
        self.rng = np.random.default_rng(seed)
        self.augment = augment
        self.snr_db = snr_db
        self.by_label = [[c for c in clips if c.clip.label == label] for label in LABELS]
        background = self.by_label[0]
        weights = np.array([self._background_weight(c.clip) for c in background], dtype=np.float64)
        self.background_p = weights / weights.sum()
        self.hard_negatives: list[tuple[int, int]] = []
        """(background clip index, window start) of mined windows the model scored as an event."""
        self.hard_share = 0.0
        """Share of background windows drawn from `hard_negatives` (set by the trainer once it mines)."""

    @staticmethod
    def _background_weight(clip: Clip) -> float:
        category = clip.esc50_category
        if category is None:
            return 1.0
        return HARD_NEGATIVE_WEIGHT if category in HARD_NEGATIVE_CATEGORIES else ESC50_WEIGHT

    def _background_clip(self) -> LoadedClip:
        return self.by_label[0][self.rng.choice(len(self.by_label[0]), p=self.background_p)]

    def mining_candidates(self, count: int) -> tuple[list[tuple[int, int]], npt.NDArray[np.float32]]:
        """`count` random background windows, un-augmented: their (clip index, start) and features."""
        refs, feats = [], []
        background = self.by_label[0]
        for index in self.rng.choice(len(background), size=count, p=self.background_p):
            samples = background[int(index)].samples
            start = int(self.rng.integers(0, max(1, samples.size - WINDOW_SAMPLES + 1)))
            refs.append((int(index), start))
            feats.append(features(fit_window(samples, start) + self._noise_floor()))
        return refs, np.stack(feats)

    def _hard_negative(self) -> npt.NDArray[np.float32]:
        """A mined hard-negative window, shifted by up to +-0.25 s."""
        index, start = self.hard_negatives[int(self.rng.integers(len(self.hard_negatives)))]
        samples = self.by_label[0][index].samples
        start = int(np.clip(start + self.rng.integers(-2000, 2001), 0, max(0, samples.size - WINDOW_SAMPLES)))
        return fit_window(samples, start)

    def _segment(self, loaded: LoadedClip, loud: bool) -> npt.NDArray[np.float32]:
        """A window of the clip (at a loud place or anywhere); short clips at a random offset in zeros."""
        samples = loaded.samples
        out = np.zeros(WINDOW_SAMPLES, dtype=np.float32)
        if samples.size >= WINDOW_SAMPLES:
            if loud:
                start = int(self.rng.choice(loaded.starts)) + int(self.rng.integers(-2000, 2001))
            else:
                start = int(self.rng.integers(0, samples.size - WINDOW_SAMPLES + 1))
            start = int(np.clip(start, 0, samples.size - WINDOW_SAMPLES))
            out[:] = samples[start : start + WINDOW_SAMPLES]
        else:
            offset = int(self.rng.integers(0, WINDOW_SAMPLES - samples.size + 1))
            out[offset : offset + samples.size] = samples
        return out

    def _context(self) -> npt.NDArray[np.float32]:
        """Background to put an event in: a real background window, tiled if the clip is short."""
        loaded = self._background_clip()
        samples = loaded.samples
        if samples.size < WINDOW_SAMPLES:
            samples = np.tile(samples, WINDOW_SAMPLES // max(1, samples.size) + 1)
        start = int(self.rng.integers(0, samples.size - WINDOW_SAMPLES + 1))
        return samples[start : start + WINDOW_SAMPLES].copy()

    def _noise_floor(self) -> npt.NDArray[np.float32]:
        level = 10 ** (self.rng.uniform(-75, -50) / 20)
        return (self.rng.standard_normal(WINDOW_SAMPLES) * level).astype(np.float32)

    def waveform(self, label_index: int) -> npt.NDArray[np.float32]:
        """One augmented waveform window of the class."""
        rng = self.rng
        if label_index == 0:
            if self.hard_negatives and rng.random() < self.hard_share:
                window = self._hard_negative()
            else:
                window = self._segment(self._background_clip(), loud=rng.random() < 0.6)
            if self.augment and rng.random() < 0.3:  # two background sounds at once
                window = window + self._context() * 10 ** (-rng.uniform(0, 15) / 20) * rms(window) / rms(
                    self._context()
                )
        else:
            pool = self.by_label[label_index]
            loaded = pool[int(rng.integers(len(pool)))]
            window = self._segment(loaded, loud=True)
            if self.augment and rng.random() < 0.85:
                context = self._context()
                snr_db = rng.uniform(*self.snr_db)
                event_level = rms(window[np.abs(window) > 0]) if np.any(window) else 1e-6
                window = window + context * (event_level / rms(context)) * 10 ** (-snr_db / 20)
        if self.augment:
            if rng.random() < 0.3:
                window = convolve(window, room_impulse_response(rng))
            # Near and far sources: a loud clip pushed up may clip, as a close microphone does.
            window = window * 10 ** (rng.uniform(-20, 6) / 20)
            window = np.clip(window, -1.0, 1.0)
        # Never digital silence: real microphones always have a noise floor.
        return (window + self._noise_floor()).astype(np.float32)

    def sample(self) -> tuple[npt.NDArray[np.float32], int]:
        """(features [192, 24], label index) of a class drawn with CLASS_SHARE."""
        label_index = int(self.rng.choice(len(LABELS), p=CLASS_SHARE))
        return features(self.waveform(label_index)), label_index

    def batch(self, size: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        """A batch of features [size, 192, 24] and labels [size]."""
        pairs = [self.sample() for _ in range(size)]
        return np.stack([p[0] for p in pairs]), np.array([p[1] for p in pairs], dtype=np.int64)


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
