"""Command line: classify recordings (`scan`) or listen to a live stream (`listen`).

    python -m custom_components.sound_sentry.engine scan clip.flac [more.wav ...] [--jsonl]
    python -m custom_components.sound_sentry.engine listen rtsp://camera/stream

`scan` reads each input to its end and classifies a window (2 s) every --hop-s seconds, plus one
window ending at the input's last sample so that a sound in its final fraction of a second is not
missed. An input shorter than one window is centred in white noise at -70 dBFS to one full window (the
model only takes whole windows); that window's times are those of the padded window, 0 to 1.935 s.
By default it prints a table of the detections (start and end of each debounced event, as the stream
time at which the detector decided) per input, or when there is none each class's highest probability
beside its threshold ("glassbreak 0.9954 < 0.998"). With --jsonl it prints one JSON object per line
instead, for each window:
{"file": ..., "start_s": ..., "end_s": ..., "probs": {"background": ..., ...}, "dbfs": ...},
and for each event's start and end (the lines without "probs"; a sound's comes right after the window
that decided it): {"file": ..., "event": "babycry", "state": "on" or "off", "time_s": ...,
"confidence": ...} (the event's peak probability so far), or for a smoke or CO alarm
{"file": ..., "event": "smoke_alarm" or "co_alarm", "state": ..., "time_s": ..., "frequency_hz": ...,
"cycles": ...}. An event still on when the input ends gets no "off" line (the table shows it as
"(running)"): nothing ended it.

Both commands also listen for smoke alarms (temporal-three pattern) and CO alarms (temporal-four) by
their tone cadence, without the model (--no-alarms: not).

`listen` runs live until Ctrl-C (SIGINT) or SIGTERM and prints each event as it starts and ends. It
takes rtsp:// and rtsps:// URLs, udp://SENDER:PORT for raw PCM datagrams from an ESPHome microphone
at SENDER (see --udp-rate, --udp-width, --udp-channels), or anything else PyAV opens. It exits with
an error when the first connection fails; once connected, it reconnects after failures.

Any problem with an input, the model or an option is one line on stderr and a non-zero exit status
(1: an input failed, the others were still scanned; 2: bad options or model; 130: interrupted).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
import json
import logging
import math
import os
from pathlib import Path
import signal
import sys
import threading
import time
from typing import NoReturn, TextIO

import numpy as np
import numpy.typing as npt

from .alarm import AlarmSettings
from .backends import ModelLoadError
from .detection_settings import DetectionOverrides, resolve_detector_settings
from .detector import DetectorSettings
from .events import AlarmEvent, DetectionEvent, SoundEvent, event_data
from .listener import Listener
from .model import DEFAULT_MODEL, SHIPPED_MODELS, load_model, model_path
from .model_info import ModelInfo
from .pipeline import Pipeline, PipelineOutput, WindowResult, to_float
from .redact import redact_url
from .sources import AudioSource, FileSource, PcmFormat, SourceError, source_for_url

PAD_DBFS = -70.0
"""Level of the white noise a clip shorter than one window is centred in."""
EXIT_INPUT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A problem the user can fix; printed as one line, exit status 2."""


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (its default adds the usage text)."""

    def error(self, message: str) -> NoReturn:
        """Print one line and exit with status 2."""
        self.exit(EXIT_USAGE, f"error: {message} (see {self.prog} --help)\n")


def pad_to_window(samples: npt.NDArray[np.float32], window: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Centre a clip shorter than `window` in -70 dBFS white noise, one window long (deterministic)."""
    if samples.size >= window:
        return samples
    noise = np.random.default_rng(seed).standard_normal(window).astype(np.float32)
    noise *= np.float32(10 ** (PAD_DBFS / 20))  # unit-variance noise has an RMS of 1, i.e. 0 dBFS
    start = (window - samples.size) // 2
    noise[start : start + samples.size] = samples
    return noise


def scan_chunks(pipeline: Pipeline, chunks: Iterable[npt.ArrayLike]) -> Iterator[PipelineOutput]:
    """Classify a whole recording given in chunks, yielding each output with a window or an event.

    An alarm's start or end may come in any chunk, not only in those that complete a window. Windows come every hop, plus one ending at the recording's last sample when the hops left its tail
    out; a recording shorter than one window is padded with `pad_to_window`. At the end, the alarm
    detector analyses what it still held back (`Pipeline.finish`). Raises ValueError for a recording
    without a single sample. Resets `pipeline` first.
    """
    window = pipeline.info.window_samples
    pipeline.reset()
    total = 0
    tail = np.zeros(0, dtype=np.float32)  # the last `window` samples
    last_end = 0  # sample at which the last window ended
    for pcm in chunks:
        chunk = to_float(pcm)
        total += chunk.size
        tail = np.concatenate([tail, chunk])[-window:]
        output = pipeline.process(chunk)
        if output.windows:
            last_end = round(output.windows[-1].end_s * pipeline.info.sample_rate_hz)
        if output.windows or output.events:
            yield output
    if total == 0:
        raise ValueError("no audio samples")
    if (finished := pipeline.finish()).events:
        yield finished
    if total < window:  # no window yet: `tail` holds the whole recording
        pipeline.reset()
        yield pipeline.process(pad_to_window(tail, window))
    elif last_end < total:
        yield pipeline.process_window(tail, start_sample=total - window)


def _thresholds(pairs: Iterable[str], info: ModelInfo) -> dict[str, float]:
    """The --threshold overrides, checked against the model's sounds."""
    thresholds: dict[str, float] = {}
    for pair in pairs:
        label, equals, value = pair.partition("=")
        if not equals:
            raise CliError(f"--threshold {pair}: expected CLASS=P, e.g. babycry=0.7")
        if label not in info.events:
            raise CliError(f"--threshold {pair}: class must be one of {', '.join(info.events)}")
        try:
            probability = float(value)
        except ValueError:
            raise CliError(f"--threshold {pair}: {value!r} is not a number") from None
        if not 0 < probability <= 1:
            raise CliError(f"--threshold {pair}: the probability must be in (0, 1]")
        thresholds[label] = probability
    return thresholds


def _build_pipeline(args: argparse.Namespace) -> Pipeline:
    if args.hop_s is not None and not (math.isfinite(args.hop_s) and args.hop_s > 0):
        raise CliError(f"--hop-s {args.hop_s}: must be a positive number of seconds")
    try:
        model = model_path(args.model)
    except ModelLoadError as err:
        raise CliError(str(err)) from None
    if not model.is_file():
        hint = "the shipped model is not installed here" if args.model in SHIPPED_MODELS else "check --model"
        raise CliError(f"model file {model} not found: {hint}")
    loaded = load_model(model, args.backend)
    info = loaded.info
    # One resolution of defaults and overrides for every front end (engine/detection_settings.py).
    settings = resolve_detector_settings(
        info, DetectionOverrides(thresholds=_thresholds(args.threshold, info))
    )
    alarms = None if args.no_alarms else AlarmSettings(sample_rate_hz=info.sample_rate_hz)
    return Pipeline.for_model(loaded, hop_s=args.hop_s, detector=settings, alarms=alarms)


# scan


def _window_json(name: str, window: WindowResult) -> str:
    return json.dumps(
        {
            "file": name,
            "start_s": round(window.start_s, 6),
            "end_s": round(window.end_s, 6),
            "probs": {label: round(p, 6) for label, p in window.probabilities.items()},
            "dbfs": round(window.dbfs, 2),
        }
    )


def _event_json(name: str, event: DetectionEvent) -> str:
    """A start ("on") or end ("off"), with the keys of `event_data` (Home Assistant's event entity)."""
    details = event_data(event)
    if isinstance(event, SoundEvent):  # as precise as the windows' probabilities, not event_data's 3 digits
        details["confidence"] = round(event.peak_probability, 6)
    return json.dumps(
        {
            "file": name,
            "event": event.label,
            "state": "on" if event.active else "off",
            "time_s": round(event.time_s, 6),  # as the windows' end_s: the window that decided it
            **details,
        }
    )


def _jsonl(name: str, output: PipelineOutput) -> Iterator[str]:
    """One chunk's lines in time order: each window, and each event after the window that decided it."""
    lines = [(window.end_s, 0, _window_json(name, window)) for window in output.windows]
    lines += [(event.time_s, 1, _event_json(name, event)) for event in output.events]
    for _time, _order, line in sorted(lines, key=lambda line: line[:2]):
        yield line


def _details(event: DetectionEvent) -> str:
    """What an event's table row or line says about it: the model's peak, an alarm's tone."""
    if isinstance(event, AlarmEvent):
        return f"{event.frequency_hz:.0f} Hz, {event.cycles} cycles"
    return f"peak {event.peak_probability:.2f}"


def _versus_threshold(label: str, peak: float, settings: DetectorSettings) -> str:
    """A class's highest probability beside its threshold, with the digits that show which is higher.

    Rounding alone can contradict the verdict (0.9954 shown as 1.00 under a threshold of 0.998); a peak
    over the threshold in a recording without detections passed in fewer than k of n windows.
    """
    threshold = settings.thresholds.get(label)
    if threshold is None:  # a class not detected at all
        return f"{label} {peak:.2f}"
    digits = max(2, -int(Decimal(str(threshold)).as_tuple().exponent) + 1)
    if peak >= threshold:  # rounded to one more digit than the threshold has, it cannot fall below it
        return (
            f"{label} {peak:.{digits}f} >= {threshold:g} in fewer than {settings.k} of {settings.n} windows"
        )
    while digits < 9 and float(f"{peak:.{digits}f}") >= threshold:
        digits += 1
    shown = f"{peak:.{digits}f}"
    if float(shown) >= threshold:  # within 1e-9 below: cut the digits instead of rounding them up
        shown = f"{math.floor(peak * 10**digits) / 10**digits:.{digits}f}"
    return f"{label} {shown} < {threshold:g}"


@dataclass
class _Detection:
    label: str
    start_s: float
    end_s: float | None
    peak: float | None
    """The model's peak probability; None for an alarm pattern (see `note`)."""
    note: str = ""
    """An alarm's tone (its frequency and cycles); empty for the model's classes."""


class _Table:
    """Collects one input's windows and events and prints its detections."""

    def __init__(self, labels: Iterable[str], settings: DetectorSettings) -> None:
        self.labels = list(labels)
        self.settings = settings
        self.windows = 0
        self.end_s = 0.0
        self.highest = dict.fromkeys(self.labels, 0.0)
        self.detections: list[_Detection] = []
        self._running: dict[str, _Detection] = {}

    def add(self, output: PipelineOutput) -> None:
        """Take one chunk's output (windows and events in time order)."""
        events: dict[float, list[SoundEvent]] = {}
        for event in output.events:
            if isinstance(event, AlarmEvent):  # not tied to a window
                self._alarm(event)
            else:
                events.setdefault(event.time_s, []).append(event)
        for window in output.windows:
            self.windows += 1
            self.end_s = max(self.end_s, window.end_s)
            for label in self.labels:
                self.highest[label] = max(self.highest[label], window.probabilities[label])
            for detection in self._running.values():  # the peak so far of an event still running
                if detection.peak is not None:
                    detection.peak = max(detection.peak, window.probabilities[detection.label])
            for event in events.pop(window.end_s, []):
                if event.active:
                    self._running[event.label] = detection = _Detection(
                        event.label, event.time_s, None, event.peak_probability
                    )
                    self.detections.append(detection)
                elif (ended := self._running.pop(event.label, None)) is not None:
                    ended.end_s, ended.peak = event.time_s, event.peak_probability

    def _alarm(self, event: AlarmEvent) -> None:
        if event.active:
            detection = _Detection(event.label, event.time_s, None, None, _details(event))
            self._running[event.label] = detection
            self.detections.append(detection)
        elif (ended := self._running.pop(event.label, None)) is not None:
            ended.end_s, ended.note = event.time_s, _details(event)

    def print(self, name: str, backend: str, out: TextIO) -> None:
        """Print the input's name, then one line per detection."""
        print(f"{name}: {self.end_s:.2f} s, {self.windows} windows ({backend})", file=out)
        if not self.detections:
            highest = ", ".join(
                _versus_threshold(label, self.highest[label], self.settings) for label in self.labels[1:]
            )
            print(f"  no detections (highest probabilities: {highest})", file=out)
            return
        print(f"  {'detected':>9}  {'ended':>9}  {'class':<11} peak", file=out)
        for row in sorted(self.detections, key=lambda row: row.start_s):
            until = f"{row.end_s:7.2f} s" if row.end_s is not None else "(running)"
            print(
                f"  {row.start_s:7.2f} s  {until:>9}  {row.label:<11} {row.note or f'{row.peak:.2f}'}",
                file=out,
            )


def cmd_scan(args: argparse.Namespace, out: TextIO) -> int:
    """Classify each input; a bad one is reported on stderr and the others still run."""
    pipeline = _build_pipeline(args)
    status = 0
    for name in args.inputs:
        shown = redact_url(name)
        table = _Table(pipeline.info.labels, pipeline.detector.settings)
        try:
            with FileSource(name) as source:
                for output in scan_chunks(pipeline, source):
                    if args.jsonl:
                        for line in _jsonl(shown, output):
                            print(line, file=out)
                    else:
                        table.add(output)
                    out.flush()
        except SourceError as err:
            print(f"error: {err}", file=sys.stderr, flush=True)
            status = EXIT_INPUT_FAILED
            continue
        except ValueError as err:
            print(f"error: {shown}: {err}", file=sys.stderr, flush=True)
            status = EXIT_INPUT_FAILED
            continue
        if not args.jsonl:
            table.print(shown, f"{pipeline.info.name} {pipeline.info.version}, {pipeline.backend.name}", out)
            out.flush()
    return status


# listen


def _live_source(url: str, args: argparse.Namespace) -> Callable[[], AudioSource]:
    """A factory of fresh sources for `url`; raises CliError now when the URL or options are bad."""
    pcm = PcmFormat(sample_rate_hz=args.udp_rate, sample_width=args.udp_width, channels=args.udp_channels)

    def factory() -> AudioSource:
        return source_for_url(url, transport=args.transport, pcm=pcm)

    try:
        factory()  # the constructors check their arguments (e.g. the sender address); nothing opens yet
    except ValueError as err:
        raise CliError(f"{redact_url(url)}: {err}") from None
    return factory


def cmd_listen(args: argparse.Namespace, out: TextIO) -> int:
    """Run live until SIGINT/SIGTERM, printing each event as it starts and ends."""
    factory = _live_source(args.url, args)
    pipeline = _build_pipeline(args)
    # A local file ends; any other source that ends is a live stream to reconnect to.
    finite = "://" not in args.url
    stop = threading.Event()
    connected_once = threading.Event()
    failures: list[SourceError] = []

    def on_output(output: PipelineOutput) -> None:
        for event in output.events:
            change = "started" if event.active else "ended"
            print(
                f"{time.strftime('%H:%M:%S')}  {event.time_s:9.2f} s  {event.label:<11} {change:<8} "
                f"{_details(event)}",
                file=out,
                flush=True,
            )

    def on_status(connected: bool, error: SourceError | None) -> None:
        if connected:
            connected_once.set()
            print(f"listening to {redact_url(args.url)} (Ctrl-C to stop)", file=sys.stderr, flush=True)
        elif error is not None and (finite or not connected_once.is_set()):
            failures.append(error)  # the first connection failed, or the file ended: stop
            stop.set()
        else:
            print(f"disconnected: {error}; reconnecting", file=sys.stderr, flush=True)

    listener = Listener("cli", factory, pipeline, on_output=on_output, on_status=on_status)
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    listener.start()
    try:
        while not stop.wait(0.1) and listener.is_alive():
            pass
    finally:
        listener.stop()
    if failures:
        if finite and connected_once.is_set() and failures[0].reason == "stream_ended":
            print(f"end of {redact_url(args.url)}", file=sys.stderr, flush=True)
            return 0
        print(f"error: {failures[0]}", file=sys.stderr, flush=True)
        return EXIT_INPUT_FAILED
    print("stopped", file=sys.stderr, flush=True)
    return 0


# serve


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the MQTT service until SIGINT/SIGTERM."""
    try:
        from .service.config import ConfigError, load_config  # noqa: PLC0415 - the `service` extra
        from .service.service import ServiceError, SoundSentryService  # noqa: PLC0415
    except ImportError as err:
        raise CliError(
            f"the service needs paho-mqtt and PyYAML ({err.name} is missing): pip install 'sound-sentry[service]'"
        ) from None
    try:
        service = SoundSentryService(load_config(args.config))
        stop = threading.Event()
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        service.start()
    except (ConfigError, ServiceError) as err:
        raise CliError(str(err)) from None
    try:
        stop.wait()
    finally:
        service.stop()
    print("stopped", file=sys.stderr, flush=True)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments."""
    doc = __doc__ or ""
    parser = _ArgumentParser(
        prog="python -m custom_components.sound_sentry.engine",
        description=doc.split("\n", 1)[0],
        epilog=doc.split("\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    common = _ArgumentParser(add_help=False)
    common.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"a shipped model ({', '.join(SHIPPED_MODELS)}) or an .onnx file with its .json sidecar "
        "beside it (default: %(default)s)",
    )
    common.add_argument(
        "--backend",
        choices=["auto", "numpy", "onnxruntime"],
        default="auto",
        help="model runtime (default: auto)",
    )
    common.add_argument(
        "--hop-s",
        type=float,
        default=None,
        help="seconds between windows, rounded to 10 ms (default: the model's, 1.0 for the shipped models)",
    )
    common.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="CLASS=P",
        help="detection threshold of a class (babycry, glassbreak, gunshot); repeatable",
    )
    common.add_argument(
        "--no-alarms", action="store_true", help="do not listen for smoke and CO alarm patterns"
    )
    common.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    sub = parser.add_subparsers(dest="command", required=True, metavar="{scan,listen,serve}")
    scan = sub.add_parser(
        "scan",
        parents=[common],
        help="classify recordings or URLs",
        description="Classify recordings or URLs to their end. An input shorter than one 1.935 s window is "
        "centred in -70 dBFS white noise to one window.",
    )
    scan.add_argument("inputs", nargs="+", metavar="PATH_OR_URL")
    scan.add_argument(
        "--jsonl",
        action="store_true",
        help="one JSON object per window and per event start or end, instead of a table",
    )
    listen = sub.add_parser(
        "listen", parents=[common], help="detect live until Ctrl-C", description="Detect live until Ctrl-C."
    )
    listen.add_argument("url", help="rtsp://..., udp://SENDER:PORT (raw PCM) or anything PyAV opens")
    listen.add_argument("--transport", choices=["tcp", "udp"], default="tcp", help="RTSP transport")
    listen.add_argument(
        "--udp-rate", type=int, default=16000, help="UDP PCM sample rate in Hz (default: 16000)"
    )
    listen.add_argument(
        "--udp-width", type=int, choices=[2, 4], default=2, help="UDP PCM bytes per sample (default: 2)"
    )
    listen.add_argument("--udp-channels", type=int, choices=[1, 2], default=1, help="UDP PCM channels")
    serve = sub.add_parser(
        "serve",
        help="listen to the sources of a YAML file and publish to MQTT (Home Assistant discovery)",
        description="Listen to every source of the YAML file and publish detections to an MQTT broker, with "
        "Home Assistant discovery. Needs the service extra: pip install 'sound-sentry[service]'.",
    )
    serve.add_argument("--config", required=True, type=Path, help="the YAML file (see README)")
    serve.add_argument("-v", "--verbose", action="store_true", help="log what the engine does")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point; returns the exit status. Errors are one line on stderr, never a traceback."""
    args = build_parser().parse_args(argv)
    out = out or sys.stdout
    serving = args.command == "serve"
    logging.basicConfig(
        level=logging.DEBUG
        if args.verbose and serving
        else logging.INFO
        if args.verbose or serving
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        if serving
        else "%(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        # The runner logs each disconnect; `listen` prints its own line for it.
        logging.getLogger(f"{__package__}.sources.runner").setLevel(logging.ERROR)
    try:
        if args.command == "scan":
            return cmd_scan(args, out)
        if serving:
            return cmd_serve(args)
        return cmd_listen(args, out)
    except (CliError, ModelLoadError, SourceError) as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. piped into `head`: stop quietly, also at the interpreter's last flush
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_INPUT_FAILED
    except Exception as err:  # a bug: still one line unless asked for details
        if args.verbose:
            raise
        print(f"error: unexpected {type(err).__name__}: {err} (run with -v for details)", file=sys.stderr)
        return EXIT_INPUT_FAILED
