"""A real RTSP server on loopback for the tests, the benchmarks and the demo: GStreamer's GstRtspServer,
like a camera (FACTS §3). `peers.RtspServer` runs it.

Runs under Debian's /usr/bin/python3 (the gi bindings live only there), never under the test venvs:

    /usr/bin/python3 benchmarks/_common/rtsp_server.py --port 0 --codec pcmu --source tone

Serves rtsp://127.0.0.1:<port>/stream and prints ``READY <port>`` once it accepts connections. Audio comes
from an appsrc fed by this script (a 440 Hz tone, silence, or a file decoded once and looped), so every
client gets the same, known signal from its start. ``--stall-after-s`` stops sending media after that much
audio while the RTSP session stays open (a camera that goes silent without closing). ``--source video``
serves a video-only stream (no audio track). ``--user``/``--password`` require HTTP basic auth (401).
"""

from __future__ import annotations

import argparse
import array
import math
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import Gio, GLib, Gst, GstRtspServer  # noqa: E402

try:  # GLib 2.80 moved the Unix signal source to GLibUnix (and deprecated GLib's); Debian 12 has 2.74
    gi.require_version("GLibUnix", "2.0")
    from gi.repository import GLibUnix

    unix_signal_add = GLibUnix.signal_add
except (ImportError, ValueError):
    unix_signal_add = GLib.unix_signal_add

# Encoder and RTP payloader per codec, with the rate the feeder produces by default.
CODECS = {
    "pcmu": ("mulawenc ! rtppcmupay name=pay0 pt=0", 8000),
    "pcma": ("alawenc ! rtppcmapay name=pay0 pt=8", 8000),
    "aac": ("avenc_aac ! rtpmp4gpay name=pay0 pt=96", 16000),
    "opus": ("opusenc ! rtpopuspay name=pay0 pt=96", 48000),
    "l16": ("audioconvert ! audio/x-raw,format=S16BE ! rtpL16pay name=pay0 pt=96", 16000),
}
VIDEO_LAUNCH = (
    "( videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=120,framerate=10/1 "
    "! jpegenc ! rtpjpegpay name=pay0 pt=26 )"
)
BUFFER_S = 0.02  # 20 ms per pushed buffer, like a camera's RTP packets


def decode_file(path: str, rate: int) -> bytes:
    """Decode an audio file to S16LE mono at `rate` with GStreamer, all at once."""
    pipeline = Gst.parse_launch(
        f"filesrc name=src ! decodebin ! audioconvert ! audioresample "
        f"! audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels=1 ! appsink name=sink sync=false"
    )
    pipeline.get_by_name("src").set_property("location", path)
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    chunks = []
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        buf = sample.get_buffer()
        chunks.append(buf.extract_dup(0, buf.get_size()))
    pipeline.set_state(Gst.State.NULL)
    data = b"".join(chunks)
    if not data:
        sys.exit(f"no audio decoded from {path}")
    return data


def tone(rate: int, freq_hz: float = 440.0, amplitude: float = 0.3) -> bytes:
    """One second of a sine (a whole number of periods at 440 Hz for every rate used), S16LE."""
    samples = array.array(
        "h", (round(amplitude * 32767 * math.sin(2 * math.pi * freq_hz * i / rate)) for i in range(rate))
    )
    if sys.byteorder != "little":
        samples.byteswap()
    return samples.tobytes()


class Feeder:
    """Feeds one client's appsrc with the looped signal, stamped in stream time."""

    def __init__(self, appsrc: Gst.Element, pcm: bytes, rate: int, stall_after_s: float | None) -> None:
        self.appsrc = appsrc
        self.pcm = pcm
        self.rate = rate
        self.stall_after_s = stall_after_s
        self.offset = 0  # byte position in pcm
        self.samples_sent = 0
        appsrc.connect("need-data", self.on_need_data)

    def on_need_data(self, appsrc: Gst.Element, _length: int) -> None:
        if self.stall_after_s is not None and self.samples_sent >= self.stall_after_s * self.rate:
            return  # go quiet, but neither end the stream nor close the session
        n_bytes = round(BUFFER_S * self.rate) * 2
        chunk = b""
        while len(chunk) < n_bytes:
            take = self.pcm[self.offset : self.offset + n_bytes - len(chunk)]
            chunk += take
            self.offset = (self.offset + len(take)) % len(self.pcm)
        buf = Gst.Buffer.new_wrapped(chunk)
        n_samples = len(chunk) // 2
        buf.pts = Gst.util_uint64_scale(self.samples_sent, Gst.SECOND, self.rate)
        buf.duration = Gst.util_uint64_scale(n_samples, Gst.SECOND, self.rate)
        self.samples_sent += n_samples
        appsrc.emit("push-buffer", buf)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed with READY)")
    parser.add_argument("--path", default="/stream")
    parser.add_argument("--codec", choices=sorted(CODECS), default="pcmu")
    parser.add_argument("--source", choices=["tone", "silence", "file", "video"], default="tone")
    parser.add_argument("--file", help="audio file for --source file (decoded once, looped)")
    parser.add_argument("--rate", type=int, help="sample rate fed to the encoder (default per codec)")
    parser.add_argument("--stall-after-s", type=float, help="stop sending media after this much audio")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--tls-pem", help="certificate and key in one PEM file: serve rtsps:// instead")
    args = parser.parse_args()

    Gst.init(None)
    encoder, default_rate = CODECS[args.codec]
    rate = args.rate or default_rate
    factory = GstRtspServer.RTSPMediaFactory()
    feeders: list[Feeder] = []  # every client's feeder, alive as long as its media
    medias: list[GstRtspServer.RTSPMedia] = []
    if args.source == "video":
        factory.set_launch(VIDEO_LAUNCH)
    else:
        if args.source == "file":
            if not args.file:
                parser.error("--source file needs --file")
            pcm = decode_file(args.file, rate)
        elif args.source == "silence":
            pcm = bytes(rate * 2)
        else:
            pcm = tone(rate)
        caps = f"audio/x-raw,format=S16LE,layout=interleaved,rate={rate},channels=1"
        factory.set_launch(
            f"( appsrc name=feed is-live=true format=time max-bytes={rate // 5} caps={caps} "
            f"! audioconvert ! audioresample ! {encoder} )"
        )

        def on_media_configure(_factory: object, media: GstRtspServer.RTSPMedia) -> None:
            appsrc = media.get_element().get_by_name_recurse_up("feed")
            feeders.append(Feeder(appsrc, pcm, rate, args.stall_after_s))
            medias.append(media)

        factory.connect("media-configure", on_media_configure)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    if args.user is not None or args.tls_pem:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", "viewer")
        if args.user is not None:
            auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password or ""), token)
        else:
            auth.set_default_token(token)  # anyone may watch
        if args.tls_pem:
            auth.set_tls_certificate(Gio.TlsCertificate.new_from_file(args.tls_pem))
        server.set_auth(auth)
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("viewer", "media.factory.access", True)
        permissions.add_permission_for_role("viewer", "media.factory.construct", True)
        factory.set_permissions(permissions)
    server.get_mount_points().add_factory(args.path, factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot listen on {args.host}:{args.port}")

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        unix_signal_add(GLib.PRIORITY_HIGH, signum, loop.quit)
    print(f"READY {server.get_bound_port()}", flush=True)
    loop.run()
    # Stop the clients' pipelines first: their streaming threads call the feeders (need-data), which in a
    # Python tearing itself down fail ("NameError: name 'round' is not defined") into the log.
    for media in medias:
        media.unprepare()


if __name__ == "__main__":
    main()
