"""Entry data to an engine audio source: the source factory for (re)connects, and the probe the flows use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import time
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from homeassistant.components.camera import async_get_stream_source
from homeassistant.const import CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from . import const
from .const import (
    CONF_CAMERA,
    CONF_CHANNELS,
    CONF_DEVICE_ADDRESS,
    CONF_SAMPLE_BITS,
    CONF_SAMPLE_RATE,
    CONF_SOURCE_TYPE,
    CONF_TRANSPORT,
    SourceType,
)
from .engine.redact import CREDENTIAL_QUERY_KEYS
from .engine.sources import (
    AudioSource,
    RtspSource,
    SourceError,
    UdpPcmSource,
    source_for_url,
    url_with_credentials,
)
from .engine.sources.av_sources import RTSP_SCHEMES

CAMERA_URL_TIMEOUT_S = 10.0
RTSP_DEFAULT_PORTS = {"rtsp": 554, "rtsps": 322}


def unique_id_for(data: Mapping[str, Any]) -> str:
    """One entry per camera entity, per RTSP stream (whatever the credentials) and per UDP port.

    An RTSP stream is its host, port, path and query: NVRs tell channels apart by the query
    (`/cam/realmonitor?channel=2`). Credential parameters in the query are left out, like the user-info.
    """
    match SourceType(data[CONF_SOURCE_TYPE]):
        case SourceType.CAMERA:
            return f"camera:{data[CONF_CAMERA]}"
        case SourceType.RTSP:
            parts = urlsplit(data[CONF_URL])
            port = parts.port or RTSP_DEFAULT_PORTS.get(parts.scheme.lower(), 554)
            query = urlencode(
                sorted(
                    (key, value)
                    for key, value in parse_qsl(parts.query, keep_blank_values=True)
                    if key.lower() not in CREDENTIAL_QUERY_KEYS
                )
            )
            return f"rtsp:{(parts.hostname or '').lower()}:{port}{parts.path}" + (
                f"?{query}" if query else ""
            )
        case SourceType.UDP:
            return f"udp:{data[CONF_PORT]}"


def validate_rtsp_url(url: str) -> str:
    """A clean RTSP URL without user-info, or SourceError('invalid_url')."""
    parts = urlsplit(url.strip())
    if parts.scheme not in RTSP_SCHEMES or not parts.hostname:
        raise SourceError("invalid_url", "the URL must look like rtsp://camera.local:554/stream")
    if "@" in parts.netloc:
        raise SourceError("invalid_url", "put the user name and password in their own fields, not in the URL")
    try:
        _ = parts.port
    except ValueError:
        raise SourceError("invalid_url", "the URL's port is not a number") from None
    return urlunsplit(parts)


class NoCameraStreamError(SourceError):
    """The camera entity gives no stream URL (a camera that only has snapshots, or one that is off)."""

    def __init__(self, entity_id: str, detail: str = "") -> None:
        super().__init__("cannot_connect", f"camera {entity_id} gives no stream{detail}")


def _rtsp(url: str, transport: Literal["tcp", "udp"]) -> RtspSource:
    return RtspSource(
        url, transport=transport, open_timeout_s=const.OPEN_TIMEOUT_S, read_timeout_s=const.READ_TIMEOUT_S
    )


def camera_stream_source(url: str, transport: Literal["tcp", "udp"]) -> AudioSource:
    """A camera's stream as PyAV opens it.

    RTSP(S) over `transport`; anything else (HTTP(S) MJPEG, HLS, FLV, a go2rtc or Frigate restream over
    HTTP, MPEG-TS over UDP) as a URL PyAV reads, whose end is a reconnect.
    """
    return source_for_url(
        url, transport=transport, open_timeout_s=const.OPEN_TIMEOUT_S, read_timeout_s=const.READ_TIMEOUT_S
    )


def source_factory(hass: HomeAssistant, data: Mapping[str, Any]) -> Callable[[], AudioSource]:
    """A function that builds the source anew for each (re)connect; called in the source thread."""
    source_type = SourceType(data[CONF_SOURCE_TYPE])
    if source_type is SourceType.UDP:
        return lambda: UdpPcmSource(
            data[CONF_PORT],
            allowed_senders={data[CONF_DEVICE_ADDRESS]},
            sample_rate_hz=data[CONF_SAMPLE_RATE],
            sample_width=data[CONF_SAMPLE_BITS] // 8,
            channels=data[CONF_CHANNELS],
            read_timeout_s=const.READ_TIMEOUT_S,
        )
    transport = data.get(CONF_TRANSPORT, "tcp")
    if source_type is SourceType.RTSP:
        url = url_with_credentials(data[CONF_URL], data.get(CONF_USERNAME), data.get(CONF_PASSWORD))
        return lambda: _rtsp(url, transport)

    def camera_source() -> AudioSource:
        # Resolved on every connect, so a camera whose stream URL changes keeps working.
        future = asyncio.run_coroutine_threadsafe(async_get_stream_source(hass, data[CONF_CAMERA]), hass.loop)
        try:
            url = future.result(CAMERA_URL_TIMEOUT_S)
        except Exception as err:  # noqa: BLE001 - any failure of the camera is a failed connect
            future.cancel()
            raise NoCameraStreamError(data[CONF_CAMERA], f": {err}") from None
        if not url:
            raise NoCameraStreamError(data[CONF_CAMERA])
        return camera_stream_source(url, transport)

    return camera_source


def probe(factory: Callable[[], AudioSource], timeout_s: float) -> None:
    """Open the source and wait for real audio; raise SourceError otherwise. Blocking."""
    deadline = time.monotonic() + timeout_s
    try:
        with factory() as source:
            while time.monotonic() < deadline:
                if (chunk := source.read()) is None:
                    break
                if len(chunk):
                    return
    except SourceError as err:
        if err.reason in ("timeout", "stream_ended"):
            raise SourceError("no_audio", str(err)) from None
        raise
    raise SourceError("no_audio", f"no audio arrived within {timeout_s:.0f} s")


async def async_probe(hass: HomeAssistant, data: Mapping[str, Any]) -> None:
    """Try a source before an entry is made from it: audio must arrive within PROBE_TIMEOUT_S."""
    factory = source_factory(hass, data)
    if data[CONF_SOURCE_TYPE] == SourceType.CAMERA:
        # Resolve the camera's URL here, on the loop, so the probe thread does not wait on the loop.
        url = await async_get_stream_source(hass, data[CONF_CAMERA])
        if not url:
            raise NoCameraStreamError(data[CONF_CAMERA])
        transport = data.get(CONF_TRANSPORT, "tcp")
        factory = lambda: camera_stream_source(url, transport)  # noqa: E731
    await hass.async_add_executor_job(probe, factory, const.PROBE_TIMEOUT_S)
