"""Sources PyAV opens: files and URLs (`FileSource`) and RTSP cameras (`RtspSource`)."""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import av
import av.error

from ..redact import redact_url
from .base import AudioChunk, AudioSource, MonoResampler, SourceError

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

_LOGGER = logging.getLogger(__name__)

RTSP_SCHEMES = frozenset({"rtsp", "rtsps"})


def url_scheme(url: str) -> str:
    """The URL's scheme in lower case; empty for a path or a malformed URL."""
    try:
        return urlsplit(url).scheme.lower()
    except ValueError:
        return ""


def _strerror(err: BaseException) -> str:
    """FFmpeg's text for an error, without the file name PyAV appends (it may hold credentials)."""
    strerror = getattr(err, "strerror", None)
    return str(strerror) if strerror else type(err).__name__


def _open_error(err: BaseException, description: str, open_timeout_s: float, *, network: bool) -> SourceError:
    """Translate an exception from `av.open` into a SourceError whose message holds no secrets."""
    text = _strerror(err)
    if isinstance(err, av.error.HTTPUnauthorizedError | av.error.HTTPForbiddenError):
        return SourceError("invalid_auth", f"{description}: the server refused the credentials ({text})")
    if isinstance(err, av.error.HTTPNotFoundError):
        return SourceError("invalid_url", f"{description}: the server has no stream at this path ({text})")
    if isinstance(err, av.error.ProtocolNotFoundError):
        return SourceError("invalid_url", f"{description}: PyAV cannot open this kind of URL ({text})")
    if isinstance(err, av.error.ExitError):
        return SourceError("cannot_connect", f"{description}: no answer within {open_timeout_s:g} s")
    if isinstance(err, av.error.InvalidDataError):
        if network:
            return SourceError(
                "cannot_connect", f"{description}: the server did not answer as expected ({text})"
            )
        return SourceError("no_audio", f"{description}: not a media file PyAV can read ({text})")
    if isinstance(err, FileNotFoundError | IsADirectoryError | NotADirectoryError):
        return SourceError("invalid_url", f"{description}: no such file ({text})")
    if isinstance(err, av.error.HTTPError):
        return SourceError("cannot_connect", f"{description}: the server answered with an error ({text})")
    if isinstance(err, ValueError):  # EINVAL: FFmpeg could not parse the URL
        return SourceError("invalid_url", f"{description}: malformed URL ({text})")
    return SourceError("cannot_connect", f"{description}: cannot connect ({text})")


class _PyAvSource(AudioSource):
    """Decode the first audio stream of whatever PyAV opens, resampled to 8 kHz mono."""

    _live = False  # a live stream's end is an error, a file's end is not

    def __init__(
        self, url: str, options: dict[str, str], open_timeout_s: float, read_timeout_s: float
    ) -> None:
        self._url = url
        self._options = options
        self.open_timeout_s = open_timeout_s
        self.read_timeout_s = read_timeout_s
        self._container: av.container.InputContainer | None = None
        self._frames: Iterator[av.AudioFrame] | None = None
        self._resampler = MonoResampler()
        self._interrupted = False
        self._ended = False

    def _open_container(self, options: dict[str, str]) -> av.container.InputContainer:
        try:
            try:
                return av.open(self._url, options=options, timeout=(self.open_timeout_s, self.read_timeout_s))
            except av.error.HTTPOtherClientError:
                if "allowed_media_types" not in options:
                    raise
            # Asked for audio only, a camera without audio has nothing to SETUP and answers PLAY with a
            # 4xx. Open once more with every track to tell "no audio track" from a real failure.
            _LOGGER.debug("Audio-only open of %s failed; retrying with all tracks", self.description)
            options = {k: v for k, v in options.items() if k != "allowed_media_types"}
            return av.open(self._url, options=options, timeout=(self.open_timeout_s, self.read_timeout_s))
        except (av.error.FFmpegError, OSError) as err:
            error = _open_error(err, self.description, self.open_timeout_s, network=self._live)
        # Raised outside the handler so that PyAV's exception, which names the URL with its credentials,
        # is neither the cause nor the context of ours.
        raise error

    def open(self) -> None:
        """Open the container and pick its first audio stream."""
        container = self._open_container(self._options)
        if not container.streams.audio:
            kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
            container.close()
            raise SourceError("no_audio", f"{self.description}: no audio track (it has {kinds})")
        self._container = container
        self._frames = self._decode(container)
        self._resampler = MonoResampler()
        self._ended = False  # not `_interrupted`: an interrupt that came during open() must hold
        stream = container.streams.audio[0]
        _LOGGER.debug("Opened %s: %s, %s Hz", self.description, stream.codec_context.name, stream.rate)

    def _decode(self, container: av.container.InputContainer) -> Iterator[av.AudioFrame]:
        """Decoded frames of the first audio stream; a corrupt packet (lost RTP) is skipped, not fatal."""
        for packet in container.demux(container.streams.audio[0]):
            try:
                decoded: Iterable[object] = packet.decode()  # typed differently across PyAV versions
                for frame in decoded:
                    if isinstance(frame, av.AudioFrame):  # always, for an audio stream
                        yield frame
            except av.error.InvalidDataError:
                _LOGGER.debug("Skipped an undecodable packet from %s", self.description)

    def read(self) -> AudioChunk | None:
        """Next chunk of 8 kHz mono audio; None at the end of a file or after `interrupt()`."""
        if self._frames is None:
            raise RuntimeError("read() before open()")
        while not self._interrupted and not self._ended:
            error: SourceError | None = None
            try:
                frame = next(self._frames, None)
            except av.error.ExitError:  # PyAV's interrupt callback: nothing arrived for read_timeout_s
                error = SourceError("timeout", f"{self.description}: no audio for {self.read_timeout_s:g} s")
            except (av.error.FFmpegError, OSError) as err:
                error = SourceError(
                    "stream_ended", f"{self.description}: the stream broke ({_strerror(err)})"
                )
            if error is not None:
                raise error  # outside the handler: no context that names the URL
            if frame is None:
                self._ended = True
                if self._live:
                    raise SourceError("stream_ended", f"{self.description}: the server ended the stream")
                tail = self._resampler.resample(None)
                return tail if tail.size else None
            chunk = self._resampler.resample(frame)
            if chunk.size:
                return chunk
        return None

    def interrupt(self) -> None:
        """Make `read()` return None at the next frame; a read blocked on the network ends by its timeout."""
        self._interrupted = True

    def close(self) -> None:
        """Close the container."""
        self._frames = None
        if self._container is not None:
            container, self._container = self._container, None
            container.close()


class FileSource(_PyAvSource):
    """Any file or URL PyAV opens (WAV, FLAC, MP3, MP4, HTTP, HLS), read to its end."""

    def __init__(
        self,
        path_or_url: str | os.PathLike[str],
        *,
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 10.0,
    ) -> None:
        url = os.fspath(path_or_url)
        self.description = redact_url(url)
        super().__init__(url, {}, open_timeout_s, read_timeout_s)


class RtspSource(_PyAvSource):
    """An RTSP camera's audio track, over `transport` "tcp" (default) or "udp"; PCMU, PCMA, AAC, Opus, L16...

    Only the audio track is set up, so a camera's video never crosses the network. A stream that stops
    sending for `read_timeout_s` raises SourceError("timeout"); PyAV's interrupt callback ends the blocked
    read, for TCP and UDP alike.
    """

    _live = True

    def __init__(
        self,
        url: str,
        *,
        transport: str = "tcp",
        open_timeout_s: float = 10.0,
        read_timeout_s: float = 5.0,
    ) -> None:
        if transport not in ("tcp", "udp"):
            raise ValueError(f"transport must be 'tcp' or 'udp', not {transport!r}")
        self.transport = transport
        self.description = f"{redact_url(url)} ({transport})"
        options = {"rtsp_transport": transport, "allowed_media_types": "audio"}
        if url[:6].lower() == "rtsps:":
            # Cameras serve rtsps with self-signed certificates (UniFi Protect, Reolink...), which newer
            # FFmpeg refuses by default; the stream is still encrypted, as go2rtc and Frigate read it.
            options["tls_verify"] = "0"
        super().__init__(url, options, open_timeout_s, read_timeout_s)

    def open(self) -> None:
        """Check the URL's scheme, then connect."""
        if url_scheme(self._url) not in RTSP_SCHEMES:
            raise SourceError("invalid_url", f"{self.description}: not an rtsp:// or rtsps:// URL")
        try:
            super().open()
        except SourceError as err:
            # FFmpeg reports a host name that does not resolve as a bare "Input/output error": say so.
            if err.reason == "cannot_connect" and (unresolved := self._unresolved_host()) is not None:
                raise SourceError("cannot_connect", f"{self.description}: {unresolved}") from None
            raise

    def _unresolved_host(self) -> str | None:
        """Why the URL's host name does not resolve, or None if it does (or is an address)."""
        host = urlsplit(self._url).hostname
        if not host:
            return None
        try:
            ipaddress.ip_address(host)
        except ValueError:
            pass
        else:
            return None
        try:
            socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as err:
            return f"the host name {host} does not resolve ({getattr(err, 'strerror', None) or err})"
        return None
