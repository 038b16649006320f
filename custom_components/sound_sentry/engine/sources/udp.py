"""Raw PCM datagrams over UDP, as an ESPHome microphone sends them with `udp.write` (FACTS §3)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
import errno
import ipaddress
import logging
import os
import select
import socket
import threading
import time
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from numpy.typing import NDArray

from .base import AudioChunk, AudioSource, MonoResampler, SourceError

if TYPE_CHECKING:
    from collections.abc import Collection

_LOGGER = logging.getLogger(__name__)

SAMPLE_RATES_HZ = frozenset({8000, 16000, 22050, 44100, 48000})
SAMPLE_WIDTHS = {2: ("<i2", "s16"), 4: ("<i4", "s32")}  # bytes -> (numpy dtype, PyAV format), signed LE
LAYOUTS = {1: "mono", 2: "stereo"}
_RECV_BYTES = 65536  # larger than any UDP payload, so an oversized datagram is seen whole, never truncated


@dataclass
class UdpCounters:
    """Datagrams seen by a UdpPcmSource since it was created."""

    received: int = 0
    """Every datagram read from the socket, dropped or not."""
    dropped_foreign: int = 0
    """From an address not in `allowed_senders`."""
    dropped_malformed: int = 0
    """Empty, not a whole number of sample frames, or longer than `max_datagram_s` of audio."""


def _normalise_ip(address: str) -> str:
    """Canonical text of an IP address; an IPv4-mapped IPv6 address becomes plain IPv4."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return str(ip)


class UdpPcmSource(AudioSource):
    """Signed little-endian PCM datagrams from allowed senders, resampled by PyAV to 8 kHz mono.

    UDP is unauthenticated, so anything from another address is dropped (and counted), as is any datagram
    that cannot be whole sample frames. `read()` raises SourceError("no_audio") when nothing valid arrived
    within `read_timeout_s` of opening, and "timeout" when the sender stops for that long afterwards.
    """

    def __init__(
        self,
        port: int,
        *,
        allowed_senders: Collection[str],
        sample_rate_hz: int = 16000,
        sample_width: int = 2,
        channels: int = 1,
        host: str = "0.0.0.0",  # noqa: S104 - the microphone is another device on the LAN
        read_timeout_s: float = 5.0,
        max_datagram_s: float = 0.5,
    ) -> None:
        if sample_rate_hz not in SAMPLE_RATES_HZ:
            raise ValueError(f"sample_rate_hz must be one of {sorted(SAMPLE_RATES_HZ)}, not {sample_rate_hz}")
        if sample_width not in SAMPLE_WIDTHS:
            raise ValueError(f"sample_width must be 2 or 4 bytes, not {sample_width}")
        if channels not in LAYOUTS:
            raise ValueError(f"channels must be 1 or 2, not {channels}")
        if not allowed_senders:
            raise ValueError("allowed_senders is empty: UDP audio is accepted only from known addresses")
        self.port = port
        self.host = host
        self.allowed_senders = frozenset(_normalise_ip(a) for a in allowed_senders)
        self.sample_rate_hz = sample_rate_hz
        self.sample_width = sample_width
        self.channels = channels
        self.read_timeout_s = read_timeout_s
        self.frame_bytes = sample_width * channels
        self.max_datagram_bytes = max(
            self.frame_bytes, round(max_datagram_s * sample_rate_hz) * self.frame_bytes
        )
        self.counters = UdpCounters()
        self.description = (
            f"udp://{host}:{port} from {', '.join(sorted(self.allowed_senders))} "
            f"({sample_rate_hz} Hz, {8 * sample_width}-bit, {LAYOUTS[channels]})"
        )
        self._dtype = np.dtype(SAMPLE_WIDTHS[sample_width][0])
        self._av_format = SAMPLE_WIDTHS[sample_width][1]
        self._sock: socket.socket | None = None
        self._wake_r = self._wake_w = -1
        self._wake_lock = threading.Lock()  # interrupt() and close() race from different threads
        self._resampler = MonoResampler()
        self._got_audio = False
        self._warned_senders: set[str] = set()

    def open(self) -> None:
        """Bind the port; SourceError("port_in_use") when another socket has it."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            # No SO_REUSEADDR: on Linux it would let two sources share a port and split its datagrams.
            sock.bind((self.host, self.port))
        except OSError as err:
            sock.close()
            if err.errno == errno.EADDRINUSE:
                raise SourceError(
                    "port_in_use", f"{self.description}: UDP port {self.port} is in use"
                ) from None
            raise SourceError(
                "cannot_connect", f"{self.description}: cannot listen ({err.strerror})"
            ) from None
        self.port = sock.getsockname()[1]  # the real port when 0 asked for any
        self._sock = sock
        # A pipe to wake a blocked select() from interrupt(): closing a socket another thread waits on is a race.
        with self._wake_lock:
            self._wake_r, self._wake_w = os.pipe()
            os.set_blocking(self._wake_w, False)
        self._resampler = MonoResampler()
        self._got_audio = False

    def read(self) -> AudioChunk | None:
        """Block until valid audio arrives; None after `interrupt()`."""
        if self._sock is None:
            raise RuntimeError("read() before open()")
        deadline = time.monotonic() + self.read_timeout_s
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if self._got_audio:
                    raise SourceError(
                        "timeout", f"{self.description}: no audio for {self.read_timeout_s:g} s"
                    )
                raise SourceError(
                    "no_audio", f"{self.description}: no audio datagrams within {self.read_timeout_s:g} s"
                )
            ready, _, _ = select.select([self._sock.fileno(), self._wake_r], [], [], remaining)
            if self._wake_r in ready:
                return None
            if not ready:
                continue
            data, address = self._sock.recvfrom(_RECV_BYTES)
            pcm = self._accept(data, address[0])
            if pcm is None:
                continue
            chunk = self._resample(pcm)
            deadline = time.monotonic() + self.read_timeout_s
            self._got_audio = True
            if chunk.size:
                return chunk

    def _accept(self, data: bytes, sender: str) -> NDArray[Any] | None:
        """The datagram's samples, or None (counted) when it is foreign or malformed."""
        self.counters.received += 1
        sender = _normalise_ip(sender)
        if sender not in self.allowed_senders:
            self.counters.dropped_foreign += 1
            if sender not in self._warned_senders:
                self._warned_senders.add(sender)  # once per address: a flood must not flood the log
                _LOGGER.warning(
                    "Dropping UDP audio from %s: not an allowed sender of %s", sender, self.description
                )
            return None
        if not data or len(data) % self.frame_bytes or len(data) > self.max_datagram_bytes:
            self.counters.dropped_malformed += 1
            _LOGGER.debug("Dropped a malformed %d-byte datagram on %s", len(data), self.description)
            return None
        return np.frombuffer(data, dtype=self._dtype)

    def _resample(self, pcm: NDArray[Any]) -> AudioChunk:
        samples = pcm.astype(self._dtype.newbyteorder("="), copy=False).reshape(1, -1)  # packed: interleaved
        frame = av.AudioFrame.from_ndarray(samples, format=self._av_format, layout=LAYOUTS[self.channels])
        frame.sample_rate = self.sample_rate_hz
        return self._resampler.resample(frame)

    def interrupt(self) -> None:
        """Wake a blocked `read()` (thread-safe)."""
        with self._wake_lock:
            if self._wake_w >= 0:
                with contextlib.suppress(BlockingIOError):  # already full of wake-ups
                    os.write(self._wake_w, b"\0")

    def close(self) -> None:
        """Release the port."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        with self._wake_lock:
            for fd in (self._wake_r, self._wake_w):
                if fd >= 0:
                    os.close(fd)
            self._wake_r = self._wake_w = -1
