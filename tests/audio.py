"""Real audio for the tests: clips of ../shared/data, scenes built from them, and a UDP microphone."""

from __future__ import annotations

import csv
from functools import cache
from pathlib import Path
import socket
import threading
import time

import av
import numpy as np
import numpy.typing as npt

RATE_HZ = 8000


def read_clip(path: Path) -> npt.NDArray[np.float32]:
    """Decode an 8 kHz mono FLAC of the data set to float32 in [-1, 1]."""
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32) / 32768.0


@cache
def manifest(data_dir: Path) -> list[dict[str, str]]:
    """The rows of the data set's manifest.csv."""
    with (data_dir / "manifest.csv").open() as file:
        return list(csv.DictReader(file))


def clip_paths(data_dir: Path, label: str, split: str = "test", source: str | None = None) -> list[Path]:
    """Clips of one class and split, in manifest order."""
    return [
        data_dir / row["path"]
        for row in manifest(data_dir)
        if row["label"] == label and row["split"] == split and (source is None or row["source"] == source)
    ]


def scene(
    data_dir: Path, event: str | None, *, lead_s: float = 4.0, tail_s: float = 6.0
) -> npt.NDArray[np.float32]:
    """Quiet room background (a test-split background clip) with one event clip after `lead_s`."""
    background = read_clip(clip_paths(data_dir, "background", source="zalmotek_mssnsd")[0])
    total = round((lead_s + tail_s) * RATE_HZ)
    bed = np.resize(background, total) * np.float32(0.3)
    if event is None:
        return bed
    clip = read_clip(clip_paths(data_dir, event)[0])
    start = round(lead_s * RATE_HZ)
    out = np.concatenate([bed[:start], clip + np.resize(bed, clip.size), bed[start:]])
    return np.clip(out, -1.0, 1.0)


def write_wav(path: Path, samples: npt.NDArray[np.float32], rate_hz: int = RATE_HZ) -> Path:
    """Write mono 16-bit WAV with PyAV."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate_hz, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate_hz
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


class UdpMicrophone(threading.Thread):
    """Sends PCM like an ESPHome microphone: 16-bit mono datagrams of 16 ms, paced in real time,
    looping `samples` (float32 at 8 kHz, resampled to `rate_hz` by repetition-free linear interpolation)."""

    def __init__(
        self,
        port: int,
        samples: npt.NDArray[np.float32],
        *,
        rate_hz: int = 16000,
        source_ip: str = "127.0.0.1",
    ) -> None:
        super().__init__(name="test-udp-microphone", daemon=True)
        positions = np.arange(round(samples.size * rate_hz / RATE_HZ)) * RATE_HZ / rate_hz
        resampled = np.interp(positions, np.arange(samples.size), samples)
        self._pcm = (np.clip(resampled, -1, 1) * 32767).astype("<i2").tobytes()
        self._datagram = rate_hz * 16 // 1000 * 2
        self._port = port
        self._source_ip = source_ip
        self._stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((self._source_ip, 0))
            offset, next_send = 0, time.monotonic()
            while not self._stop.is_set():
                if offset + self._datagram > len(self._pcm):
                    offset = 0
                sock.sendto(self._pcm[offset : offset + self._datagram], ("127.0.0.1", self._port))
                offset += self._datagram
                self.sent += 1
                next_send += 0.016
                self._stop.wait(max(0.0, next_send - time.monotonic()))

    def stop(self) -> None:
        self._stop.set()
        self.join(5)


def free_udp_port() -> int:
    """A UDP port free right now on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
