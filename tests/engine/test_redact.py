"""URL redaction: credentials never survive, everything else does."""

from __future__ import annotations

import pytest

from custom_components.sound_sentry.engine.redact import redact_credentials, redact_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:hunter2@192.168.1.20:554/live", "rtsp://****:****@192.168.1.20:554/live"),
        ("rtsp://admin@cam.local/live", "rtsp://****:****@cam.local/live"),
        # A password pasted unescaped, with "@" and "/" in it: all of it goes.
        ("rtsp://admin:p@ss/w0rd@cam:554/ch1", "rtsp://****:****@cam:554/ch1"),
        ("rtsps://u:p@[fe80::1]:322/s", "rtsps://****:****@[fe80::1]:322/s"),
        (
            "http://cam/cgi?user=admin&pwd=hunter2&channel=1",
            "http://cam/cgi?user=****&pwd=****&channel=1",
        ),
        ("https://nvr/hls.m3u8?TOKEN=abc.def;Key=1#t", "https://nvr/hls.m3u8?TOKEN=****;Key=****#t"),
        ("http://h/s?password=&x=1", "http://h/s?password=&x=1"),  # nothing to hide
        ("http://h/s?passenger=3&keys=2", "http://h/s?passenger=3&keys=2"),  # whole names only
        ("rtsp://cam.local:554/stream1", "rtsp://cam.local:554/stream1"),
        ("/media/clips/a@b.flac", "/media/clips/a@b.flac"),  # a path is not a URL
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_redact_credentials_in_free_text() -> None:
    text = "open 'rtsp://a:secret1@h/x' failed, then http://b:secret2@h2/y?auth=secret3 too"
    redacted = redact_credentials(text)
    assert "secret" not in redacted
    assert "'rtsp://****:****@h/x' failed, then http://****:****@h2/y?auth=**** too" in redacted
