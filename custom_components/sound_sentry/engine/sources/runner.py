"""Keep a live source flowing in its own thread: reconnect with backoff, report status transitions."""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
import random
import threading
import traceback
from typing import TYPE_CHECKING

from ..redact import redact_credentials
from .base import AudioChunk, AudioSource, SourceError, SourceErrorReason

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

AUTH_RETRY_S = 3600.0
"""After the credentials are refused, the next attempt comes this much later (not the Backoff's
seconds): many cameras lock an account after a few failed logins. New credentials mean a new runner."""


@dataclass
class Backoff:
    """Capped exponential delays between reconnects, with jitter so many sources never retry in step."""

    initial_s: float = 2.0
    """Delay after the first failure."""
    max_s: float = 10.0
    """Longest delay: a camera that is away gets at most one attempt per this long. 10 s keeps the
    recovery after a long outage (a camera rebooting) within about 10 s, at one connection attempt per
    10 s: no load on a camera."""
    factor: float = 2.0
    """Growth per consecutive failure."""
    jitter: float = 0.2
    """Each delay is shortened by a random fraction up to this (0 = none, 1 = anywhere down to 0)."""
    rng: random.Random = field(default_factory=random.Random, repr=False)
    _attempt: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("need 0 < initial_s <= max_s")
        if self.factor < 1 or not 0 <= self.jitter <= 1:
            raise ValueError("need factor >= 1 and 0 <= jitter <= 1")

    def next_delay(self) -> float:
        """Seconds to wait before the next attempt; each call counts one more failure."""
        base = min(self.max_s, self.initial_s * self.factor**self._attempt)
        if base < self.max_s:
            self._attempt += 1  # stop counting once capped: factor**attempt must not overflow
        return base * (1 - self.jitter * self.rng.random())

    def reset(self) -> None:
        """Start again from `initial_s` (after a connection that delivered audio)."""
        self._attempt = 0


class SourceRunner(threading.Thread):
    """Read a source in a named thread; on failure close it, wait (Backoff), and build a fresh one.

    `source_factory` runs on every (re)connect, so it can resolve a URL that changes (a camera's stream
    URL). `on_audio` gets every chunk; `on_status(connected, error)` is called only when the state or the
    error's reason changes. Both run in this thread and never after `stop()` returned. A clean end of a
    source counts as "stream_ended" and is retried like any failure, but refused credentials
    ("invalid_auth") are tried again only after `auth_retry_s`.
    """

    def __init__(
        self,
        name: str,
        source_factory: Callable[[], AudioSource],
        *,
        on_audio: Callable[[AudioChunk], None],
        on_status: Callable[[bool, SourceError | None], None],
        backoff: Backoff | None = None,
        auth_retry_s: float = AUTH_RETRY_S,
    ) -> None:
        super().__init__(name=f"sound_sentry_source_{name}", daemon=False)
        self._source_factory = source_factory
        self._on_audio = on_audio
        self._on_status = on_status
        self.backoff = backoff or Backoff()
        self.auth_retry_s = auth_retry_s
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards _source between this thread and stop()
        self._source: AudioSource | None = None
        self._status: tuple[bool, SourceErrorReason | None] | None = None

    @property
    def connected(self) -> bool:
        """Whether the current source is open and streaming."""
        return self._status is not None and self._status[0]

    def run(self) -> None:
        """Connect, stream, and reconnect until stopped."""
        while not self._stopping.is_set():
            error = self._stream_once()
            if self._stopping.is_set():
                break
            self._report(False, error)
            delay = self.auth_retry_s if error.reason == "invalid_auth" else self.backoff.next_delay()
            _LOGGER.debug("%s: next attempt in %.1f s", self.name, delay)
            self._stopping.wait(delay)

    def _stream_once(self) -> SourceError:
        """One connection, from building the source to its failure."""
        source: AudioSource | None = None
        try:
            source = self._source_factory()
            with self._lock:
                self._source = source
            if self._stopping.is_set():  # stop() came while the factory ran and could not interrupt it
                return SourceError("stream_ended", "stopped")
            source.open()
            if self._stopping.is_set():  # stop() came while open() blocked
                return SourceError("stream_ended", "stopped")
            self._report(True, None)
            delivered = False
            while (chunk := source.read()) is not None:
                if not delivered:
                    delivered = True
                    self.backoff.reset()
                self._on_audio(chunk)
            return SourceError("stream_ended", f"{source.description}: the stream ended")
        except SourceError as err:
            return err
        except Exception as err:  # noqa: BLE001 - a bug must not end the thread: log it and retry later
            # Redact the whole traceback: an exception from a library may quote a URL with its password.
            details = redact_credentials("".join(traceback.format_exception(err)))
            _LOGGER.error("%s: unexpected error, will retry:\n%s", self.name, details)
            return SourceError("cannot_connect", redact_credentials(f"unexpected error: {err!r}"))
        finally:
            with self._lock:
                self._source = None
            if source is not None:
                try:
                    source.close()
                except Exception:  # noqa: BLE001 - a failed close must not end the thread either
                    _LOGGER.debug("%s: error closing the source", self.name)

    def _report(self, connected: bool, error: SourceError | None) -> None:
        """Call on_status on a transition of (connected, reason).

        Logged at debug level only: the application owns what users see (Home Assistant logs once when
        audio is lost and once when it is back; the CLI prints each change).
        """
        status = (connected, error.reason if error else None)
        if status == self._status or self._stopping.is_set():
            return
        self._status = status
        if connected:
            _LOGGER.debug("%s: connected", self.name)
        elif error is not None:
            _LOGGER.debug("%s: %s (%s)", self.name, error, error.reason)
        self._on_status(connected, error)

    def stop(self, timeout: float | None = None) -> None:
        """Stop reading and join. A read blocked on the network ends by the source's own timeout."""
        self._stopping.set()
        with self._lock:
            if self._source is not None:
                self._source.interrupt()
        if self.ident is not None:  # started
            self.join(timeout)
        if self.is_alive():
            _LOGGER.warning("%s: still running %s s after stop()", self.name, timeout)
