"""`source_for_url`: the one place a source is chosen by its URL's scheme (CLI, Home Assistant cameras,
the MQTT service)."""

from __future__ import annotations

import pytest

from custom_components.sound_sentry.engine.sources import (
    FileSource,
    PcmFormat,
    RtspSource,
    UdpPcmSource,
    source_for_url,
)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("rtsp://camera.local:554/stream", RtspSource),
        ("RTSPS://camera.local/stream", RtspSource),
        ("udp://192.168.1.40:6055", UdpPcmSource),
        ("udp://[fe80::1]:6055", UdpPcmSource),
        ("http://frigate.local:1984/api/stream.mp4?src=cam", FileSource),
        ("/recordings/nursery.flac", FileSource),
    ],
)
def test_the_scheme_chooses_the_source(url: str, kind: type) -> None:
    assert type(source_for_url(url, pcm=PcmFormat())) is kind


def test_udp_is_raw_pcm_only_with_a_pcm_format() -> None:
    """A camera's udp:// stream (MPEG-TS) is PyAV's to open; raw PCM needs its format, and the sender."""
    assert type(source_for_url("udp://239.0.0.1:1234")) is FileSource
    source = source_for_url("udp://192.168.1.40:6055", pcm=PcmFormat(sample_rate_hz=8000, channels=2))
    assert isinstance(source, UdpPcmSource)
    assert (source.port, source.allowed_senders, source.sample_rate_hz, source.channels) == (
        6055,
        frozenset({"192.168.1.40"}),
        8000,
        2,
    )


@pytest.mark.parametrize(
    "url", ["udp://192.168.1.40", "udp://:6055", "udp://192.168.1.40:0", "udp://x:99999"]
)
def test_a_malformed_udp_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"udp://SENDER:PORT"):
        source_for_url(url, pcm=PcmFormat())


def test_given_timeouts_replace_each_sources_defaults() -> None:
    rtsp = source_for_url(
        "rtsp://camera.local/stream", transport="udp", open_timeout_s=3.0, read_timeout_s=2.0
    )
    assert isinstance(rtsp, RtspSource)
    assert (rtsp.transport, rtsp.open_timeout_s, rtsp.read_timeout_s) == ("udp", 3.0, 2.0)
    udp = source_for_url("udp://192.168.1.40:6055", pcm=PcmFormat(), read_timeout_s=2.0)
    assert isinstance(udp, UdpPcmSource)
    assert udp.read_timeout_s == 2.0
    default = source_for_url("https://camera.local/stream.m3u8")
    assert (default.open_timeout_s, default.read_timeout_s) == (
        FileSource("x").open_timeout_s,
        FileSource("x").read_timeout_s,
    )
