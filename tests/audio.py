"""Real audio for the tests: the benchmarks' audio (benchmarks/_common/audio.py: clips of ../shared/data,
scenes, WAV files, the engine offline, synthetic alarms; its names are offered here too), and what only
the tests use: a one-event scene and a UDP microphone."""

from __future__ import annotations

from pathlib import Path
import socket
import threading
import time

import numpy as np
import numpy.typing as npt

from benchmarks._common.audio import (
    PIEZO_BAND_HZ,
    RATE_HZ,
    T3_520,
    T3_PIEZO,
    T4_PIEZO,
    AlarmSound,
    OfflineEngine,
    alarm_signal,
    background_bed,
    clip_paths,
    encode_with_pyav,
    event_scene,
    hop_shifts,
    manifest,
    mix_at_snr,
    multi_line_alarm,
    read_clip,
    room_reverb,
    varied_alarm,
    warbling_alarm,
    write_wav,
)

__all__ = [
    "PIEZO_BAND_HZ",
    "RATE_HZ",
    "T3_520",
    "T3_PIEZO",
    "T4_PIEZO",
    "AlarmSound",
    "OfflineEngine",
    "UdpMicrophone",
    "alarm_signal",
    "background_bed",
    "clip_paths",
    "encode_with_pyav",
    "event_scene",
    "free_udp_port",
    "hop_shifts",
    "manifest",
    "mix_at_snr",
    "multi_line_alarm",
    "read_clip",
    "room_reverb",
    "scene",
    "varied_alarm",
    "warbling_alarm",
    "write_wav",
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
