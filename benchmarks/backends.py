"""Model runtime speed: median ms per window and x real time, one thread, batch 1 and 8.

    scripts/run python -m benchmarks.backends [--runs 7] [--seconds 1.0] [--batches 1 8] [MODEL.onnx ...]

Without model arguments it measures the test fixtures and the shipped models. Each model gets windows of
its own input: FBANK windows [192 frames, 24 bins] for ResNetSE, log mel windows [frames, 79 bands]
for the MobileNet (--frames where the model leaves the count open). Each measurement repeats predict()
for about --seconds, --runs times, and reports the median of the runs (x real time = window length /
wall time per window; CPU ms is this thread's CPU time).
"""

from __future__ import annotations

import os

# One thread everywhere: set before NumPy loads its BLAS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import hashlib  # noqa: E402
from pathlib import Path  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

from custom_components.sound_sentry.engine.backends import (  # noqa: E402
    ModelBackend,
    NumpyBackend,
    OnnxRuntimeBackend,
    onnxruntime_available,
)
from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise  # noqa: E402
from custom_components.sound_sentry.engine.logmel import LogMelExtractor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("SOUND_SENTRY_DATA") or REPO.parent / "shared" / "data")
SAMPLE_RATE_HZ = 8000
FIXTURES = REPO / "tests" / "fixtures"
MODEL_DIRS = (REPO / "custom_components" / "sound_sentry" / "models", REPO / "models")


def default_models() -> list[Path]:
    """The test fixtures, then every shipped model."""
    shipped = [path for folder in MODEL_DIRS for path in sorted(folder.glob("*.onnx"))]
    return [FIXTURES / "resnetse_random.onnx", FIXTURES / "mobilenet_random.onnx", *shipped]


def feature_windows(count: int, frames: int, bands: int) -> tuple[npt.NDArray[np.float32], float]:
    """Windows [count, frames, bands] and their length in seconds: FBANK for 24 bins, else log mel.

    Real audio when the data set is here (timing can depend on values), else noise.
    """
    fbank, logmel = FbankExtractor(), LogMelExtractor()
    is_fbank = bands == fbank.settings.num_mel_bins
    if is_fbank:
        samples = fbank.settings.frame_length + (frames - 1) * fbank.settings.frame_shift
    else:
        samples = logmel.settings.fft_size + (frames - 1) * logmel.settings.frame_shift

    def compute(pcm: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return normalise(fbank.compute(pcm)) if is_fbank else logmel.compute(pcm)

    manifest = DATA / "manifest.csv"
    if not manifest.is_file():
        noise = np.random.default_rng(0).standard_normal((count, frames, bands)).astype(np.float32)
        return noise, samples / SAMPLE_RATE_HZ
    import av  # noqa: PLC0415

    windows: list[npt.NDArray[np.float32]] = []
    for row in csv.DictReader(manifest.open()):
        if float(row["duration_s"]) * SAMPLE_RATE_HZ < samples:
            continue
        with av.open(str(DATA / row["path"])) as container:
            pcm = np.concatenate([f.to_ndarray().reshape(-1) for f in container.decode(audio=0)])
        windows.append(compute(pcm[:samples].astype(np.float32) / 32768))
        if len(windows) == count:
            break
    return np.stack(windows), samples / SAMPLE_RATE_HZ


def _distinct(paths: list[Path]) -> list[Path]:
    """Drop byte-identical copies (the shipped models live in two folders)."""
    seen: dict[bytes, Path] = {}
    for path in paths:
        seen.setdefault(hashlib.sha256(path.read_bytes()).digest(), path)
    return list(seen.values())


def measure(
    backend: ModelBackend, windows: npt.NDArray[np.float32], runs: int, seconds: float
) -> tuple[float, float]:
    """Medians over `runs` of wall-clock and CPU seconds per window of back-to-back predict() calls.

    CPU time (this thread's) is less sensitive than wall time to other processes on a busy machine.
    """
    backend.predict(windows)  # warm up caches and lazy allocations
    start = time.perf_counter()
    backend.predict(windows)
    calls = max(1, round(seconds / max(time.perf_counter() - start, 1e-6)))
    wall, cpu = [], []
    for _ in range(runs):
        start, start_cpu = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            backend.predict(windows)
        wall.append((time.perf_counter() - start) / calls / len(windows))
        cpu.append((time.thread_time() - start_cpu) / calls / len(windows))
    return statistics.median(wall), statistics.median(cpu)


def main() -> None:
    """Print one table row per runtime, model and batch size."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("models", nargs="*", type=Path)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0, help="approximate length of one run")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--frames", type=int, default=200, help="frames where a model leaves them open")
    args = parser.parse_args()
    models = args.models or _distinct([path for path in default_models() if path.is_file()])
    factories: list[type[NumpyBackend | OnnxRuntimeBackend]] = [NumpyBackend]
    if onnxruntime_available():
        factories.append(OnnxRuntimeBackend)
    print(f"one thread, {args.runs} runs of ~{args.seconds:g} s each, median")
    print(f"| {'runtime':<11} | {'model':<34} | window | batch | ms/window | x real time | CPU ms/window |")
    print(f"|{'-' * 13}|{'-' * 36}|-------:|------:|----------:|------------:|--------------:|")
    for model in models:
        windows, window_s = np.zeros(0, np.float32), 0.0
        for factory in factories:
            backend = factory(model)
            if not windows.size:
                shape = tuple(backend.input_shape or ())
                frames = shape[1] if len(shape) == 3 and isinstance(shape[1], int) else args.frames
                windows, window_s = feature_windows(max(args.batches), frames, int(shape[-1]))
            for batch in args.batches:
                seconds, cpu = measure(backend, windows[:batch], args.runs, args.seconds)
                print(
                    f"| {backend.name:<11} | {model.name:<34} | {window_s:>5.3f}s | {batch:>5} "
                    f"| {seconds * 1e3:>9.3f} | {window_s / seconds:>11.0f} | {cpu * 1e3:>13.3f} |"
                )


if __name__ == "__main__":
    main()
