"""Play a finite source at real-time pace: a recording standing in for a live microphone (demos, tests)."""

from __future__ import annotations

import threading
import time

from .base import OUTPUT_SAMPLE_RATE_HZ, AudioChunk, AudioSource


class PacedSource(AudioSource):
    """Deliver `inner`'s chunks no faster than real time, as a live source would.

    Each chunk is handed over once the wall clock since `open()` reaches the audio time before it, so
    a chunk of 0.1 s arrives 0.1 s after the one before. `interrupt()` ends a wait at once.
    """

    def __init__(self, inner: AudioSource) -> None:
        self.inner = inner
        self.description = inner.description
        self._woken = threading.Event()
        self._started = 0.0
        self._delivered = 0

    def open(self) -> None:
        """Open the inner source and start the clock."""
        self.inner.open()
        self._started = time.monotonic()
        self._delivered = 0

    def read(self) -> AudioChunk | None:
        """The inner source's next chunk, at the time it is due; None at its end or after `interrupt()`."""
        due = self._started + self._delivered / OUTPUT_SAMPLE_RATE_HZ
        if self._woken.wait(max(0.0, due - time.monotonic())):
            return None
        chunk = self.inner.read()
        if chunk is not None:
            self._delivered += chunk.size
        return chunk

    def close(self) -> None:
        """Close the inner source."""
        self.inner.close()

    def interrupt(self) -> None:
        """End a wait or a blocked read soon."""
        self._woken.set()
        self.inner.interrupt()
