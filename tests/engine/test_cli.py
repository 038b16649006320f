"""The engine's command line, run as a real subprocess on real recordings, a real RTSP server and UDP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
import json
import math
import os
from pathlib import Path
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any
import wave

import av
import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.cli import PAD_DBFS, pad_to_window
from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise
from custom_components.sound_sentry.engine.model_info import ModelInfo
from tests.audio import (
    T3_PIEZO,
    UdpMicrophone,
    alarm_signal,
    background_bed,
    clip_paths,
    free_udp_port,
    mix_at_snr,
    read_clip,
    scene,
    write_wav,
)
from tests.peers import RtspServer

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "fixtures" / "resnetse_random.onnx"
WINDOW = 15_480
RATE = 8000
LABELS = ["background", "babycry", "glassbreak", "gunshot"]
# Thresholds every window of the random model passes, for output where a test needs it.
ALL_PASS = ["--threshold", "babycry=0.001", "--threshold", "glassbreak=0.001", "--threshold", "gunshot=0.001"]
NONE_PASS = ["--threshold", "babycry=1", "--threshold", "glassbreak=1", "--threshold", "gunshot=1"]
TIMEOUT_S = 60


def cli(*args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "custom_components.sound_sentry.engine", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def scan(*args: str) -> subprocess.CompletedProcess[str]:
    return cli("scan", "--model", str(MODEL), *args)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def flac(data_dir: Path) -> Path:
    """A real baby-cry recording, longer than a few windows."""
    return next(p for p in clip_paths(data_dir, "babycry") if len(read_clip(p)) > 3 * WINDOW)


def lines_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    assert result.stdout.endswith("\n")
    return [json.loads(line) for line in result.stdout.splitlines()]


def windows_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """The --jsonl lines with probabilities; the others are events."""
    return [line for line in lines_of(result) if "probs" in line]


def events_of(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    return [line for line in lines_of(result) if "probs" not in line]


def one_shot(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    backend = load_backend(MODEL, "numpy")
    return backend.predict(normalise(FbankExtractor().compute(samples))[None])[0]


def level(samples: npt.NDArray[np.float32]) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2)))


# scan --jsonl


def test_scan_jsonl_has_every_window_with_its_times_probabilities_and_level(flac: Path) -> None:
    result = scan(str(flac), "--jsonl", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    windows = windows_of(result)
    samples = read_clip(flac)
    hops = (samples.size - WINDOW) // 2000 + 1
    tail = (samples.size - WINDOW) % 2000 != 0
    assert len(windows) == hops + tail

    for i, window in enumerate(windows):
        assert list(window) == ["file", "start_s", "end_s", "probs", "dbfs"]
        assert window["file"] == str(flac)
        start = i * 2000 if i < hops else samples.size - WINDOW  # the tail window ends at the last sample
        assert window["start_s"] == pytest.approx(start / RATE, abs=1e-6)
        assert window["end_s"] == pytest.approx((start + WINDOW) / RATE, abs=1e-6)
        assert list(window["probs"]) == LABELS
        expected = one_shot(samples[start : start + WINDOW])
        np.testing.assert_allclose(list(window["probs"].values()), expected, atol=2e-5)
        assert window["dbfs"] == pytest.approx(level(samples[start : start + WINDOW]), abs=0.01)
    assert windows[-1]["end_s"] == pytest.approx(samples.size / RATE, abs=1e-6)


def between(values: list[float], above: float, gap: float = 4e-6) -> float:
    """A threshold that a share `above` of `values` passes, in a gap wider than the JSON lines' rounding."""
    ranked = sorted(values)
    middle = round(len(ranked) * (1 - above))
    for i in sorted(range(1, len(ranked)), key=lambda i: abs(i - middle)):
        if ranked[i] - ranked[i - 1] > gap:
            return round((ranked[i - 1] + ranked[i]) / 2, 6)
    pytest.fail(f"no gap of {gap} among {ranked}")


def test_scan_jsonl_prints_each_start_and_end_of_a_sound_after_the_window_that_decided_it(flac: Path) -> None:
    """Beside its windows, --jsonl prints each transition of the detector: the detector run over the
    printed windows with the model's k, n and hold gives exactly these lines, each right after its window."""
    windows = windows_of(scan(str(flac), "--jsonl", *NONE_PASS))
    thresholds = {label: between([w["probs"][label] for w in windows], 0.5) for label in LABELS[1:]}
    result = scan(str(flac), "--jsonl", *(f"--threshold={label}={p}" for label, p in thresholds.items()))
    assert result.returncode == 0, result.stderr
    assert windows_of(result) == windows  # the window lines as they were

    info = ModelInfo.load(MODEL)
    detector = EventDetector(
        LABELS, DetectorSettings(thresholds=thresholds, k=info.k, n=info.n, hold_s=info.hold_s)
    )
    expected = [
        {
            "file": str(flac),
            "event": e.label,
            "state": "on" if e.active else "off",
            "time_s": e.time_s,
            "confidence": e.peak_probability,
        }
        for w in windows
        for e in detector.process(w["end_s"], [w["probs"][label] for label in LABELS])
    ]
    events = events_of(result)
    assert [list(e) for e in events] == [["file", "event", "state", "time_s", "confidence"]] * len(events)
    assert events == [pytest.approx(e, abs=1e-6) for e in expected]
    assert {e["state"] for e in events} == {"on", "off"}  # starts and ends both happen in this recording
    lines = lines_of(result)
    for i, line in enumerate(lines):
        if "event" in line:  # after its window, or after another event of that window
            assert lines[i - 1]["end_s" if "probs" in lines[i - 1] else "time_s"] == line["time_s"]


def test_scan_jsonl_prints_no_end_of_a_sound_still_on_when_the_recording_ends(flac: Path) -> None:
    """Every window passes: each sound starts at the second window and is on at the end; nothing ended it."""
    result = scan(str(flac), "--jsonl", *ALL_PASS)
    assert result.returncode == 0, result.stderr
    second = windows_of(result)[1]
    assert [(e["event"], e["state"], e["time_s"]) for e in events_of(result)] == [
        (label, "on", second["end_s"]) for label in LABELS[1:]
    ]


def test_scan_jsonl_prints_a_smoke_alarm_as_on_and_off(data_dir: Path, tmp_path: Path) -> None:
    """A real room with a smoke alarm's three cycles, then two cycles' time (8 s) without: its start and
    end, as the model's sounds are printed, with the alarm's tone instead of a probability."""
    samples = mix_at_snr(
        alarm_signal(T3_PIEZO, 3), background_bed(data_dir, 20.0, gain=1.0), 10, lead_s=2.0, tail_s=10.0
    )
    result = scan(str(write_wav(tmp_path / "t3.wav", samples)), "--jsonl", *NONE_PASS)
    assert result.returncode == 0, result.stderr
    events = events_of(result)
    assert [(e["event"], e["state"]) for e in events] == [("smoke_alarm", "on"), ("smoke_alarm", "off")]
    assert [list(e) for e in events] == [["file", "event", "state", "time_s", "frequency_hz", "cycles"]] * 2
    on, off = events
    assert 2.0 + T3_PIEZO.cycle_s < on["time_s"] < off["time_s"] < samples.size / RATE
    assert (on["cycles"], off["cycles"] >= 3) == (2, True)
    assert on["frequency_hz"] == pytest.approx(T3_PIEZO.frequency_hz, rel=0.02)


def test_no_extra_window_when_the_hops_end_on_the_last_sample(flac: Path, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "exact.wav", read_clip(flac)[: WINDOW + 3 * 2000])
    windows = windows_of(scan(str(path), "--jsonl"))
    assert [w["start_s"] for w in windows] == [0.0, 0.25, 0.5, 0.75]


def test_one_window_exactly(flac: Path, tmp_path: Path) -> None:
    path = write_wav(tmp_path / "window.wav", read_clip(flac)[:WINDOW])
    (window,) = windows_of(scan(str(path), "--jsonl", "--backend", "numpy"))
    assert (window["start_s"], window["end_s"]) == (0.0, 1.935)
    np.testing.assert_allclose(list(window["probs"].values()), one_shot(read_clip(path)), atol=2e-5)


def test_scan_hop_option(flac: Path) -> None:
    windows = windows_of(scan(str(flac), "--jsonl", "--hop-s", "0.5"))
    starts = [w["start_s"] for w in windows]
    assert starts[:4] == [0.0, 0.5, 1.0, 1.5]


def test_short_clip_is_centred_in_quiet_noise_to_one_window(data_dir: Path, tmp_path: Path) -> None:
    gunshot = read_clip(clip_paths(data_dir, "gunshot")[0])
    loudest = int(np.argmax(np.abs(gunshot)))
    short = gunshot[max(0, loudest - 2000) : max(0, loudest - 2000) + 4000]  # half a second
    path = write_wav(tmp_path / "short.wav", short)
    clip = read_clip(path)  # as the CLI decodes it

    result = scan(str(path), "--jsonl", "--backend", "numpy")
    assert result.returncode == 0, result.stderr
    (window,) = windows_of(result)
    assert (window["start_s"], window["end_s"]) == (0.0, 1.935)
    noise_energy = (WINDOW - clip.size) * 10 ** (PAD_DBFS / 10)
    expected_dbfs = 10 * np.log10((np.sum(clip.astype(np.float64) ** 2) + noise_energy) / WINDOW)
    assert window["dbfs"] == pytest.approx(expected_dbfs, abs=0.02)
    padded = pad_to_window(clip, WINDOW)
    np.testing.assert_allclose(list(window["probs"].values()), one_shot(padded), atol=2e-5)


def test_pad_to_window_centres_the_clip_in_noise_at_minus_70_dbfs() -> None:
    clip = np.linspace(-0.5, 0.5, 3001, dtype=np.float32)
    padded = pad_to_window(clip, WINDOW)
    start = (WINDOW - clip.size) // 2
    assert padded.size == WINDOW
    np.testing.assert_array_equal(padded[start : start + clip.size], clip)
    noise = np.concatenate([padded[:start], padded[start + clip.size :]])
    assert level(noise) == pytest.approx(-70.0, abs=0.2)
    np.testing.assert_array_equal(pad_to_window(clip, WINDOW), padded)  # deterministic
    long = np.ones(WINDOW + 5, np.float32)
    assert pad_to_window(long, WINDOW) is long


# scan: table


def test_scan_table_lists_each_detection(flac: Path) -> None:
    result = scan(str(flac), *ALL_PASS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    duration = read_clip(flac).size / RATE
    assert lines[0].startswith(f"{flac}: {duration:.2f} s, ")
    assert lines[1].split() == ["detected", "ended", "class", "peak"]
    # Every window passes: with k=2 each class starts at the second window's end and is still running.
    rows = [line.split() for line in lines[2:]]
    assert [row[:4] for row in rows] == [["2.19", "s", "(running)", label] for label in LABELS[1:]]
    assert all(0 < float(row[4]) <= 1 for row in rows)


@pytest.mark.parametrize(
    ("model", "name", "window_s"),
    [("accurate", "sound_sentry_mobilenet", 2.022), ("compact", "sound_sentry_resnetse", 1.935)],
)
def test_scan_runs_each_shipped_model_by_name(flac: Path, model: str, name: str, window_s: float) -> None:
    """`scan --model accurate|compact` runs that shipped model, with its own window, and names it."""
    result = cli("scan", str(flac), "--model", model, "--jsonl", "--no-alarms")
    assert result.returncode == 0, result.stderr
    windows = windows_of(result)
    assert len(windows) > 3
    assert windows[0]["end_s"] - windows[0]["start_s"] == pytest.approx(window_s)
    assert sum(windows[0]["probs"].values()) == pytest.approx(1.0, abs=1e-4)
    table = cli("scan", str(flac), "--model", model)
    assert table.returncode == 0, table.stderr
    assert f"({name} " in table.stdout.splitlines()[0]


def test_scan_table_says_when_nothing_was_detected(flac: Path) -> None:
    result = scan(str(flac), *NONE_PASS)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith("  no detections (highest probabilities: babycry ")


def test_no_detections_shows_the_digits_that_put_each_peak_below_its_threshold(flac: Path) -> None:
    """A peak just under a threshold is not rounded up to it or past it (0.9954 shown as 1.00 under 0.998)."""
    peak = max(w["probs"]["glassbreak"] for w in windows_of(scan(str(flac), "--jsonl", *NONE_PASS)))
    threshold = (math.floor(peak * 10_000) + 1) / 10_000  # 4 digits: rounding the peak to 4 would reach it
    result = scan(str(flac), *NONE_PASS, "--threshold", f"glassbreak={threshold}")
    assert result.returncode == 0, result.stderr
    shown = re.search(r"glassbreak (\d\.\d+) < ([\d.]+)", result.stdout)
    assert shown is not None, result.stdout
    assert float(shown[2]) == threshold
    assert float(shown[1]) < threshold
    digits = len(shown[1]) - 2
    assert digits >= 5
    assert float(shown[1]) == pytest.approx(peak, abs=0.5 * 10**-digits + 1e-6)
    assert re.search(r"babycry \d\.\d\d < 1,", result.stdout), result.stdout  # 2 digits show it under 1


def test_no_detections_says_a_peak_over_its_threshold_passed_in_too_few_windows(flac: Path) -> None:
    """Only the highest window passes: the peak is over the threshold, and k of n windows were not."""
    probs = sorted(
        (w["probs"]["gunshot"] for w in windows_of(scan(str(flac), "--jsonl", *NONE_PASS))), reverse=True
    )
    threshold = between(probs[:2], 0.5)
    result = scan(str(flac), *NONE_PASS, "--threshold", f"gunshot={threshold}")
    assert result.returncode == 0, result.stderr
    info = ModelInfo.load(MODEL)
    shown = re.search(
        rf"gunshot (\d\.\d+) >= ([\d.]+) in fewer than {info.k} of {info.n} windows", result.stdout
    )
    assert shown is not None, result.stdout
    assert float(shown[2]) == threshold
    assert float(shown[1]) >= threshold
    assert float(shown[1]) == pytest.approx(probs[0], abs=2e-6)


def test_several_inputs_one_bad(flac: Path, data_dir: Path, tmp_path: Path) -> None:
    other = clip_paths(data_dir, "glassbreak")[0]
    missing = tmp_path / "missing.flac"
    result = scan(str(flac), str(missing), str(other), "--jsonl")
    assert result.returncode == 1
    assert_one_line_error(result, str(missing), "no such file")
    files = [w["file"] for w in windows_of(result)]
    assert set(files) == {str(flac), str(other)}
    assert files == sorted(files, key=[str(flac), str(other)].index)  # inputs in order, not interleaved


def test_several_inputs_one_bad_table(flac: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(np.random.default_rng(0).bytes(20_000))
    result = scan(str(garbage), str(flac), *ALL_PASS)
    assert result.returncode == 1
    assert_one_line_error(result, str(garbage))
    assert result.stdout.startswith(f"{flac}: ")


# scan: bad input


def test_missing_file(tmp_path: Path) -> None:
    assert_one_line_error(scan(str(tmp_path / "nope.wav")), "nope.wav", "no such file")


def test_unreadable_format(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.flac"
    garbage.write_bytes(np.random.default_rng(1).bytes(20_000))
    assert_one_line_error(scan(str(garbage)), "garbage.flac")


def test_empty_file(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.touch()
    assert_one_line_error(scan(str(empty)), "empty.wav")


def test_file_without_audio_track(tmp_path: Path) -> None:
    video = tmp_path / "video.mkv"
    with av.open(str(video), "w") as container:
        stream = container.add_stream("ffv1", rate=10)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        for _ in range(3):
            frame = av.VideoFrame.from_ndarray(np.zeros((32, 32, 3), np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    assert_one_line_error(scan(str(video)), "video.mkv", "no audio track")


def test_unreachable_url() -> None:
    # Nothing listens on port 1 of loopback: the connection is refused at once.
    assert_one_line_error(scan("http://user:secret@127.0.0.1:1/live.mp3"), "cannot connect", "****")


def test_wav_without_samples(tmp_path: Path) -> None:
    path = tmp_path / "silent0.wav"
    with wave.open(str(path), "wb") as file:  # a valid header and no frames
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(RATE)
    assert_one_line_error(scan(str(path)), "silent0.wav", "no audio")


@pytest.mark.parametrize(
    ("threshold", "message"),
    [
        ("babycry=2", "(0, 1]"),
        ("babycry=0", "(0, 1]"),
        ("babycry=nan", "(0, 1]"),
        ("babycry=often", "not a number"),
        ("dog=0.5", "class must be one of babycry, glassbreak, gunshot"),
        ("babycry", "expected CLASS=P"),
    ],
)
def test_bad_threshold(flac: Path, threshold: str, message: str) -> None:
    result = scan(str(flac), "--threshold", threshold)
    assert_one_line_error(result, message)
    assert result.returncode == 2
    assert result.stdout == ""


def test_bad_hop(flac: Path) -> None:
    assert_one_line_error(scan(str(flac), "--hop-s", "0"), "--hop-s")
    assert_one_line_error(scan(str(flac), "--hop-s", "soon"), "--hop-s")


def test_missing_model(flac: Path, tmp_path: Path) -> None:
    result = cli("scan", str(flac), "--model", str(tmp_path / "model.onnx"))
    assert_one_line_error(result, "model.onnx", "not found")
    assert result.returncode == 2


def test_model_without_sidecar(flac: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    model.write_bytes(MODEL.read_bytes())
    assert_one_line_error(cli("scan", str(flac), "--model", str(model)), "model.json")


def test_altered_model_is_refused_as_home_assistant_refuses_it(flac: Path, tmp_path: Path) -> None:
    """The CLI loads the model the one way Home Assistant does: its bytes must match the sidecar's sha256."""
    model = tmp_path / "model.onnx"
    model.write_bytes(MODEL.read_bytes()[:-1] + b"\0")
    model.with_suffix(".json").write_bytes(MODEL.with_suffix(".json").read_bytes())
    assert_one_line_error(cli("scan", str(flac), "--model", str(model)), "does not match its sidecar")


def test_usage_errors_are_one_line() -> None:
    assert_one_line_error(cli(), "required")
    assert_one_line_error(cli("scan"), "PATH_OR_URL")
    assert_one_line_error(cli("scan", "x.wav", "--backend", "tpu"), "tpu")


def test_help_documents_the_padding() -> None:
    result = cli("scan", "--help")
    assert result.returncode == 0
    assert "-70 dBFS" in " ".join(result.stdout.split())


# listen


class LiveCli:
    """`listen` in a subprocess, its output read line by line in two threads."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "custom_components.sound_sentry.engine", "listen", *args],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.stdout: queue.Queue[str] = queue.Queue()
        self.stderr: queue.Queue[str] = queue.Queue()
        self.lines: dict[str, list[str]] = {"stdout": [], "stderr": []}
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.stdout), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(pipe: IO[str], lines: queue.Queue[str]) -> None:
        for line in pipe:
            lines.put(line.rstrip("\n"))

    def wait_for(self, stream: str, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        """The first new line of `stream` that satisfies `predicate`."""
        lines = self.stdout if stream == "stdout" else self.stderr
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = lines.get(timeout=remaining)
            except queue.Empty:
                break
            self.lines[stream].append(line)
            if predicate(line):
                return line
        pytest.fail(f"no such line on {stream} within {timeout} s; got {self.lines}")

    def interrupt(self) -> int:
        """Ctrl-C; the exit status."""
        self.proc.send_signal(signal.SIGINT)
        return self.proc.wait(15)

    def finish(self) -> None:
        """Kill if still running, join the readers, keep the rest of the output."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for reader in self._readers:
            reader.join(5)
        for stream, lines in (("stdout", self.stdout), ("stderr", self.stderr)):
            while not lines.empty():
                self.lines[stream].append(lines.get())


@pytest.fixture
def live() -> Iterator[Callable[..., LiveCli]]:
    started: list[LiveCli] = []

    def start(*args: str) -> LiveCli:
        process = LiveCli(*args, "--model", str(MODEL))
        started.append(process)
        return process

    yield start
    for process in started:
        process.finish()


def event_line(line: str) -> bool:
    return " started " in f"{line} " or " ended " in f"{line} "


def assert_detections_in_order(lines: list[str]) -> None:
    times = [float(line.split()[1]) for line in lines if event_line(line)]
    assert times
    assert times == sorted(times)


@pytest.mark.parametrize("codec", ["pcmu", "aac"])
def test_listen_rtsp_prints_detections_until_ctrl_c(
    live: Callable[..., LiveCli], rtsp_server: Callable[..., RtspServer], data_dir: Path, codec: str
) -> None:
    server = rtsp_server(codec=codec, source="file", file=clip_paths(data_dir, "babycry")[0])
    process = live(server.url(), *ALL_PASS)
    process.wait_for("stderr", lambda line: line.startswith(f"listening to {server.url()}"))
    first = process.wait_for("stdout", event_line).split()
    assert first[3] in LABELS[1:]
    assert first[4] == "started"
    assert process.interrupt() == 0
    process.finish()
    assert "Traceback" not in "\n".join(process.lines["stderr"])
    assert process.lines["stderr"][-1] == "stopped"
    assert_detections_in_order(process.lines["stdout"])


def test_listen_reconnects_after_the_camera_restarts(
    live: Callable[..., LiveCli], rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(codec="pcma")
    process = live(server.url())
    process.wait_for("stderr", lambda line: line.startswith("listening to"))
    server.restart()
    process.wait_for(
        "stderr", lambda line: line.startswith("disconnected: ") and line.endswith("; reconnecting")
    )
    process.wait_for("stderr", lambda line: line.startswith("listening to"))
    assert process.interrupt() == 0
    process.finish()
    assert "Traceback" not in "\n".join(process.lines["stderr"])


def test_listen_udp_microphone(live: Callable[..., LiveCli], data_dir: Path, socket_enabled: None) -> None:
    port = free_udp_port()
    process = live(f"udp://127.0.0.1:{port}", "--udp-rate", "16000", *ALL_PASS)
    process.wait_for("stderr", lambda line: line.startswith("listening to udp://127.0.0.1:"))
    microphone = UdpMicrophone(port, scene(data_dir, "glassbreak", lead_s=1.0, tail_s=1.0), rate_hz=16000)
    microphone.start()
    try:
        line = process.wait_for("stdout", event_line)
    finally:
        microphone.stop()
    fields = line.split()
    assert fields[3] in LABELS[1:]
    assert fields[4] == "started"
    assert float(fields[1]) >= 1.935  # a whole window had to arrive first
    assert process.interrupt() == 0
    process.finish()
    assert "Traceback" not in "\n".join(process.lines["stderr"])
    assert microphone.sent > 0


def test_listen_unreachable_rtsp_is_one_line() -> None:
    result = cli("listen", "rtsp://admin:hunter2@127.0.0.1:1/stream", "--model", str(MODEL))
    assert_one_line_error(result, "cannot connect", "****")
    assert "hunter2" not in result.stderr


def test_listen_stream_without_audio(rtsp_server: Callable[..., RtspServer]) -> None:
    server = rtsp_server(source="video")
    assert_one_line_error(cli("listen", server.url(), "--model", str(MODEL)), "no audio track")


@pytest.mark.parametrize(
    ("url", "message"),
    [("udp://127.0.0.1", "udp://SENDER:PORT"), ("udp://camera.local:5000", "camera.local")],
)
def test_listen_bad_udp_url(url: str, message: str) -> None:
    assert_one_line_error(cli("listen", url, "--model", str(MODEL)), message)


def test_listen_to_a_file_ends_with_it(flac: Path) -> None:
    result = cli("listen", str(flac), "--model", str(MODEL), *ALL_PASS)
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines()[-1] == f"end of {flac}"
    assert_detections_in_order(result.stdout.splitlines())
