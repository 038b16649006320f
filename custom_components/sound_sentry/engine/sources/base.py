"""What every audio source shares: the chunk format, the one error type, and the PyAV resampling step."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Literal, Self, TypeAlias

import av
import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType

OUTPUT_SAMPLE_RATE_HZ = 8000

AudioChunk: TypeAlias = NDArray[np.int16]
"""Mono 16-bit PCM at OUTPUT_SAMPLE_RATE_HZ, any length > 0."""

SourceErrorReason: TypeAlias = Literal[
    "invalid_url",  # malformed URL, unsupported scheme, no such file or path on the server
    "cannot_connect",  # refused, unreachable, no answer within the open timeout
    "invalid_auth",  # the server asked for (other) credentials: RTSP/HTTP 401 or 403
    "no_audio",  # reachable, but no audio track, unreadable media, or no datagrams at all
    "port_in_use",  # a UDP source's port is taken
    "timeout",  # was streaming, then went silent for the read timeout without closing
    "stream_ended",  # the server closed or broke a live stream
]


class SourceError(Exception):
    """Why a source cannot deliver audio; `reason` is stable, the message is for people and never has secrets."""

    def __init__(self, reason: SourceErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason: SourceErrorReason = reason
        self.message = message

    def __repr__(self) -> str:
        return f"SourceError({self.reason!r}, {self.message!r})"


class AudioSource(ABC):
    """A source of 8 kHz mono int16 chunks: `open()`, then `read()` or iterate, then `close()`.

    Also a context manager (opens and closes). `read()` blocks; `interrupt()` may be called from another
    thread to make it return soon. A finite source (a file) returns None at its end; a live one raises
    SourceError("stream_ended") when the peer ends it.
    """

    description: str
    """Where the audio comes from, with credentials redacted: safe for logs."""

    @abstractmethod
    def open(self) -> None:
        """Connect or open; raise SourceError on failure."""

    @abstractmethod
    def read(self) -> AudioChunk | None:
        """Block until the next chunk; None at the end of a finite source or after `interrupt()`."""

    @abstractmethod
    def close(self) -> None:
        """Release the container or socket. Idempotent; call it from the thread that reads."""

    @abstractmethod
    def interrupt(self) -> None:
        """Ask a blocked `read()` in another thread to return as soon as it can (thread-safe)."""

    def __iter__(self) -> Iterator[AudioChunk]:
        while (chunk := self.read()) is not None:
            yield chunk

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.description}>"


class MonoResampler:
    """PyAV's resampler to s16 mono 8 kHz, returning one flat int16 array per call (maybe empty)."""

    def __init__(self) -> None:
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OUTPUT_SAMPLE_RATE_HZ)

    def resample(self, frame: av.AudioFrame | None) -> AudioChunk:
        """Resample one decoded frame; None flushes what the resampler still holds (at the end only)."""
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if not out:
            return np.zeros(0, dtype=np.int16)
        return np.ascontiguousarray(np.concatenate(out) if len(out) > 1 else out[0], dtype=np.int16)
