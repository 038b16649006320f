"""Audio sources: files, RTSP cameras and UDP microphones, each yielding 8 kHz mono int16 chunks.

All decoding and resampling goes through PyAV. Every failure is a `SourceError` with a stable `reason`;
`SourceRunner` keeps a live source going in its own thread, reconnecting with `Backoff`.
"""

from .av_sources import FileSource, RtspSource
from .base import OUTPUT_SAMPLE_RATE_HZ, AudioChunk, AudioSource, SourceError, SourceErrorReason
from .by_url import PcmFormat, source_for_url, url_with_credentials
from .paced import PacedSource
from .runner import Backoff, SourceRunner
from .udp import UdpCounters, UdpPcmSource

__all__ = [
    "OUTPUT_SAMPLE_RATE_HZ",
    "AudioChunk",
    "AudioSource",
    "Backoff",
    "FileSource",
    "PacedSource",
    "PcmFormat",
    "RtspSource",
    "SourceError",
    "SourceErrorReason",
    "SourceRunner",
    "UdpCounters",
    "UdpPcmSource",
    "source_for_url",
    "url_with_credentials",
]
