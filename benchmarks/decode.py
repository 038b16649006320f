"""PyAV decode + resample speed: what a camera sends (PCMU, AAC) to 8 kHz mono, one thread.

    scripts/run python -m benchmarks.decode [--runs 7] [--seconds 60]

Builds --seconds of real audio from the test clips in ../shared/data, encodes it once with PyAV into a
temporary directory (PCMU 8 kHz in 20 ms packets, as a camera sends G.711; AAC at 16 and 48 kHz), then
reads each file through the engine's FileSource (the demux, decode and AudioResampler path RtspSource
uses) --runs times. Prints the median x real time: audio seconds per wall second, and per CPU second of the
reading thread (less sensitive to other load on a shared machine).
"""

from __future__ import annotations

import argparse
import csv
import os
from pathlib import Path
import statistics
import tempfile
import time

import av
import numpy as np

from custom_components.sound_sentry.engine.sources import OUTPUT_SAMPLE_RATE_HZ, FileSource

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SOUND_SENTRY_DATA") or REPO.parent / "shared" / "data")

# name -> (container suffix, codec, sample rate, bit rate, samples per packet). PCMU goes in Matroska,
# which keeps packets as written: 20 ms, like G.711 over RTP (a WAV demuxer would re-chunk it to 4 KiB).
FORMATS = {
    "PCMU 8 kHz, 20 ms packets": (".mka", "pcm_mulaw", 8000, None, 160),
    "AAC 16 kHz": (".m4a", "aac", 16000, 32_000, 1024),
    "AAC 48 kHz": (".m4a", "aac", 48000, 64_000, 1024),
}


def real_audio(seconds: float, label: str | None = None) -> np.ndarray:
    """Test clips from the data set (of one `label` if given, e.g. background), as 8 kHz int16.

    Joined in path order to `seconds` of audio.
    """
    with (DATA / "manifest.csv").open() as f:
        paths = sorted(
            r["path"]
            for r in csv.DictReader(f)
            if r["split"] == "test" and (label is None or r["label"] == label)
        )
    chunks: list[np.ndarray] = []
    total = 0
    for path in paths:
        with FileSource(DATA / path) as source:
            for chunk in source:
                chunks.append(chunk)
                total += chunk.size
        if total >= seconds * OUTPUT_SAMPLE_RATE_HZ:
            break
    return np.concatenate(chunks)[: round(seconds * OUTPUT_SAMPLE_RATE_HZ)]


def encode(pcm: np.ndarray, path: Path, *, codec: str, rate: int, bit_rate: int | None, packet: int) -> None:
    """Write `pcm` (8 kHz) as `codec` at `rate`, resampling with PyAV."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        fmt = stream.codec_context.format.name
        resampler = av.AudioResampler(format=fmt, layout="mono", rate=rate, frame_size=packet)
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = OUTPUT_SAMPLE_RATE_HZ
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))


def decode_once(path: Path) -> tuple[float, float, int]:
    """Wall seconds, CPU seconds of this thread, and samples out, for one full read."""
    wall, cpu = time.perf_counter(), time.thread_time()
    samples = 0
    with FileSource(path) as source:
        for chunk in source:
            samples += chunk.size
    return time.perf_counter() - wall, time.thread_time() - cpu, samples


def main() -> None:
    """Encode, decode --runs times, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()

    pcm = real_audio(args.seconds)
    audio_s = pcm.size / OUTPUT_SAMPLE_RATE_HZ
    print(f"PyAV {av.__version__}, {audio_s:.0f} s of real audio per file, {args.runs} runs, one thread")
    print("| input | x real time, wall (median) | x real time, CPU (median) | samples out | wall min..max |")
    print("|---|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, codec, rate, bit_rate, packet) in FORMATS.items():
            path = Path(tmp) / f"{codec}_{rate}{suffix}"
            encode(pcm, path, codec=codec, rate=rate, bit_rate=bit_rate, packet=packet)
            decode_once(path)  # warm the page cache and PyAV's codec tables
            runs = [decode_once(path) for _ in range(args.runs)]
            speeds = [audio_s / wall for wall, _, _ in runs]
            cpu_speed = audio_s / statistics.median(cpu for _, cpu, _ in runs)
            print(
                f"| {name} | {statistics.median(speeds):,.0f}x | {cpu_speed:,.0f}x | {runs[0][2]:,} "
                f"| {min(speeds):,.0f}..{max(speeds):,.0f}x |"
            )


if __name__ == "__main__":
    main()
