"""Log mel frames of every clip, computed once and cached: the training windows are slices of them.

FBANK frames are independent of each other (Kaldi's snip_edges: frame t reads samples 80 t .. 80 t + 200),
so a window that starts on a 10 ms frame boundary is exactly a slice of its clip's frames; only the
per-window mean normalisation is left to do per window (`training.augment`). Each clip is stored in
several versions ("variants") that went through what a camera does to audio before it reaches us:
the original, and round trips through G.711 (PCMU, PCMA), AAC and Opus, encoded and decoded by PyAV
(the same FFmpeg the integration decodes with).

The cache lives outside the checkout (`<cache>/frames/`), one file per variant, keyed by the clip list
and the FBANK settings, so a new clip list or new settings rebuild it and nothing stale is read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
import functools
import hashlib
import io
import json
from pathlib import Path
import time
import zlib

import av
import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.fbank import FbankExtractor, FbankSettings
from training.audio import SAMPLE_RATE_HZ, Clip, load_audio
from training.audio_paths import cache_dir
from training.data.audio_io import decode

VARIANTS = ("original", "pcmu", "pcma", "aac", "opus")
"""How each clip is stored; index 0 is the untouched audio."""
_CODECS = {
    "pcmu": ("pcm_mulaw", "wav", 8000, None),
    "pcma": ("pcm_alaw", "wav", 8000, None),
    "aac": ("aac", "adts", 16000, 24_000),
    "opus": ("libopus", "ogg", 16000, 16_000),
}
"""variant -> (PyAV codec, container, sample rate, bit rate): what IP cameras commonly send."""
SLOW_CODECS = ("aac", "opus")
SLOW_CODEC_BACKGROUND_SHARE = 4
"""AAC and Opus encode at ~30x real time here: they process every event clip but only one background
clip in this many (chosen by a hash of its name); the other background clips keep their original audio
in those variants."""
FRAME_SHIFT = 80
FORMAT_VERSION = 1

Frames = npt.NDArray[np.float16]


def codec_round_trip(samples: npt.NDArray[np.float32], variant: str) -> npt.NDArray[np.float32]:
    """`samples` (8 kHz mono float32) encoded with a camera codec and decoded again, time-aligned."""
    if variant == "original":
        return samples
    decoded = _encode_decode(samples, variant)
    out = np.zeros_like(samples)
    lag = codec_delay(variant)
    piece = decoded[lag : lag + samples.size]
    out[: piece.size] = piece
    return out


def _encode_decode(samples: npt.NDArray[np.float32], variant: str) -> npt.NDArray[np.float32]:
    codec, container_format, rate, bit_rate = _CODECS[variant]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"  # type: ignore[attr-defined]
        if bit_rate:
            stream.bit_rate = bit_rate
        encoder_format = stream.codec_context.codec.audio_formats[0].name  # type: ignore[attr-defined]
        resampler = av.AudioResampler(format=encoder_format, layout="mono", rate=rate)
        pcm = np.clip(samples, -1.0, 1.0)
        frame = av.AudioFrame.from_ndarray(
            (pcm * 32767).astype(np.int16)[None, :], format="s16", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE_HZ
        for piece in [*resampler.resample(frame), *resampler.resample(None)]:
            for packet in stream.encode(piece):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return decode(buffer.getvalue())


@functools.cache
def codec_delay(variant: str) -> int:
    """The codec's priming delay in 8 kHz samples (constant per encoder), by cross-correlating noise."""
    rng = np.random.default_rng(0)
    reference = (rng.standard_normal(2 * SAMPLE_RATE_HZ) * 0.1).astype(np.float32)
    reference = np.convolve(reference, np.ones(3) / 3, mode="same").astype(np.float32)  # below 4 kHz
    decoded = _encode_decode(reference, variant)
    size = reference.size - 1200
    scores = [float(np.dot(reference[:size], decoded[lag : lag + size])) for lag in range(1201)]
    return int(np.argmax(scores))


@dataclass(frozen=True)
class ClipFrames:
    """All clips' frames of one variant, concatenated; clip i is frames[offsets[i] : offsets[i + 1]]."""

    frames: Frames
    offsets: npt.NDArray[np.int64]

    def of(self, index: int) -> Frames:
        """Frames of clip `index`."""
        return self.frames[self.offsets[index] : self.offsets[index + 1]]

    def subset(self, indices: Sequence[int]) -> ClipFrames:
        """The frames of these clips only, in this order."""
        parts = [self.of(i) for i in indices]
        lengths = np.array([len(p) for p in parts], dtype=np.int64)
        frames = np.concatenate(parts) if parts else np.zeros((0, self.frames.shape[1]), np.float16)
        return ClipFrames(frames, np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))

    @staticmethod
    def join(parts: Sequence[ClipFrames]) -> ClipFrames:
        """Several clip lists' frames as one, in order."""
        offsets = [parts[0].offsets]
        for part in parts[1:]:
            offsets.append(part.offsets[1:] + offsets[-1][-1])
        return ClipFrames(np.concatenate([p.frames for p in parts]), np.concatenate(offsets))


def _key(clips: Sequence[Clip], variant: str, settings: FbankSettings) -> str:
    text = json.dumps(
        {
            "version": FORMAT_VERSION,
            "variant": variant,
            "codec": _CODECS.get(variant),
            "fbank": asdict(settings),
            "clips": [[str(c.path), c.path.stat().st_size] for c in clips],
            **({"slow_share": SLOW_CODEC_BACKGROUND_SHARE} if variant in SLOW_CODECS else {}),
        }
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def clip_frames(
    clips: Sequence[Clip], variant: str = "original", log: Callable[[str], None] = print
) -> ClipFrames:
    """Frames of every clip in `variant`, from the cache or computed (and cached) now."""
    extractor = FbankExtractor()
    path = cache_dir() / "frames" / f"{variant}-{_key(clips, variant, extractor.settings)}.npz"
    if path.is_file():
        with np.load(path) as stored:
            return ClipFrames(stored["frames"], stored["offsets"])
    started = time.time()
    parts, offsets = [], [0]
    for clip in clips:
        samples = load_audio(clip.path)
        skip = (
            variant in SLOW_CODECS
            and clip.label == "background"
            and zlib.crc32(clip.path.name.encode()) % SLOW_CODEC_BACKGROUND_SHARE
        )
        samples = samples if skip else codec_round_trip(samples, variant)
        frames = extractor.compute(samples).astype(np.float16)
        parts.append(frames)
        offsets.append(offsets[-1] + len(frames))
    result = ClipFrames(np.concatenate(parts), np.array(offsets, dtype=np.int64))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial.npz")
    np.savez(partial, frames=result.frames, offsets=result.offsets)
    partial.rename(path)
    log(
        f"frames of {len(clips)} clips ({variant}): {len(result.frames):,} frames in {time.time() - started:.0f} s"
    )
    return result


def dataset_frames(
    clips: Sequence[Clip], variant: str = "original", log: Callable[[str], None] = print
) -> ClipFrames:
    """Frames of `clips` in order, cached per data set folder (the shared set, the built set)."""
    roots: dict[Path, list[int]] = {}
    for index, clip in enumerate(clips):
        roots.setdefault(clip.path.parents[2], []).append(index)
    order = [i for indices in roots.values() for i in indices]
    joined = ClipFrames.join([clip_frames([clips[i] for i in idx], variant, log) for idx in roots.values()])
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    return joined if order == list(range(len(clips))) else joined.subset(position.tolist())


def noise_frames(seconds: float = 20.0, seed: int = 0) -> npt.NDArray[np.float32]:
    """Frames of white noise at 0 dBFS RMS: a microphone's noise floor, shifted to a level when used."""
    rng = np.random.default_rng(seed)
    return FbankExtractor().compute(rng.standard_normal(int(seconds * SAMPLE_RATE_HZ)).astype(np.float32))
