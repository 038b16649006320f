"""Engine speed on one core: FBANK, both model runtimes, the whole pipeline from PCM, what a source adds
beside the model (alarm patterns, the clip recorder), and PyAV decode.

    scripts/run python -m benchmarks.engine [--runs 5] [--seconds 0.5] [--audio-s 30]

One thread everywhere (BLAS and onnxruntime). Every figure is the median of --runs runs. Two clocks:
"x real time per core" divides audio seconds by the process's CPU seconds (what the work costs one
core, and least disturbed by other jobs on a shared machine); "wall" divides by elapsed seconds.

What "x real time" means per stage:
- a model window (FBANK one-shot, each runtime): 1.935 s of audio per window / time per window: how
  much faster than real time one core classifies back-to-back, non-overlapping windows. The goals of
  the runtimes (>= 1000x onnxruntime, >= 300x NumPy) are per window.
- FBANK streaming, the pipeline and decode: seconds of audio / processing seconds. The pipeline runs at
  hop 0.25 s, so it classifies 4 windows per second of audio (7.7x the audio a window covers);
  its figure is how many live streams one core keeps up with. Decode's goal is >= 200x.
Uses the shipped model when it is installed, else the random test fixture (same network, same cost).
"""

from __future__ import annotations

import os

# One thread everywhere: set before NumPy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import av  # noqa: E402
import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from benchmarks._common import pipeline_for  # noqa: E402
from benchmarks.decode import FORMATS, decode_once, encode, real_audio  # noqa: E402
from custom_components.sound_sentry.engine.alarm import AlarmPatternDetector, AlarmSettings  # noqa: E402
from custom_components.sound_sentry.engine.backends import (  # noqa: E402
    ModelBackend,
    NumpyBackend,
    OnnxRuntimeBackend,
    onnxruntime_available,
)
from custom_components.sound_sentry.engine.clips import ClipRecorder  # noqa: E402
from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise  # noqa: E402
from custom_components.sound_sentry.engine.model import model_path  # noqa: E402
from custom_components.sound_sentry.engine.model_info import ModelInfo  # noqa: E402
from custom_components.sound_sentry.engine.pipeline import Pipeline  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL = "compact"
"""The parts measured here (FBANK, the ResNetSE runtimes) are the compact model's; benchmarks.vs_yamnet
measures both models' whole pipelines."""
RATE = 8000
WINDOW = 15_480
WINDOW_S = WINDOW / RATE
CHUNK = 160  # 20 ms, as a camera's RTP packets arrive
HOP = 2000  # 0.25 s
WINDOWS_PER_S = RATE / HOP
GOAL_ONNXRUNTIME, GOAL_NUMPY, GOAL_DECODE = 1000, 300, 200


@dataclass
class Row:
    """One line of the table: a model window, or a second of streamed audio."""

    stage: str
    unit_s: float
    """Seconds of audio per unit: WINDOW_S for a window, 1.0 for a second of streamed audio."""
    cpu_s: float
    """Median CPU seconds per unit."""
    wall_s: float
    """Median wall seconds per unit."""
    goal: int | None
    windows_per_unit: float | None = None
    """Windows classified per unit (1 for a window row), when the stage makes windows."""

    def cells(self) -> list[str]:
        per_core = self.unit_s / self.cpu_s
        goal = "-" if self.goal is None else f">= {self.goal}x: {'yes' if per_core >= self.goal else 'NO'}"
        per_window = f"{self.cpu_s / self.windows_per_unit * 1e3:.3f}" if self.windows_per_unit else "-"
        per_second = f"{self.cpu_s / self.unit_s * 1e3:.2f}" if self.unit_s == 1.0 else "-"
        return [
            self.stage,
            per_window,
            per_second,
            f"{per_core:,.0f}x",
            f"{self.unit_s / self.wall_s:,.0f}x",
            goal,
        ]


def measure(work: Callable[[], object], units: float, runs: int, seconds: float) -> tuple[float, float]:
    """Median (CPU, wall) seconds per unit over `runs` runs of ~`seconds` each; `work` does `units` units."""
    work()  # warm up caches and lazy allocations
    start = time.perf_counter()
    work()
    calls = max(1, round(seconds / max(time.perf_counter() - start, 1e-6)))
    cpu, wall = [], []
    for _ in range(runs):
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        for _ in range(calls):
            work()
        cpu.append((time.process_time() - cpu_start) / calls / units)
        wall.append((time.perf_counter() - wall_start) / calls / units)
    return statistics.median(cpu), statistics.median(wall)


def chunks_of(pcm: npt.NDArray[np.int16], size: int) -> list[npt.NDArray[np.int16]]:
    return [pcm[i : i + size] for i in range(0, pcm.size, size)]


def fbank_rows(pcm: npt.NDArray[np.int16], runs: int, seconds: float) -> list[Row]:
    extractor = FbankExtractor()
    audio = pcm.astype(np.float32) / 32768
    window = audio[:WINDOW]
    rows = [
        Row(
            "FBANK one-shot", WINDOW_S, *measure(lambda: extractor.compute(window), 1, runs, seconds), None, 1
        )
    ]
    for chunk_size, how in ((HOP, "0.25 s chunks, as the pipeline feeds it"), (CHUNK, "20 ms chunks")):
        chunks = chunks_of(audio, chunk_size)

        def stream(chunks: list[npt.NDArray[np.float32]] = chunks) -> None:
            extractor.reset()
            for chunk in chunks:
                extractor.process_streaming(chunk)

        timing = measure(stream, audio.size / RATE, runs, seconds)
        rows.append(Row(f"FBANK streaming, {how}", 1.0, *timing, None, WINDOWS_PER_S))
    return rows


def backends(models: list[Path]) -> list[tuple[str, ModelBackend, int]]:
    """(label, backend, goal) for each runtime and model file."""
    found: list[tuple[str, ModelBackend, int]] = []
    for model in models:
        kind = "float32"
        found.append((f"NumPy runtime, {kind}", NumpyBackend(model), GOAL_NUMPY))
        if onnxruntime_available():
            found.append(
                (f"onnxruntime, {kind}", OnnxRuntimeBackend(model, intra_op_threads=1), GOAL_ONNXRUNTIME)
            )
    return found


def model_rows(
    runtimes: list[tuple[str, ModelBackend, int]], pcm: npt.NDArray[np.int16], runs: int, seconds: float
) -> list[Row]:
    features = normalise(FbankExtractor().compute(pcm[:WINDOW].astype(np.float32) / 32768))[None]
    return [
        Row(
            f"{label}, batch 1",
            WINDOW_S,
            *measure(lambda b=backend: b.predict(features), 1, runs, seconds),
            goal,
            1,
        )
        for label, backend, goal in runtimes
    ]


def pipeline_rows(
    runtimes: list[tuple[str, ModelBackend, int]],
    info: ModelInfo,
    pcm: npt.NDArray[np.int16],
    runs: int,
    seconds: float,
    *,
    recorder: ClipRecorder | None = None,
) -> list[Row]:
    """The pipeline fed 20 ms chunks, per runtime; with `recorder`, as a source with smoke/CO alarms and
    clips on runs it (the recorder fed each chunk and its events, as `Listener` does)."""
    chunks = chunks_of(pcm, CHUNK)
    audio_s = pcm.size / RATE
    rows = []
    for label, backend, _ in runtimes:
        pipeline = pipeline_for(backend, info, alarms=None if recorder is None else AlarmSettings())

        def run(pipeline: Pipeline = pipeline) -> None:
            pipeline.reset()
            if recorder is not None:
                recorder.reset()
            for chunk in chunks:
                events = pipeline.process(chunk).events
                if recorder is not None:
                    recorder.process(chunk, events)

        runtime = label.split(",")[0]
        stage = (
            f"pipeline from PCM, {runtime}, hop 0.25 s"
            if recorder is None
            else f"pipeline + alarms + clip recorder, {runtime}"
        )
        rows.append(Row(stage, 1.0, *measure(run, audio_s, runs, seconds), None, WINDOWS_PER_S))
    return rows


def per_source_rows(
    runtimes: list[tuple[str, ModelBackend, int]],
    info: ModelInfo,
    pcm: npt.NDArray[np.int16],
    runs: int,
    seconds: float,
) -> list[Row]:
    """What a source costs beside the model: the alarm pattern detector and the clip recorder's ring
    (alone, then with the pipeline as a source with alarms and clips on runs them, in its thread)."""
    chunks = chunks_of(pcm, CHUNK)
    floats = [chunk.astype(np.float32) / 32768 for chunk in chunks]
    audio_s = pcm.size / RATE
    detector = AlarmPatternDetector()
    recorder = ClipRecorder(RATE, WINDOW_S, key_for=lambda event: event.label, on_clip=lambda clip: None)

    def alarms() -> None:
        detector.reset()
        for chunk in floats:
            detector.process(chunk)

    def ring() -> None:
        recorder.reset()
        for chunk in chunks:
            recorder.process(chunk, ())

    return [
        Row("alarm pattern detector (T3 / T4)", 1.0, *measure(alarms, audio_s, runs, seconds), None),
        Row("clip recorder (its ring; no detection)", 1.0, *measure(ring, audio_s, runs, seconds), None),
        *pipeline_rows(runtimes, info, pcm, runs, seconds, recorder=recorder),
    ]


def decode_rows(pcm: npt.NDArray[np.int16], runs: int) -> list[Row]:
    audio_s = pcm.size / RATE
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (suffix, codec, rate, bit_rate, packet) in FORMATS.items():
            path = Path(tmp) / f"{codec}_{rate}{suffix}"
            encode(pcm, path, codec=codec, rate=rate, bit_rate=bit_rate, packet=packet)
            decode_once(path)  # warm the page cache and PyAV's codec tables
            results = [decode_once(path) for _ in range(runs)]
            wall = statistics.median(r[0] for r in results) / audio_s
            cpu = statistics.median(r[1] for r in results) / audio_s
            rows.append(Row(f"PyAV decode + resample, {name}", 1.0, cpu, wall, GOAL_DECODE))
    return rows


def table(rows: list[Row]) -> str:
    header = [
        "stage",
        "CPU ms per window",
        "CPU ms per s of audio",
        "x real time per core",
        "x real time, wall",
        "goal (per core)",
    ]
    lines = [f"| {' | '.join(header)} |", "|---|---:|---:|---:|---:|---|"]
    lines += [f"| {' | '.join(row.cells())} |" for row in rows]
    return "\n".join(lines)


def main() -> None:
    """Measure everything and print the markdown table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=0.5, help="approximate length of one run")
    parser.add_argument("--audio-s", type=float, default=30.0, help="seconds of real audio to stream")
    args = parser.parse_args()

    load_before = os.getloadavg()
    model = model_path(MODEL)
    models = [model]
    info = ModelInfo.load(model)
    pcm = real_audio(args.audio_s)
    runtimes = backends(models)

    rows = fbank_rows(pcm, args.runs, args.seconds)
    rows += model_rows(runtimes, pcm, args.runs, args.seconds)
    rows += pipeline_rows(runtimes, info, pcm, args.runs, args.seconds)
    rows += per_source_rows(runtimes, info, pcm, args.runs, args.seconds)
    rows += decode_rows(pcm, args.runs)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    which = f"the {MODEL} model, {info.name} {info.version}"
    ort = "not installed"
    if onnxruntime_available():
        import onnxruntime  # noqa: PLC0415

        ort = onnxruntime.__version__
    print(f"Model: {', '.join(m.relative_to(REPO).as_posix() for m in models)} - {which}")
    print(
        f"Python {platform.python_version()}, NumPy {np.__version__}, onnxruntime {ort}, PyAV {av.__version__}; "
        f"{os.cpu_count()} CPUs, one thread; {args.runs} runs, median; {pcm.size / RATE:.0f} s of real audio "
        f"in {CHUNK * 1000 // RATE} ms chunks"
    )
    print(
        "Load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.2f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print()
    print(table(rows))
    print()
    print(f"Peak RSS: {peak_mb:.0f} MB (whole benchmark process: all runtimes and models loaded)")
    print(
        f"x real time: for a window, {WINDOW_S:.3f} s of audio / time per window; for streaming rows, seconds of "
        "audio / processing seconds. At hop 0.25 s the pipeline classifies 4 windows per second of audio, so "
        "its ms per window is its ms per second / 4, and its x real time is how many live streams one core "
        "keeps up with."
    )


if __name__ == "__main__":
    main()
