"""Command line: classify recordings (`scan`) or listen to a live stream (`listen`).

python -m custom_components.sound_sentry.engine scan clip.flac [--jsonl]
python -m custom_components.sound_sentry.engine listen rtsp://camera/stream
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Sequence
import json
import logging
from pathlib import Path
import signal
import sys
import threading
from typing import TextIO

import numpy as np
import numpy.typing as npt

from .backends import ModelLoadError, load_backend
from .detector import DetectorSettings
from .model_info import ModelInfo
from .pipeline import DEFAULT_HOP_S, Pipeline, PipelineOutput, WindowResult
from .redact import redact_url
from .sources import AudioSource, FileSource, RtspSource, SourceError, SourceRunner, UdpPcmSource

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "sound_sentry_resnetse.onnx"
PAD_DBFS = -70.0
"""Level of the noise a clip shorter than one window is centred in."""


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


def pad_to_window(samples: npt.NDArray[np.float32], window: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Centre a short clip in -70 dBFS white noise, one window long (deterministic)."""
    if samples.size >= window:
        return samples
    noise = np.random.default_rng(seed).standard_normal(window).astype(np.float32)
    noise *= np.float32(10 ** (PAD_DBFS / 20))  # RMS of unit-variance noise is 1 = 0 dBFS
    start = (window - samples.size) // 2
    noise[start : start + samples.size] = samples
    return noise


def scan_samples(pipeline: Pipeline, samples: npt.NDArray[np.float32]) -> PipelineOutput:
    """Classify a whole recording: windows every hop, plus one ending at the clip's end.

    The extra window is added when the hops left the tail out, so that a sound in the last fraction
    of a second is not missed.
    """
    window = pipeline.info.window_samples
    samples = pad_to_window(samples, window)
    pipeline.reset()
    output = pipeline.process(samples)
    windows, events = list(output.windows), list(output.events)
    last_end = round(windows[-1].end_s * pipeline.info.sample_rate_hz) if windows else 0
    if last_end < samples.size:
        tail = pipeline.process_window(samples[-window:], start_sample=samples.size - window)
        windows.append(tail.windows[0])
        events.extend(tail.events)
    return PipelineOutput(windows, events)


def _read_all(source: AudioSource) -> npt.NDArray[np.float32]:
    source.open()
    try:
        chunks = [np.asarray(chunk, dtype=np.float32) / 32768.0 for chunk in source]
    finally:
        source.close()
    return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.float32)


def _thresholds(pairs: Iterable[str], info: ModelInfo) -> dict[str, float]:
    thresholds = dict(info.thresholds)
    for pair in pairs:
        label, _, value = pair.partition("=")
        if label not in thresholds:
            raise CliError(f"--threshold {pair}: class must be one of {', '.join(thresholds)}")
        try:
            thresholds[label] = float(value)
        except ValueError:
            raise CliError(f"--threshold {pair}: probability must be a number") from None
        if not 0 < thresholds[label] <= 1:
            raise CliError(f"--threshold {pair}: probability must be in (0, 1]")
    return thresholds


def _build_pipeline(args: argparse.Namespace) -> Pipeline:
    info = ModelInfo.load(Path(args.model))
    backend = load_backend(Path(args.model), args.backend)
    settings = DetectorSettings(
        thresholds=_thresholds(args.threshold, info), k=info.k, n=info.n, hold_s=info.hold_s
    )
    if args.hop_s <= 0:
        raise CliError("--hop-s must be positive")
    return Pipeline(backend, info, hop_s=args.hop_s, detector=settings)


def _window_json(name: str, window: WindowResult) -> str:
    return json.dumps(
        {
            "file": name,
            "start_s": round(window.start_s, 3),
            "end_s": round(window.end_s, 3),
            "probs": {label: round(p, 5) for label, p in window.probabilities.items()},
            "dbfs": round(window.dbfs, 2),
        }
    )


def _print_table(name: str, output: PipelineOutput, out: TextIO) -> None:
    print(f"{name}", file=out)
    starts = {}
    rows: list[tuple[float, float | None, str, float]] = []
    for event in output.events:
        if event.active:
            starts[event.label] = event.time_s
        else:
            rows.append((starts.pop(event.label), event.time_s, event.label, event.peak_probability))
    end_s = output.windows[-1].end_s if output.windows else 0.0
    peaks = dict.fromkeys(starts, 0.0)
    for window in output.windows:
        for label in peaks:
            peaks[label] = max(peaks[label], window.probabilities[label])
    rows.extend((start, None, label, peaks[label]) for label, start in starts.items())
    if not rows:
        print("  no detections", file=out)
    for start, end, label, peak in sorted(rows, key=lambda row: row[0]):
        until = f"{end:7.2f}" if end is not None else f"{end_s:7.2f}+"
        print(f"  {start:7.2f} s - {until} s  {label:<11} peak {peak:.2f}", file=out)


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    """Classify each input; a bad one is reported and the others still run."""
    pipeline = _build_pipeline(args)
    status = 0
    for name in args.inputs:
        try:
            samples = _read_all(FileSource(name))
        except SourceError as err:
            print(f"error: {redact_url(name)}: {err}", file=sys.stderr)
            status = 1
            continue
        output = scan_samples(pipeline, samples)
        if args.jsonl:
            for window in output.windows:
                print(_window_json(name, window), file=out)
        else:
            _print_table(redact_url(name), output, out)
    return status


def _live_source(url: str, args: argparse.Namespace) -> AudioSource:
    if url.startswith("udp://"):
        host, _, port = url.removeprefix("udp://").rpartition(":")
        return UdpPcmSource(
            int(port),
            allowed_senders={host or "127.0.0.1"},
            sample_rate_hz=args.udp_rate,
            sample_width=args.udp_width,
            channels=args.udp_channels,
        )
    if url.startswith(("rtsp://", "rtsps://")):
        return RtspSource(url, transport=args.transport)
    return FileSource(url)


def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    """Run live until Ctrl-C, printing each event as it starts and ends."""
    pipeline = _build_pipeline(args)
    stop = threading.Event()
    lock = threading.Lock()

    def on_audio(chunk: npt.NDArray[np.int16]) -> None:
        with lock:
            for event in pipeline.process(chunk).events:
                state = "started" if event.active else "ended"
                print(
                    f"{event.time_s:9.2f} s  {event.label:<11} {state:<8} peak {event.peak_probability:.2f}",
                    file=out,
                    flush=True,
                )

    def on_status(connected: bool, error: SourceError | None) -> None:
        with lock:
            pipeline.reset()
        if connected:
            print(f"listening to {redact_url(args.url)}", file=sys.stderr, flush=True)
        else:
            print(f"disconnected: {error}; retrying", file=sys.stderr, flush=True)

    runner = SourceRunner("cli", lambda: _live_source(args.url, args), on_audio=on_audio, on_status=on_status)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    runner.start()
    try:
        while not stop.wait(0.2) and runner.is_alive():
            pass
    finally:
        runner.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    parser = argparse.ArgumentParser(
        prog="python -m custom_components.sound_sentry.engine", description=__doc__.split("\n")[0]
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--model", default=str(DEFAULT_MODEL), help="the .onnx model (its .json sidecar beside it)"
    )
    common.add_argument("--backend", choices=["auto", "numpy", "onnxruntime"], default="auto")
    common.add_argument("--hop-s", type=float, default=DEFAULT_HOP_S, help="seconds between windows")
    common.add_argument(
        "--threshold", action="append", default=[], metavar="CLASS=P", help="override a class threshold"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command", required=True)
    scan = sub.add_parser("scan", parents=[common], help="classify recordings or URLs")
    scan.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    scan.add_argument("--jsonl", action="store_true", help="one JSON object per window")
    listen = sub.add_parser("listen", parents=[common], help="detect live until Ctrl-C")
    listen.add_argument("url", help="rtsp://..., udp://SENDER:PORT (raw PCM) or anything PyAV opens")
    listen.add_argument("--transport", choices=["tcp", "udp"], default="tcp", help="RTSP transport")
    listen.add_argument("--udp-rate", type=int, default=16000, help="UDP PCM sample rate (Hz)")
    listen.add_argument("--udp-width", type=int, choices=[2, 4], default=2, help="UDP PCM bytes per sample")
    listen.add_argument("--udp-channels", type=int, choices=[1, 2], default=1)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO = sys.stdout) -> int:
    """Entry point; returns the exit status. Errors are one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.command == "scan":
            return cmd_scan(args, out)
        return cmd_listen(args, out)
    except (CliError, ModelLoadError, SourceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
