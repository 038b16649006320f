"""Audio sources against real peers: GStreamer's RTSP server, real UDP sockets, real audio files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import csv
import logging
from pathlib import Path
import queue
import socket
import threading
import time
import traceback
from typing import Any
import wave

import av
import numpy as np
import pytest

from custom_components.sound_sentry.engine.listener import Listener
from custom_components.sound_sentry.engine.model import load_model
from custom_components.sound_sentry.engine.pipeline import Pipeline, PipelineOutput
from custom_components.sound_sentry.engine.sources import (
    OUTPUT_SAMPLE_RATE_HZ,
    AudioSource,
    Backoff,
    FileSource,
    RtspSource,
    SourceError,
    SourceRunner,
    UdpPcmSource,
)
from tests.audio import encode_with_pyav
from tests.peers import RtspServer, http_server

type ServerFactory = Callable[..., RtspServer]

CODECS = ["pcmu", "pcma", "aac", "opus", "l16"]
TONE_HZ = 440.0  # what benchmarks/_common/rtsp_server.py sends
TONE_RMS = 0.3 * 32767 / np.sqrt(2)
SHORT = {"open_timeout_s": 5.0, "read_timeout_s": 3.0}
# Lossy encoders add priming and pad the last frame (AAC: 2 x 1024 samples at 16 kHz = 0.128 s);
# MPEG-TS and older FFmpeg MP4 muxers do not trim them.
ENCODER_SLACK_S = 0.2


def read_at_least(source: AudioSource, n_samples: int) -> np.ndarray:
    """Read chunks until there are `n_samples`; check every chunk's format on the way."""
    chunks: list[np.ndarray] = []
    total = 0
    while total < n_samples:
        chunk = source.read()
        assert chunk is not None
        assert chunk.dtype == np.int16
        assert chunk.ndim == 1
        assert chunk.size > 0
        chunks.append(chunk)
        total += chunk.size
    return np.concatenate(chunks)


def dominant_hz(samples: np.ndarray) -> float:
    """Frequency of the strongest spectral peak."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64) * np.hanning(samples.size)))
    return float(np.argmax(spectrum) * OUTPUT_SAMPLE_RATE_HZ / samples.size)


def rms(samples: np.ndarray) -> float:
    return float(np.sqrt(np.mean(samples.astype(np.float64) ** 2)))


def assert_is_tone(samples: np.ndarray) -> None:
    """The test server's 440 Hz tone at its level, after any codec and the resampler."""
    assert dominant_hz(samples) == pytest.approx(TONE_HZ, abs=2)
    assert rms(samples) == pytest.approx(TONE_RMS, rel=0.25)


def read_until_error(source: AudioSource) -> tuple[np.ndarray, SourceError]:
    """Every sample a live source delivers before it fails, and the failure."""
    chunks = [np.zeros(0, dtype=np.int16)]
    try:
        while True:
            chunk = source.read()
            assert chunk is not None
            chunks.append(chunk)
    except SourceError as err:
        return np.concatenate(chunks), err


def open_error(source: AudioSource) -> SourceError:
    with pytest.raises(SourceError) as info:
        source.open()
    source.close()
    return info.value


def flac_total_samples(path: Path) -> int:
    """The sample count in a FLAC file's STREAMINFO header, read without PyAV."""
    header = path.read_bytes()[:42]
    assert header[:4] == b"fLaC"
    assert header[4] & 0x7F == 0  # the first metadata block is STREAMINFO
    packed = int.from_bytes(header[18:26], "big")  # rate 20 bits, channels 3, bits 5, samples 36
    return packed & ((1 << 36) - 1)


@pytest.fixture
def clip(data_dir: Path) -> Path:
    """A real labelled clip, short enough to stream in real time (the first 1.5-2.5 s gunshot test clip)."""
    with (data_dir / "manifest.csv").open() as f:
        rows = [
            r
            for r in csv.DictReader(f)
            if r["label"] == "gunshot" and r["split"] == "test" and 1.5 <= float(r["duration_s"]) <= 2.5
        ]
    return data_dir / sorted(rows, key=lambda r: r["path"])[0]["path"]


# RTSP: every codec a camera sends, decoded from the real server.


@pytest.mark.parametrize("codec", CODECS)
def test_rtsp_codec_over_tcp(rtsp_server: ServerFactory, codec: str) -> None:
    server = rtsp_server(codec=codec)
    with RtspSource(server.url(), **SHORT) as source:
        samples = read_at_least(source, 12000)
    assert_is_tone(samples[-8000:])  # skip the encoder's start-up


@pytest.mark.parametrize("codec", ["pcmu", "aac"])
def test_rtsp_over_udp(rtsp_server: ServerFactory, codec: str) -> None:
    server = rtsp_server(codec=codec)
    with RtspSource(server.url(), transport="udp", **SHORT) as source:
        samples = read_at_least(source, 12000)
    assert_is_tone(samples[-8000:])


def test_rtsp_l16_is_sample_exact(rtsp_server: ServerFactory, clip: Path) -> None:
    """A real clip sent as 8 kHz L16 comes back bit for bit: no gain, no drift, no lost samples."""
    with FileSource(clip) as source:
        expected = np.concatenate(list(source))
    server = rtsp_server(codec="l16", source="file", file=clip, rate=8000)
    with RtspSource(server.url(), **SHORT) as source:
        received = read_at_least(source, expected.size)
    np.testing.assert_array_equal(received[: expected.size], expected)


def test_rtsp_pcmu_carries_a_real_clip(rtsp_server: ServerFactory, clip: Path) -> None:
    with FileSource(clip) as source:
        expected = np.concatenate(list(source)).astype(np.float64)
    server = rtsp_server(codec="pcmu", source="file", file=clip)
    with RtspSource(server.url(), **SHORT) as source:
        received = read_at_least(source, expected.size)[: expected.size].astype(np.float64)
    # mu-law keeps the waveform to within its quantisation: correlation, not equality.
    assert np.corrcoef(received, expected)[0, 1] > 0.99


def test_rtsp_wrong_scheme_is_invalid_url() -> None:
    assert open_error(RtspSource("http://127.0.0.1:1/stream", **SHORT)).reason == "invalid_url"
    assert open_error(RtspSource("not a url", **SHORT)).reason == "invalid_url"


def test_rtsp_closed_port_is_cannot_connect(rtsp_server: ServerFactory) -> None:
    server = rtsp_server()
    server.stop()  # the port was just served, now nothing listens on it
    assert open_error(RtspSource(server.url(), **SHORT)).reason == "cannot_connect"


def test_rtsp_wrong_path_is_invalid_url(rtsp_server: ServerFactory) -> None:
    server = rtsp_server()
    assert open_error(RtspSource(server.url(path="/nope"), **SHORT)).reason == "invalid_url"


def test_rtsps_with_a_self_signed_certificate(rtsp_server: ServerFactory) -> None:
    """Cameras serve rtsps with self-signed certificates (UniFi Protect); newer FFmpeg refuses them unasked."""
    server = rtsp_server(tls=True, user="viewer", password="right")
    assert server.url().startswith("rtsps://")
    with RtspSource(server.url("viewer", "right"), **SHORT) as source:
        assert_is_tone(read_at_least(source, 12000)[-8000:])
    assert open_error(RtspSource(server.url("viewer", "wrong"), **SHORT)).reason == "invalid_auth"


def test_rtsp_401_is_invalid_auth(rtsp_server: ServerFactory) -> None:
    server = rtsp_server(user="viewer", password="right")
    assert open_error(RtspSource(server.url(), **SHORT)).reason == "invalid_auth"
    assert open_error(RtspSource(server.url("viewer", "wrong"), **SHORT)).reason == "invalid_auth"
    with RtspSource(server.url("viewer", "right"), **SHORT) as source:
        assert_is_tone(read_at_least(source, 12000)[-8000:])


def test_rtsp_without_audio_track_is_no_audio(rtsp_server: ServerFactory) -> None:
    server = rtsp_server(source="video")
    error = open_error(RtspSource(server.url(), **SHORT))
    assert error.reason == "no_audio"
    assert "video" in str(error)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_rtsp_silent_but_open_stream_times_out(rtsp_server: ServerFactory, transport: str) -> None:
    """A stream that stops sending while the session stays open is noticed by the read timeout."""
    server = rtsp_server(stall_after_s=0.5)
    with RtspSource(server.url(), transport=transport, open_timeout_s=5, read_timeout_s=1) as source:
        samples, error = read_until_error(source)
    assert error.reason == "timeout"
    assert samples.size >= 0.5 * OUTPUT_SAMPLE_RATE_HZ  # it did stream before going quiet
    assert server.running  # the server never closed


def test_rtsp_server_gone_mid_stream_is_stream_ended(rtsp_server: ServerFactory) -> None:
    server = rtsp_server()
    with RtspSource(server.url(), **SHORT) as source:
        read_at_least(source, 800)
        server.stop()
        _, error = read_until_error(source)
    assert error.reason == "stream_ended"


# Files.


def test_file_source_reads_a_flac_to_the_last_sample(clip: Path) -> None:
    with FileSource(clip) as source:
        chunks = list(source)
    assert all(c.dtype == np.int16 and c.ndim == 1 for c in chunks)
    assert sum(c.size for c in chunks) == flac_total_samples(clip)


@pytest.mark.parametrize(("rate", "channels"), [(44100, 2), (16000, 1)])
def test_file_source_resamples_to_8k_mono(tmp_path: Path, clip: Path, rate: int, channels: int) -> None:
    """A WAV at another rate and layout comes out at 8 kHz mono with the same duration and sound."""
    with FileSource(clip) as source:
        original = np.concatenate(list(source))
    # Upsample the real clip through PyAV too (never by hand), then write it as a plain WAV.
    frame = av.AudioFrame.from_ndarray(original.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = OUTPUT_SAMPLE_RATE_HZ
    layout = "stereo" if channels == 2 else "mono"
    up = av.AudioResampler(format="s16", layout=layout, rate=rate)
    upsampled = np.concatenate(
        [f.to_ndarray().reshape(-1) for f in [*up.resample(frame), *up.resample(None)]]
    )
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(upsampled.astype("<i2").tobytes())

    with FileSource(path) as source:
        back = np.concatenate(list(source))
    assert abs(back.size - original.size) <= 2
    n = min(back.size, original.size)
    assert np.corrcoef(back[:n].astype(float), original[:n].astype(float))[0, 1] > 0.99


def test_file_source_errors(tmp_path: Path) -> None:
    assert open_error(FileSource(tmp_path / "missing.flac")).reason == "invalid_url"
    assert open_error(FileSource("nosuchscheme://host/x")).reason == "invalid_url"
    text = tmp_path / "notes.txt"
    text.write_text("not audio\n" * 100)
    assert open_error(FileSource(text)).reason == "no_audio"


def best_alignment_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Peak normalised cross-correlation of two signals (lossy encoders add a start-up delay)."""
    x = (a - a.mean()) / (a.std() * a.size)
    y = (b - b.mean()) / b.std()
    n = 1 << (a.size + b.size).bit_length()
    return float(np.max(np.fft.irfft(np.fft.rfft(x, n) * np.conj(np.fft.rfft(y, n)), n)))


@pytest.mark.parametrize(
    ("suffix", "codec", "rate"),
    [
        (".mp3", "libmp3lame", 16000),
        (".mp4", "aac", 16000),
        (".ogg", "libopus", 48000),
        (".wav", "pcm_s16le", 8000),
    ],
)
def test_file_source_decodes_common_formats(
    tmp_path: Path, clip: Path, suffix: str, codec: str, rate: int
) -> None:
    with FileSource(clip) as source:
        original = np.concatenate(list(source)).astype(np.float64)
    path = tmp_path / f"clip{suffix}"
    encode_with_pyav(original.astype(np.int16), path, codec, rate)
    with FileSource(path) as source:
        back = np.concatenate(list(source)).astype(np.float64)
    # Encoders add priming and pad the last frame; not every muxer (nor FFmpeg version) trims them.
    assert back.size == pytest.approx(original.size, abs=ENCODER_SLACK_S * OUTPUT_SAMPLE_RATE_HZ)
    assert best_alignment_correlation(back, original) > 0.9


@pytest.mark.usefixtures("socket_enabled")
def test_file_source_reads_http_and_hls(tmp_path: Path, clip: Path) -> None:
    with FileSource(clip) as source:
        original = np.concatenate(list(source))
    (tmp_path / "clip.flac").write_bytes(clip.read_bytes())
    encode_with_pyav(
        original, tmp_path / "live.m3u8", "aac", 16000, format="hls", hls_time="1", hls_list_size="0"
    )
    assert len(list(tmp_path.glob("*.ts"))) > 1  # really segmented
    with http_server(tmp_path) as base:
        with FileSource(f"{base}/clip.flac") as source:
            over_http = np.concatenate(list(source))
        with FileSource(f"{base}/live.m3u8") as source:
            over_hls = np.concatenate(list(source)).astype(np.float64)
        assert open_error(FileSource(f"{base}/missing.flac")).reason == "invalid_url"
    np.testing.assert_array_equal(over_http, original)
    assert over_hls.size == pytest.approx(original.size, abs=ENCODER_SLACK_S * OUTPUT_SAMPLE_RATE_HZ)
    assert best_alignment_correlation(over_hls, original.astype(np.float64)) > 0.9


# Raw PCM over UDP.


def udp_sender(address: str = "127.0.0.1") -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((address, 0))
    return sock


@contextlib.contextmanager
def udp_source(**kwargs: Any) -> Iterator[UdpPcmSource]:
    kwargs.setdefault("allowed_senders", {"127.0.0.1"})
    kwargs.setdefault("read_timeout_s", 2.0)
    source = UdpPcmSource(0, host="127.0.0.1", **kwargs)
    source.open()
    try:
        yield source
    finally:
        source.close()


def tone_pcm(rate: int, width: int, channels: int, seconds: float) -> np.ndarray:
    """A 440 Hz tone at 0.3 of full scale, interleaved, as the device would send it."""
    t = np.arange(round(rate * seconds)) / rate
    full_scale = 2 ** (8 * width - 1) - 1
    mono = np.round(0.3 * full_scale * np.sin(2 * np.pi * TONE_HZ * t)).astype(f"<i{width}")
    return np.repeat(mono, channels)  # L R L R ...


def send_in_datagrams(sock: socket.socket, source: UdpPcmSource, pcm: np.ndarray, frame_samples: int) -> None:
    """Send like ESPHome, one datagram per ~16 ms of audio, never more than a few ahead of the reader.

    A device paces itself in real time; a test sending as fast as it can would overflow the kernel's
    receive buffer, so it waits for the source to have received all but the last few.
    """
    data = pcm.tobytes()
    step = frame_samples * pcm.itemsize
    for sent, start in enumerate(range(0, len(data), step)):
        while sent - source.counters.received > 8:
            time.sleep(0.001)
        sock.sendto(data[start : start + step], ("127.0.0.1", source.port))


def collect_datagrams(source: UdpPcmSource, n_datagrams: int) -> np.ndarray:
    """Every sample made from the first `n_datagrams` datagrams."""
    chunks = [np.zeros(0, dtype=np.int16)]
    reason = None
    try:
        while source.counters.received < n_datagrams:
            chunk = source.read()
            assert chunk is not None
            chunks.append(chunk)
    except SourceError as err:  # the last datagram may leave everything inside the resampler
        reason = err.reason
    assert reason in (None, "timeout")
    assert source.counters.received == n_datagrams
    return np.concatenate(chunks)


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 44100, 48000])
@pytest.mark.parametrize("width", [2, 4])
@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.usefixtures("socket_enabled")
def test_udp_formats_resample_to_8k(rate: int, width: int, channels: int) -> None:
    seconds = 1.0
    pcm = tone_pcm(rate, width, channels, seconds)
    samples_per_datagram = round(rate * 0.016) * channels
    n_datagrams = -(-pcm.size // samples_per_datagram)
    with (
        udp_source(sample_rate_hz=rate, sample_width=width, channels=channels, read_timeout_s=3) as source,
        udp_sender() as sender,
    ):
        thread = threading.Thread(target=send_in_datagrams, args=(sender, source, pcm, samples_per_datagram))
        thread.start()
        samples = collect_datagrams(source, n_datagrams)
        thread.join()
    # The resampler keeps a few samples (its filter's delay) back until more come; nothing is lost or added.
    assert 0 <= seconds * OUTPUT_SAMPLE_RATE_HZ - samples.size <= 32
    assert_is_tone(samples[1000:])
    assert source.counters.dropped_foreign == source.counters.dropped_malformed == 0


@pytest.mark.usefixtures("socket_enabled")
def test_udp_drops_and_counts_foreign_and_malformed_datagrams() -> None:
    good = tone_pcm(8000, 2, 1, 0.016)
    with (
        udp_source(sample_rate_hz=8000) as source,
        udp_sender() as device,
        udp_sender("127.0.0.2") as intruder,
    ):
        target = ("127.0.0.1", source.port)
        for _ in range(3):
            intruder.sendto(good.tobytes(), target)
        device.sendto(b"", target)
        device.sendto(good.tobytes()[:-1], target)  # half a sample
        device.sendto(bytes(8000 * 2), target)  # a whole second in one datagram: absurd for a mic
        device.sendto(good.tobytes(), target)
        chunk = source.read()
        assert chunk is not None
        np.testing.assert_array_equal(chunk, good)  # 8 kHz mono 16-bit passes through unchanged
    assert source.counters.received == 7
    assert source.counters.dropped_foreign == 3
    assert source.counters.dropped_malformed == 3


@pytest.mark.usefixtures("socket_enabled")
def test_udp_stereo_32_bit_datagram_must_hold_whole_frames() -> None:
    with udp_source(sample_rate_hz=8000, sample_width=4, channels=2) as source, udp_sender() as device:
        device.sendto(bytes(4), ("127.0.0.1", source.port))  # one 32-bit sample: half a stereo frame
        device.sendto(tone_pcm(8000, 4, 2, 0.1).tobytes(), ("127.0.0.1", source.port))
        assert source.read() is not None
    assert source.counters.dropped_malformed == 1


@pytest.mark.usefixtures("socket_enabled")
def test_udp_port_in_use() -> None:
    with udp_sender() as taken:
        source = UdpPcmSource(taken.getsockname()[1], host="127.0.0.1", allowed_senders={"127.0.0.1"})
        assert open_error(source).reason == "port_in_use"


@pytest.mark.usefixtures("socket_enabled")
def test_udp_nothing_arriving_is_no_audio() -> None:
    with udp_source(read_timeout_s=0.3) as source, pytest.raises(SourceError) as info:
        source.read()
    assert info.value.reason == "no_audio"


def test_udp_rejects_unsupported_formats() -> None:
    for bad in ({"sample_rate_hz": 11025}, {"sample_width": 3}, {"channels": 6}, {"allowed_senders": set()}):
        kwargs: dict[str, Any] = {"allowed_senders": {"127.0.0.1"}} | bad
        with pytest.raises(ValueError):
            UdpPcmSource(0, **kwargs)


# The runner: reconnects, status transitions, stopping.


class Recorder:
    """Collects a runner's callbacks for the test thread."""

    def __init__(self) -> None:
        self.statuses: queue.Queue[tuple[bool, str | None]] = queue.Queue()
        self.errors: list[SourceError] = []
        self.samples = 0
        self.audio = threading.Event()

    def on_audio(self, chunk: np.ndarray) -> None:
        assert chunk.dtype == np.int16
        self.samples += chunk.size
        self.audio.set()

    def on_status(self, connected: bool, error: SourceError | None) -> None:
        if error is not None:
            self.errors.append(error)
        self.statuses.put((connected, error.reason if error else None))

    def wait_status(self, connected: bool, timeout: float = 20) -> str | None:
        """The reason of the next status with this `connected`, skipping others."""
        while True:
            is_connected, reason = self.statuses.get(timeout=timeout)
            if is_connected == connected:
                return reason


def source_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sound_sentry_source_")]


def test_runner_reconnects_after_the_server_restarts(rtsp_server: ServerFactory) -> None:
    server = rtsp_server()
    recorder = Recorder()
    runner = SourceRunner(
        "camera",
        lambda: RtspSource(server.url(), open_timeout_s=3, read_timeout_s=2),
        on_audio=recorder.on_audio,
        on_status=recorder.on_status,
        backoff=Backoff(initial_s=0.1, max_s=0.5),
    )
    assert runner.name == "sound_sentry_source_camera"
    assert not runner.daemon
    runner.start()
    try:
        assert recorder.wait_status(True) is None
        assert recorder.audio.wait(10)
        server.stop()
        assert recorder.wait_status(False) in ("stream_ended", "timeout")
        assert not runner.connected
        server.start()  # the same port
        recorder.audio.clear()
        assert recorder.wait_status(True) is None
        assert recorder.audio.wait(10)
    finally:
        runner.stop(10)
    assert not runner.is_alive()
    assert source_threads() == []


def test_runner_reports_only_transitions(rtsp_server: ServerFactory) -> None:
    """Failing again and again for the same reason is one status call, not one per attempt."""
    server = rtsp_server()
    server.stop()
    attempts = threading.Semaphore(0)

    def factory() -> AudioSource:
        attempts.release()
        return RtspSource(server.url(), **SHORT)

    recorder = Recorder()
    runner = SourceRunner(
        "down", factory, on_audio=recorder.on_audio, on_status=recorder.on_status, backoff=Backoff(0.05, 0.05)
    )
    runner.start()
    try:
        for _ in range(4):
            assert attempts.acquire(timeout=10)
    finally:
        runner.stop(10)
    assert recorder.statuses.qsize() == 1
    assert recorder.statuses.get() == (False, "cannot_connect")
    assert not runner.is_alive()


def test_listener_classifies_each_connection_as_a_new_stream(rtsp_server: ServerFactory) -> None:
    """Listener: the source thread feeds the pipeline, which starts afresh (time 0) at every reconnect."""
    server = rtsp_server()
    path = Path(__file__).resolve().parents[1] / "fixtures" / "resnetse_random.onnx"
    loaded = load_model(path, "numpy")
    outputs: list[PipelineOutput] = []
    recorder = Recorder()
    listener = Listener(
        "listener",
        lambda: RtspSource(server.url(), **SHORT),
        Pipeline(loaded.backend, loaded.info),
        on_output=outputs.append,
        on_status=recorder.on_status,
        backoff=Backoff(0.1, 0.5),
    )
    listener.start()
    try:
        assert recorder.wait_status(True) is None
        deadline = time.monotonic() + 20
        while sum(len(o.windows) for o in outputs) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        first = [w for o in outputs for w in o.windows]
        assert first[0].start_s == 0.0
        assert first[-1].start_s > 0.0
        server.restart()
        assert recorder.wait_status(False) in ("stream_ended", "timeout")
        assert recorder.wait_status(True) is None
        outputs.clear()
        while not any(o.windows for o in outputs) and time.monotonic() < deadline + 20:
            time.sleep(0.05)
        assert next(w for o in outputs for w in o.windows).start_s == 0.0  # reset: a new stream
    finally:
        listener.stop(10)
    assert not listener.is_alive()


class CountingBackoff(Backoff):
    """A Backoff that counts the delays asked of it."""

    def __init__(self) -> None:
        super().__init__(initial_s=0.05, max_s=0.05)
        self.delays_asked = 0

    def next_delay(self) -> float:
        self.delays_asked += 1
        return super().next_delay()


def test_runner_does_not_hammer_a_camera_that_refuses_the_credentials(rtsp_server: ServerFactory) -> None:
    """After a wrong password the next attempt waits `auth_retry_s`, never the Backoff's short delays
    (cameras lock accounts); the slow retry does come."""
    server = rtsp_server(user="viewer", password="right")
    attempts: list[float] = []
    second_attempt = threading.Event()

    def factory() -> AudioSource:
        attempts.append(time.monotonic())
        if len(attempts) == 2:
            second_attempt.set()
        return RtspSource(server.url("viewer", "wrong"), **SHORT)

    recorder = Recorder()
    backoff = CountingBackoff()
    auth_retry_s = 0.5
    runner = SourceRunner(
        "locked",
        factory,
        on_audio=recorder.on_audio,
        on_status=recorder.on_status,
        backoff=backoff,
        auth_retry_s=auth_retry_s,
    )
    runner.start()
    try:
        assert recorder.wait_status(False) == "invalid_auth"
        assert second_attempt.wait(20)
        # The delay before the second attempt was decided after the first refusal: not by the Backoff.
        assert backoff.delays_asked == 0
    finally:
        runner.stop(10)
    assert attempts[1] - attempts[0] >= auth_retry_s
    assert not runner.is_alive()


@pytest.mark.usefixtures("socket_enabled")
def test_runner_stops_a_blocked_udp_read_and_leaves_no_thread() -> None:
    recorder = Recorder()
    opened = threading.Event()

    def factory() -> AudioSource:
        source = UdpPcmSource(0, host="127.0.0.1", allowed_senders={"127.0.0.1"}, read_timeout_s=60)
        opened.set()
        return source

    runner = SourceRunner("mic", factory, on_audio=recorder.on_audio, on_status=recorder.on_status)
    runner.start()
    assert opened.wait(10)
    assert recorder.wait_status(True) is None  # open, now blocked in read() for up to 60 s
    runner.stop(10)
    assert not runner.is_alive()
    assert source_threads() == []
    assert recorder.statuses.empty()  # no status after stop


def test_runner_stops_during_a_stalled_rtsp_read(rtsp_server: ServerFactory) -> None:
    server = rtsp_server(stall_after_s=0.3)
    recorder = Recorder()
    runner = SourceRunner(
        "stalled",
        lambda: RtspSource(server.url(), open_timeout_s=3, read_timeout_s=1),
        on_audio=recorder.on_audio,
        on_status=recorder.on_status,
    )
    runner.start()
    assert recorder.audio.wait(10)
    runner.stop(10)  # blocked in FFmpeg: ends by the read timeout at the latest
    assert not runner.is_alive()
    assert source_threads() == []


@pytest.mark.usefixtures("socket_enabled")
def test_runner_stops_while_connecting_to_a_server_that_never_answers() -> None:
    """A TCP peer that accepts and stays mute: the open timeout bounds how long stop() waits."""
    with socket.create_server(("127.0.0.1", 0)) as mute:
        recorder = Recorder()
        factory_called = threading.Event()

        def factory() -> AudioSource:
            factory_called.set()
            return RtspSource(
                f"rtsp://127.0.0.1:{mute.getsockname()[1]}/x", open_timeout_s=1, read_timeout_s=1
            )

        runner = SourceRunner("mute", factory, on_audio=recorder.on_audio, on_status=recorder.on_status)
        runner.start()
        assert factory_called.wait(10)
        runner.stop(10)
        assert not runner.is_alive()
    assert source_threads() == []


def test_backoff_grows_to_its_cap_with_jitter_and_resets() -> None:
    backoff = Backoff(initial_s=1, max_s=10, factor=2, jitter=0.25)
    delays = [backoff.next_delay() for _ in range(8)]
    bases = [1, 2, 4, 8, 10, 10, 10, 10]
    for delay, base in zip(delays, bases, strict=True):
        assert 0.75 * base <= delay <= base
    assert len(set(delays)) > 1  # jittered
    backoff.reset()
    assert backoff.next_delay() <= 1
    exact = Backoff(initial_s=0.5, max_s=2, factor=3, jitter=0)
    assert [exact.next_delay() for _ in range(4)] == [0.5, 1.5, 2, 2]


# Credentials.


def test_credentials_never_reach_logs_or_errors(
    rtsp_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    """Auth-failing and connection-failing runs: no log record and no exception text holds the secret."""
    secret = "Hunter2-s3cret"
    caplog.set_level(logging.DEBUG)
    server = rtsp_server(user="viewer", password="right")
    closed = rtsp_server()
    closed.stop()
    urls = {
        "invalid_auth": server.url("viewer", secret),
        "cannot_connect": closed.url("viewer", secret),
        "invalid_url": f"rtsp://127.0.0.1:{server.port}/nope?token={secret}",
    }
    texts: list[str] = []
    for reason, url in urls.items():
        source = RtspSource(url, **SHORT)
        texts.append(source.description)
        error = open_error(source)
        assert error.reason == reason
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        assert error.__cause__ is None
        assert error.__context__ is None  # PyAV's exception names the URL: not even kept as context

        recorder = Recorder()
        runner = SourceRunner(
            "secret",
            lambda url=url: RtspSource(url, **SHORT),
            on_audio=recorder.on_audio,
            on_status=recorder.on_status,
            backoff=Backoff(0.05, 0.05),
        )
        runner.start()
        try:
            assert recorder.wait_status(False) == reason
        finally:
            runner.stop(10)
        texts += [str(e) for e in recorder.errors]
    texts += [record.getMessage() for record in caplog.records]
    texts += [caplog.text]
    assert any("****" in text for text in texts)  # the URLs were there, redacted
    leaks = [text for text in texts if secret in text]
    assert leaks == []
