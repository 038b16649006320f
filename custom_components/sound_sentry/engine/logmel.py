"""EfficientAT's log mel spectrogram, computed natively at 8 kHz: no resampler, one frame per 10 ms.

EfficientAT (the AudioSet-pretrained MobileNets) hears 32 kHz audio through pre-emphasis, an STFT of
1024 points every 320 samples with an 800-sample Hann window, power, 128 Kaldi mel bands from 0 to
15 kHz, log(x + 1e-5) and (x + 4.5) / 5. On 8 kHz audio upsampled 4x, everything above 4 kHz is empty,
and the same spectrum below 4 kHz comes straight from the 8 kHz samples: a 256-point STFT every 80
samples with that Hann window decimated by 4 (200 samples, centred in 256), power times 16, the 32 kHz
pre-emphasis as a weight on each frequency's power, and the first 129 columns of the mel banks.
`LogMelSettings.num_bands` says how many bands the model takes: the 79 below 4 kHz hold the audio, the
rest sit at the log floor at 8 kHz.

Frames are cut without padding (frame i covers samples [80 i, 80 i + 256)), so that a stream's frames
are computed once and every window is a slice of them; the pretrained network is convolutional and does
not mind the 4 ms offset from EfficientAT's centred frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .fbank import FbankSettings, mel_filterbank
from .framing import FrameExtractor

UPSAMPLING = 4
"""EfficientAT's 32 kHz over our 8 kHz."""


@dataclass(frozen=True, kw_only=True)
class LogMelSettings:
    """The front end of an EfficientAT model fine-tuned at 8 kHz; the defaults are EfficientAT's."""

    sample_rate_hz: int = 8000
    fft_size: int = 256
    """Samples per frame (32 ms): EfficientAT's 1024 at 32 kHz."""
    frame_shift: int = 80
    """Samples between frame starts (10 ms)."""
    window_length: int = 200
    """Hann window length in samples, centred in the frame: EfficientAT's 800 at 32 kHz."""
    preemphasis: float = 0.97
    """EfficientAT's pre-emphasis coefficient at 32 kHz, applied here as a spectral weight."""
    mel_bands: int = 128
    """Bands of EfficientAT's mel bank (0 Hz to `mel_high_hz` at 32 kHz)."""
    mel_high_hz: float = 15000.0
    num_bands: int = 79
    """Lowest bands kept: the 79 that reach below 4 kHz hold all the audio. The accurate model takes all
    128 (its sidecar says so): the upper ones sit at the log floor, as the pretrained network saw 8 kHz
    audio (models/accurate.md compares the two)."""
    log_offset: float = 1e-5
    shift: float = 4.5
    scale: float = 5.0
    """The output is (log(mel + log_offset) + shift) / scale."""


class LogMelExtractor(FrameExtractor):
    """EfficientAT log mel frames of 8 kHz audio, one-shot (`compute`) or streaming (`process_streaming`).

    The same interface as `FbankExtractor` (both are `FrameExtractor`s): frames from a whole waveform,
    or only the new frames of each chunk with the samples that do not fill a frame carried over;
    `reset()` forgets them.
    """

    def __init__(self, settings: LogMelSettings | None = None) -> None:
        self.settings = s = settings or LogMelSettings()
        if s.window_length > s.fft_size:
            raise ValueError(f"window_length {s.window_length} exceeds fft_size {s.fft_size}")
        super().__init__(frame_length=s.fft_size, frame_shift=s.frame_shift, num_features=s.num_bands)
        rate_32k = s.sample_rate_hz * UPSAMPLING
        hann = np.hanning(s.window_length * UPSAMPLING)[::UPSAMPLING]  # torch.hann_window(periodic=False)
        left = (s.fft_size - s.window_length) // 2
        self._window = np.zeros(s.fft_size, np.float32)
        self._window[left : left + s.window_length] = hann
        bins = s.fft_size // 2 + 1
        freqs = np.arange(bins) * s.sample_rate_hz / s.fft_size
        emphasis = np.abs(1 - s.preemphasis * np.exp(-2j * np.pi * freqs / rate_32k)) ** 2
        banks = mel_filterbank(
            FbankSettings(
                sample_rate_hz=rate_32k,
                num_mel_bins=s.mel_bands,
                low_freq_hz=0.0,
                high_freq_hz=s.mel_high_hz,
            ),
            s.fft_size * UPSAMPLING,
        )[: s.num_bands, :bins]
        # Power x 16: a 4x upsampled frame has 4x the samples of the same amplitude.
        self._mel = (banks * emphasis[None, :] * UPSAMPLING**2).T.astype(np.float32).copy()

    def _features(self, frames: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        s = self.settings
        spectrum = np.fft.rfft(frames * self._window, axis=1)
        power = (spectrum.real**2 + spectrum.imag**2).astype(np.float32)
        mel = power @ self._mel
        features: npt.NDArray[np.float32] = (
            (np.log(mel + np.float32(s.log_offset)) + np.float32(s.shift)) / np.float32(s.scale)
        ).astype(np.float32)
        return features
