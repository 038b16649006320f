"""Kaldi-compatible log mel filterbank (FBANK) features in NumPy, one-shot or streaming."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .framing import FrameExtractor

_FLOAT32_EPS = float(np.finfo(np.float32).eps)


@dataclass(frozen=True, kw_only=True)
class FbankSettings:
    """Feature settings; the defaults are the model's (FACTS §4) and match Kaldi's defaults."""

    sample_rate_hz: int = 8000
    num_mel_bins: int = 24
    frame_length: int = 200
    """Samples per frame (25 ms at 8 kHz)."""
    frame_shift: int = 80
    """Samples between frame starts (10 ms at 8 kHz)."""
    preemphasis: float = 0.97
    low_freq_hz: float = 20.0
    high_freq_hz: float = 0.0
    """Upper mel edge; <= 0 means the Nyquist frequency plus this value, as in Kaldi."""
    povey_exponent: float = 0.85


def _mel(freq_hz: npt.ArrayLike) -> npt.NDArray[np.float64]:
    return 1127.0 * np.log1p(np.asarray(freq_hz, dtype=np.float64) / 700.0)


def _mel_edges(settings: FbankSettings) -> tuple[float, float]:
    """The mel scale's lowest and highest edge, in mel."""
    nyquist = settings.sample_rate_hz / 2
    high = settings.high_freq_hz if settings.high_freq_hz > 0 else nyquist + settings.high_freq_hz
    return float(_mel(settings.low_freq_hz)), float(_mel(high))


def mel_centres_hz(settings: FbankSettings) -> npt.NDArray[np.float64]:
    """Centre frequency of each mel bin, in Hz."""
    mel_low, mel_high = _mel_edges(settings)
    centres = np.linspace(mel_low, mel_high, settings.num_mel_bins + 2)[1:-1]
    return 700.0 * np.expm1(centres / 1127.0)


def mel_filterbank(settings: FbankSettings, fft_size: int) -> npt.NDArray[np.float32]:
    """Triangular mel weights, shape (num_mel_bins, fft_size // 2 + 1); the Nyquist bin gets 0."""
    mel_low, mel_high = _mel_edges(settings)
    delta = (mel_high - mel_low) / (settings.num_mel_bins + 1)
    left = mel_low + delta * np.arange(settings.num_mel_bins)[:, None]
    center, right = left + delta, left + 2 * delta
    # Kaldi weighs fft_size // 2 bins (DC .. just below Nyquist) and leaves the Nyquist bin out.
    mel = _mel(settings.sample_rate_hz / fft_size * np.arange(fft_size // 2))[None, :]
    rising = (mel - left) / (center - left)
    falling = (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, rising, falling), 0.0)
    return np.pad(weights, ((0, 0), (0, 1))).astype(np.float32)


class FbankExtractor(FrameExtractor):
    """Log mel filterbank frames of 8 kHz audio, exactly as Kaldi computes them.

    Per frame: DC offset removal, pre-emphasis, povey window, zero-padding to a power of two, power
    spectrum, triangular mel filters, log(max(x, float32 eps)); no dither, no energy, snip_edges.
    One-shot (`compute`) or streaming (`process_streaming`, `reset`), as `FrameExtractor` frames them.
    """

    def __init__(self, settings: FbankSettings | None = None) -> None:
        self.settings = s = settings or FbankSettings()
        super().__init__(frame_length=s.frame_length, frame_shift=s.frame_shift, num_features=s.num_mel_bins)
        self.fft_size = 1 << (s.frame_length - 1).bit_length()
        n = np.arange(s.frame_length)
        hann = 0.5 - 0.5 * np.cos(2 * np.pi * n / (s.frame_length - 1))
        self._window = (hann**s.povey_exponent).astype(np.float32)
        self._mel = mel_filterbank(s, self.fft_size).T.copy()

    def _features(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        s = self.settings
        frames = frames - frames.mean(axis=1, keepdims=True)
        emphasised = np.empty_like(frames)
        emphasised[:, 1:] = frames[:, 1:] - s.preemphasis * frames[:, :-1]
        emphasised[:, 0] = frames[:, 0] * (1.0 - s.preemphasis)
        spectrum = np.fft.rfft(emphasised * self._window, n=self.fft_size, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        features: npt.NDArray[np.float32] = np.log(np.maximum(power @ self._mel, _FLOAT32_EPS)).astype(
            np.float32
        )
        return features


def normalise(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Per-utterance mean subtraction per mel bin over time (no variance normalisation)."""
    normalised: npt.NDArray[np.float32] = (features - features.mean(axis=-2, keepdims=True)).astype(
        np.float32
    )
    return normalised
