"""The one place that chooses a source by a URL's scheme: RTSP, raw PCM over UDP, or anything PyAV opens."""

from __future__ import annotations

from dataclasses import dataclass
import functools
from typing import Literal
from urllib.parse import quote, urlsplit, urlunsplit

from .av_sources import RTSP_SCHEMES, FileSource, RtspSource, url_scheme
from .base import AudioSource
from .udp import UdpPcmSource


@dataclass(frozen=True, kw_only=True)
class PcmFormat:
    """The format of raw PCM datagrams (as an ESPHome microphone sends them)."""

    sample_rate_hz: int = 16000
    sample_width: int = 2
    """Bytes per sample: 2 or 4."""
    channels: int = 1


def source_for_url(
    url: str,
    *,
    transport: Literal["tcp", "udp"] = "tcp",
    pcm: PcmFormat | None = None,
    open_timeout_s: float | None = None,
    read_timeout_s: float | None = None,
) -> AudioSource:
    """The source that reads `url`; nothing opens yet (call it again for each connection).

    `rtsp://` and `rtsps://`: a camera, over `transport`. `udp://SENDER:PORT` with a `pcm` format: raw
    PCM datagrams on PORT, accepted only from SENDER (without `pcm`, PyAV opens it, e.g. MPEG-TS over
    UDP). Anything else: a file or URL PyAV opens (HTTP, HLS...), whose end is the end of the stream.
    The timeouts, where given, replace the source's own defaults. Raises ValueError for a malformed
    `udp://` URL, PCM format or transport.
    """
    timeouts = {
        name: value
        for name, value in (("open_timeout_s", open_timeout_s), ("read_timeout_s", read_timeout_s))
        if value is not None
    }
    scheme = url_scheme(url)
    if scheme in RTSP_SCHEMES:
        return RtspSource(url, transport=transport, **timeouts)
    if scheme == "udp" and pcm is not None:
        sender, _, port = urlsplit(url).netloc.rpartition(":")
        sender = sender.strip("[]")
        if not sender or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError("expected udp://SENDER:PORT, e.g. udp://192.168.1.40:6055")
        udp = functools.partial(
            UdpPcmSource,
            int(port),
            allowed_senders={sender},
            sample_rate_hz=pcm.sample_rate_hz,
            sample_width=pcm.sample_width,
            channels=pcm.channels,
        )
        return udp() if read_timeout_s is None else udp(read_timeout_s=read_timeout_s)
    return FileSource(url, **timeouts)


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The URL with user-info for PyAV, from credentials kept apart from it (in an entry, in a YAML file)."""
    if not username:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
