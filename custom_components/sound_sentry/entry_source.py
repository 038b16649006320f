"""Entry data to an engine audio source: the source factory for (re)connects, and the probe the flows use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
import time
from typing import Any, Literal
from urllib.parse import quote, urlsplit, urlunsplit

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
from .engine.sources import AudioSource, RtspSource, SourceError, UdpPcmSource

CAMERA_URL_TIMEOUT_S = 10.0


def url_with_credentials(url: str, username: str | None, password: str | None) -> str:
    """The RTSP URL with user-info for PyAV; credentials are kept apart from the URL in the entry."""
    if not username:
        return url
    parts = urlsplit(url)
    userinfo = quote(username, safe="") + (f":{quote(password, safe='')}" if password else "")
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def validate_rtsp_url(url: str) -> str:
    """A clean RTSP URL without user-info, or SourceError('invalid_url')."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("rtsp", "rtsps") or not parts.hostname:
        raise SourceError("invalid_url", "the URL must look like rtsp://camera.local:554/stream")
    if "@" in parts.netloc:
        raise SourceError("invalid_url", "put the user name and password in their own fields, not in the URL")
    try:
        _ = parts.port
    except ValueError:
        raise SourceError("invalid_url", "the URL's port is not a number") from None
    return urlunsplit(parts)


def _rtsp(url: str, transport: Literal["tcp", "udp"]) -> RtspSource:
    return RtspSource(
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
            raise SourceError("cannot_connect", f"camera {data[CONF_CAMERA]} gave no stream: {err}") from None
        if not url:
            raise SourceError("cannot_connect", f"camera {data[CONF_CAMERA]} has no stream source")
        return _rtsp(url, transport)

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
            raise SourceError("cannot_connect", "the camera has no stream source")
        transport = data.get(CONF_TRANSPORT, "tcp")
        factory = lambda: _rtsp(url, transport)  # noqa: E731
    await hass.async_add_executor_job(probe, factory, const.PROBE_TIMEOUT_S)
