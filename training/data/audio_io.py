"""Decode anything PyAV reads to 8 kHz mono float32, cut it into segments, write 16-bit FLAC."""

from __future__ import annotations

import io
from pathlib import Path
from typing import cast

import av
import numpy as np
import numpy.typing as npt

SAMPLE_RATE_HZ = 8000
SEGMENT_S = 10.0
MIN_SEGMENT_S = 0.25
SILENCE_DBFS = -55.0
"""Segments quieter than this (RMS) are dropped: they teach the model nothing."""

Samples = npt.NDArray[np.float32]


def decode(source: Path | bytes) -> Samples:
    """Mono 8 kHz float32 in [-1, 1] from a file or the bytes of one."""
    chunks: list[npt.NDArray[np.generic]] = []
    handle = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    with _open(handle) as container:
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE_HZ)
        for frame in container.decode(stream):
            chunks.extend(part.to_ndarray().reshape(-1) for part in resampler.resample(frame))
        chunks.extend(part.to_ndarray().reshape(-1) for part in resampler.resample(None))
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    pcm: Samples = np.concatenate(chunks).astype(np.float32)
    return pcm / np.float32(32768.0)


def _open(handle: io.BytesIO | str) -> av.container.InputContainer:
    """Open for reading; tags that are not UTF-8 (old game files) are ignored where PyAV allows it."""
    try:
        container = av.open(handle, "r", metadata_errors="ignore")  # type: ignore[call-overload]
    except TypeError:  # PyAV without that argument
        container = av.open(handle, "r")
    return cast("av.container.InputContainer", container)


def write_flac(path: Path, samples: Samples) -> None:
    """16-bit mono 8 kHz FLAC (written to a temporary name first, so a crash leaves no half file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype(np.int16).reshape(1, -1)
    partial = path.with_suffix(".partial.flac")
    with av.open(str(partial), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=SAMPLE_RATE_HZ, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = SAMPLE_RATE_HZ
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    partial.replace(path)


def dbfs(samples: Samples) -> float:
    """RMS level in dB full scale (-120 for silence)."""
    if samples.size == 0:
        return -120.0
    return float(10 * np.log10(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def trim_silence(samples: Samples, floor_dbfs: float = -60.0, hop: int = 80) -> Samples:
    """Without leading and trailing stretches quieter than `floor_dbfs` (10 ms frames)."""
    if samples.size < hop:
        return samples
    frames = samples[: samples.size // hop * hop].reshape(-1, hop)
    loud = np.flatnonzero(10 * np.log10(np.mean(frames.astype(np.float64) ** 2, axis=1) + 1e-12) > floor_dbfs)
    if loud.size == 0:
        return samples[:0]
    return samples[loud[0] * hop : (loud[-1] + 1) * hop]


def segments(samples: Samples, max_s: float, segment_s: float = SEGMENT_S) -> list[tuple[float, Samples]]:
    """(start_s, piece) pieces of at most `segment_s`, spread evenly over the file, `max_s` in all.

    Long files (music, speech, ambience) give several pieces from different places rather than their
    first minute; near-silent and very short pieces are dropped.
    """
    size = int(segment_s * SAMPLE_RATE_HZ)
    count_all = max(1, int(np.ceil(samples.size / size)))
    count = max(1, min(count_all, int(max_s // segment_s) or 1))
    picks = np.unique(np.linspace(0, count_all - 1, count).round().astype(int))
    out = []
    for index in picks:
        piece = samples[index * size : (index + 1) * size]
        if piece.size >= MIN_SEGMENT_S * SAMPLE_RATE_HZ and dbfs(piece) > SILENCE_DBFS:
            out.append((index * segment_s, piece))
    return out
