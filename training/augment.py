"""Training windows drawn from cached log mel frames and augmented in the log mel domain (torch).

Every window is a slice of 192 cached frames (`training.frames`), so a batch costs a gather and a few
vectorised tensor operations, not a waveform and an FBANK per window. What a home and a camera do to
sound is applied to the log mel power L = log(mel power) of each window, where it is cheap:

- mixing two sounds: log(e^A + e^B) = logaddexp(A, B) (power adds; the cross term averages out over a
  mel band: `tests/training/test_augment.py` checks it against mixing waveforms);
- a gain of g dB: L + g ln(10) / 10; an event mixed into background at an SNR of -5..+25 dB;
- a microphone/room response: a smooth random curve over the mel bins (tilt and bumps, +-6 dB), and the
  telephone band of G.711 cameras (300-3400 Hz) as steep attenuation outside it;
- room reverb: an exponentially decaying tail (RT60 0.2-1.0 s) convolved over time in the power domain;
- camera automatic gain: a slow (0.2-2 s) gain that pulls the loudness towards a set point;
- the microphone's noise floor (real white-noise frames at a random level) under everything;
- SpecAugment (time and mel masks) after the per-window mean normalisation that the engine applies too.

Codec artefacts come from the cached variants (PCMU, PCMA, AAC, Opus round trips through PyAV).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
import math

import numpy as np
import numpy.typing as npt
import torch

from custom_components.sound_sentry.engine.fbank import FbankSettings, mel_centres_hz
from training.audio import LABELS, Clip
from training.frames import ClipFrames, noise_frames

WINDOW_FRAMES = 192
MEL_BINS = 24
LOG10 = math.log(10.0)
SILENT = -30.0
"""Log power of frames outside a clip (about -130 dB): the noise floor always covers it."""
MIN_EVENT_FRAMES = 30
"""An event window holds at least this many frames (0.3 s) from one of the event's active frames on."""
ACTIVE_DB = 25.0
"""An event clip's frames within this many dB of its loudest frame are where the event is."""


def db(value: float | torch.Tensor) -> float | torch.Tensor:
    """DB of power as a shift of log power."""
    return value * LOG10 / 10.0


@dataclass(frozen=True)
class AugmentSettings:
    """Probabilities and ranges of the augmentations (the recipe's knobs)."""

    background_share: float = 0.7
    """Share of background windows per batch: homes hear far more background than events."""
    snr_db: tuple[float, float] = (-5.0, 25.0)
    event_in_background: float = 0.9
    """Share of event windows mixed into a background window (else only the noise floor)."""
    background_pair: float = 0.5
    """Share of background windows that are two background sounds at once."""
    noise_floor_db: tuple[float, float] = (-80.0, -25.0)
    """Noise floor relative to the sound's loudness: from near-silent rooms to noisy cheap microphones."""
    quiet_background: float = 0.08
    """Share of background windows that are a quiet room: the sound far below the noise floor."""
    codec: float = 0.5
    """Share of windows taken from a codec round trip instead of the original audio."""
    eq: float = 0.8
    telephone_band: float = 0.25
    reverb: float = 0.4
    agc: float = 0.3
    spec_time_masks: int = 2
    spec_mel_masks: int = 2


def _weights(clips: Sequence[Clip], power: float = 0.5) -> npt.NDArray[np.float64]:
    """Sampling weights that flatten sources: a clip of a source with n clips weighs n^-power."""
    counts = Counter(c.kind for c in clips)
    weights = np.array([counts[c.kind] ** -power for c in clips], dtype=np.float64)
    return weights / weights.sum()


class FrameSampler:
    """Augmented, mean-normalised training windows [B, 192, 24] with their labels."""

    def __init__(
        self,
        clips: Sequence[Clip],
        variants: Sequence[ClipFrames],
        seed: int,
        settings: AugmentSettings | None = None,
        teacher: dict[str, dict[str, list[float]]] | None = None,
    ) -> None:
        """`variants[v].of(i)` are the frames of `clips[i]` in variant VARIANTS[v].

        `teacher` maps a clip's path to its teacher scores per class and teacher window (`training.teacher`).
        """
        self.settings = settings or AugmentSettings()
        self.rng = np.random.default_rng(seed)
        self.generator = torch.Generator().manual_seed(seed)
        self.clips = list(clips)
        self.variants = list(variants)
        self.labels = np.array([c.label_index for c in clips], dtype=np.int64)
        self.by_label = [np.flatnonzero(self.labels == index) for index in range(len(LABELS))]
        self.weights = [_weights([self.clips[i] for i in indices]) for indices in self.by_label]
        frames = self.variants[0]
        lengths = np.diff(frames.offsets)
        # Frame loudness (log of the mean mel power) of the original audio, for event placement.
        self.loudness = np.logaddexp.reduce(frames.frames.astype(np.float32), axis=1) - math.log(MEL_BINS)
        self.active: list[npt.NDArray[np.int64]] = []
        for index in range(len(clips)):
            loud = self.loudness[frames.offsets[index] : frames.offsets[index + 1]]
            self.active.append(
                np.flatnonzero(loud >= loud.max() - db(ACTIVE_DB))
                if lengths[index]
                else np.zeros(1, np.int64)
            )
        self.teacher: list[npt.NDArray[np.float32] | None] = []
        """Per clip: the teacher's score of the clip's own class per 0.5 s window, rescaled so that the
        median of the class's best windows is 1 (the tagger's scores are poorly calibrated)."""
        reference = {
            label: float(np.median([max(v[label]) for v in teacher.values() if v.get(label)]))
            for label in (LABELS[1:] if teacher else ())
            if any(label in v for v in (teacher or {}).values())
        }
        for clip in self.clips:
            scores = (teacher or {}).get(str(clip.path), {}).get(clip.label)
            self.teacher.append(
                None
                if scores is None
                else np.minimum(1.0, np.array(scores, np.float32) / reference[clip.label])
            )
        self.noise = torch.from_numpy(noise_frames())
        self.hard_negatives: list[tuple[int, int]] = []
        """(clip index, first frame) of background windows the model took for an event (mining)."""
        self.hard_share = 0.0
        freqs = torch.from_numpy(mel_centres_hz(FbankSettings())).float()
        self._log_freq = torch.log2(freqs / 1000.0)
        self._tele = torch.relu(torch.log2(300.0 / freqs)) + torch.relu(torch.log2(freqs / 3400.0))

    # --- drawing clips and slices -------------------------------------------------------------------

    def _clip(self, label: int, count: int) -> npt.NDArray[np.int64]:
        return self.rng.choice(self.by_label[label], size=count, p=self.weights[label])

    def _slice(self, clip: int, start: int, variant: int) -> npt.NDArray[np.float32]:
        """Frames start .. start + 192 of a clip (SILENT outside it)."""
        frames = self.variants[variant].of(clip)
        out = np.full((WINDOW_FRAMES, MEL_BINS), SILENT, dtype=np.float32)
        lo, hi = max(0, start), min(len(frames), start + WINDOW_FRAMES)
        if hi > lo:
            out[lo - start : hi - start] = frames[lo:hi]
        return out

    def _variant(self) -> int:
        if self.rng.random() >= self.settings.codec:
            return 0
        return int(self.rng.integers(1, len(self.variants)))

    def _background_start(self, clip: int) -> int:
        length = len(self.variants[0].of(clip))
        if length <= WINDOW_FRAMES:  # a short sound somewhere in the window
            return -int(self.rng.integers(0, WINDOW_FRAMES - length + 1))
        return int(self.rng.integers(0, length - WINDOW_FRAMES + 1))

    def _event_start(self, clip: int) -> int:
        """A start that puts one of the clip's active frames anywhere up to 0.3 s before the window's end.

        Onsets late in the window are included: that is what a live stream sees first, and what makes
        detection fast; an event's last 10 ms alone would be a click, not an event.
        """
        anchor = int(self.rng.choice(self.active[clip]))
        return anchor - int(self.rng.integers(0, WINDOW_FRAMES - MIN_EVENT_FRAMES))

    def background_window(self, variant: int | None = None) -> tuple[npt.NDArray[np.float32], int, int]:
        """(frames, clip, start) of one background window, mined hard negatives at their share."""
        if self.hard_negatives and self.rng.random() < self.hard_share:
            clip, start = self.hard_negatives[int(self.rng.integers(len(self.hard_negatives)))]
            start += int(self.rng.integers(-25, 26))
        else:
            clip = int(self._clip(0, 1)[0])
            start = self._background_start(clip)
        return self._slice(clip, start, self._variant() if variant is None else variant), clip, start

    # --- a batch ------------------------------------------------------------------------------------

    def _teacher_score(self, clip: int, start: int) -> float:
        """The teacher's rescaled score of the clip's class around this window (NaN: none)."""
        scores = self.teacher[clip]
        if scores is None:
            return float("nan")
        index = int(np.clip(round((start + WINDOW_FRAMES / 2 - 100) / 50), 0, len(scores) - 1))
        return float(scores[index])

    def raw_batch(
        self, size: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(foreground, context, has_context, labels, teacher) of a batch, before augmentation.

        Shapes [B,192,24], [B,192,24], [B], [B], [B]; teacher is the rescaled teacher score of event
        windows (NaN where there is none).
        """
        s = self.settings
        labels = np.where(
            self.rng.random(size) < s.background_share, 0, self.rng.integers(1, len(LABELS), size)
        )
        fore = np.empty((size, WINDOW_FRAMES, MEL_BINS), np.float32)
        context = np.full((size, WINDOW_FRAMES, MEL_BINS), SILENT, np.float32)
        has_context = np.zeros(size, dtype=bool)
        teacher = np.full(size, np.nan, dtype=np.float32)
        for row, label in enumerate(labels):
            if label == 0:
                fore[row] = self.background_window()[0]
                mix = self.rng.random() < s.background_pair
            else:
                clip = int(self._clip(int(label), 1)[0])
                start = self._event_start(clip)
                fore[row] = self._slice(clip, start, self._variant())
                teacher[row] = self._teacher_score(clip, start)
                mix = self.rng.random() < s.event_in_background
            if mix:
                context[row] = self.background_window()[0]
                has_context[row] = True
        return (
            torch.from_numpy(fore),
            torch.from_numpy(context),
            torch.from_numpy(has_context),
            torch.from_numpy(labels.astype(np.int64)),
            torch.from_numpy(teacher),
        )

    def batch(self, size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Augmented, mean-normalised windows [B, 192, 24], labels [B] and teacher scores [B] (NaN: none)."""
        fore, context, has_context, labels, teacher = self.raw_batch(size)
        return self.augment(fore, context, has_context, labels), labels, teacher

    def _uniform(self, size: int, low: float, high: float) -> torch.Tensor:
        return torch.empty(size).uniform_(low, high, generator=self.generator)

    def _chance(self, size: int, p: float) -> torch.Tensor:
        return torch.rand(size, generator=self.generator) < p

    def augment(
        self, fore: torch.Tensor, context: torch.Tensor, has_context: torch.Tensor, labels: torch.Tensor
    ) -> torch.Tensor:
        """The log-domain augmentations of the module docstring, then mean normalisation and SpecAugment."""
        s, size = self.settings, fore.shape[0]
        # Mix: an event at an SNR over its background; a second background sound 0..15 dB under the first.
        level_fore = _level(fore, active=labels > 0)
        level_context = _level(context, active=torch.zeros_like(labels, dtype=torch.bool))
        snr = torch.where(labels > 0, self._uniform(size, *s.snr_db), self._uniform(size, 0.0, 15.0))
        shift = level_fore - level_context - db(snr)
        mixed = torch.where(
            has_context[:, None, None], torch.logaddexp(fore, context + shift[:, None, None]), fore
        )
        quiet = (labels == 0) & self._chance(size, s.quiet_background)
        mixed = mixed - torch.where(quiet, self._uniform(size, 30.0, 70.0), torch.zeros(size))[
            :, None, None
        ] * (LOG10 / 10)
        # Microphone / room colouring and the telephone band.
        eq = self._chance(size, s.eq)[:, None]
        tilt = self._uniform(size, -6.0, 6.0)[:, None] * self._log_freq[None, :] / 2.0
        centre = self._uniform(size, -2.5, 2.0)[:, None]
        bump = self._uniform(size, -6.0, 6.0)[:, None] * torch.exp(
            -((self._log_freq[None, :] - centre) ** 2) / 0.5
        )
        curve = torch.where(eq, tilt + bump, torch.zeros(size, MEL_BINS))
        tele = self._chance(size, s.telephone_band)[:, None]
        curve = curve - torch.where(tele, self._uniform(size, 12.0, 24.0)[:, None] * self._tele[None, :], 0.0)
        mixed = mixed + db(curve)[:, None, :]
        mixed = _reverb(
            mixed,
            self._chance(size, s.reverb),
            self._uniform(size, 0.2, 1.0),
            self._uniform(size, -3.0, 10.0),
        )
        mixed = _agc(
            mixed, self._chance(size, s.agc), self._uniform(size, 0.2, 2.0), self._uniform(size, 0.3, 0.9)
        )
        # The noise floor under everything, at a level relative to the (unquieted) sound.
        starts = torch.randint(0, len(self.noise) - WINDOW_FRAMES, (size,), generator=self.generator)
        noise = torch.stack([self.noise[i : i + WINDOW_FRAMES] for i in starts.tolist()])
        floor = level_fore + db(self._uniform(size, *s.noise_floor_db))
        # Microphone noise is rarely white: a random tilt of -6..+2 dB per octave (pink-ish to white).
        noise_tilt = db(self._uniform(size, -6.0, 2.0)[:, None] * self._log_freq[None, :])
        out = torch.logaddexp(mixed, noise + floor[:, None, None] + noise_tilt[:, None, :])
        out = out - out.mean(dim=1, keepdim=True)
        return spec_augment(out, self.generator, s.spec_time_masks, s.spec_mel_masks)


def _level(frames: torch.Tensor, active: torch.Tensor) -> torch.Tensor:
    """Log of the mean mel power per window; for events, over their frames within 25 dB of the loudest."""
    loud = torch.logsumexp(frames, dim=2) - math.log(MEL_BINS)  # [B, T]
    mask = torch.where(
        active[:, None], loud >= loud.max(dim=1, keepdim=True).values - db(ACTIVE_DB), loud > SILENT + 1
    )
    mask = mask | ~mask.any(dim=1, keepdim=True)
    masked = torch.where(mask, loud, torch.full_like(loud, -1e4))
    return torch.logsumexp(masked, dim=1) - torch.log(mask.sum(dim=1).float())


def _reverb(
    frames: torch.Tensor, on: torch.Tensor, rt60_s: torch.Tensor, drr_db: torch.Tensor
) -> torch.Tensor:
    """A diffuse exponential tail added in the power domain (0.5 s of it at most per frame)."""
    rows = torch.nonzero(on).flatten()
    if len(rows) == 0:
        return frames
    taps = torch.arange(1, 51, dtype=torch.float32)
    kernel = torch.exp(-6.9 * taps[None, :] * 0.01 / rt60_s[rows, None])  # -60 dB at RT60
    kernel = kernel / kernel.sum(dim=1, keepdim=True) * 10 ** (-drr_db[rows, None] / 10)
    dry = frames[rows]
    peak = dry.amax(dim=(1, 2), keepdim=True)
    power = torch.exp(dry - peak)  # [R, T, F]
    size, length, bins = power.shape
    padded = torch.nn.functional.pad(power.transpose(1, 2), (50, 0))  # [R, F, 50 + T]
    weight = kernel.flip(1)[:, None, :].repeat_interleave(bins, dim=0)  # [R*F, 1, 50]
    tail = torch.nn.functional.conv1d(padded.reshape(1, size * bins, -1), weight, groups=size * bins)
    tail = tail.reshape(size, bins, -1)[:, :, :length].transpose(1, 2)
    out = frames.clone()
    out[rows] = torch.log(power + tail + 1e-30) + peak
    return out


def _agc(frames: torch.Tensor, on: torch.Tensor, tau_s: torch.Tensor, strength: torch.Tensor) -> torch.Tensor:
    """Camera automatic gain: a causal, smoothed loudness pulled towards its mean by `strength`."""
    rows = torch.nonzero(on).flatten()
    if len(rows) == 0:
        return frames
    loud = torch.logsumexp(frames[rows], dim=2)  # [R, T]
    alpha = torch.exp(-0.01 / tau_s[rows])
    # The one-pole smoother as a convolution with its (truncated, 3 s) impulse response.
    taps = torch.arange(300, dtype=torch.float32)
    kernel = (1 - alpha[:, None]) * alpha[:, None] ** taps[None, :]
    padded = torch.cat([loud[:, :1].expand(-1, 299), loud], dim=1)
    smooth = torch.nn.functional.conv1d(padded[None], kernel.flip(1)[:, None, :], groups=len(rows))[
        0
    ] / kernel.sum(dim=1, keepdim=True)
    gain = -strength[rows, None] * (smooth - smooth.mean(dim=1, keepdim=True))
    out = frames.clone()
    out[rows] = frames[rows] + gain[:, :, None]
    return out


def spec_augment(
    batch: torch.Tensor, generator: torch.Generator, time_masks: int = 2, mel_masks: int = 2
) -> torch.Tensor:
    """Time masks (<= 20 frames) and mel masks (<= 3 bins) per window, set to the mean (0)."""
    size, frames, bins = batch.shape
    time_index, mel_index = torch.arange(frames)[None, :], torch.arange(bins)[None, :]
    in_time = torch.zeros(size, frames, dtype=torch.bool)
    in_mel = torch.zeros(size, bins, dtype=torch.bool)
    for _ in range(time_masks):
        width = torch.randint(0, 21, (size,), generator=generator)
        start = (torch.rand(size, generator=generator) * (frames - width)).long()
        in_time |= (time_index >= start[:, None]) & (time_index < (start + width)[:, None])
    for _ in range(mel_masks):
        width = torch.randint(0, 4, (size,), generator=generator)
        start = (torch.rand(size, generator=generator) * (bins - width)).long()
        in_mel |= (mel_index >= start[:, None]) & (mel_index < (start + width)[:, None])
    return batch.masked_fill(in_time[:, :, None] | in_mel[:, None, :], 0.0)
