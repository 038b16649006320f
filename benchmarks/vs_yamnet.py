"""CPU per second of audio: Sound Sentry's pipeline (NumPy runtime, onnxruntime) against YAMNet as Frigate runs it.

    scripts/setup yamnet    # once: ai-edge-litert in its own venv (it pins what Home Assistant pins)
    scripts/run python -m benchmarks.vs_yamnet [--audio-s 120] [--runs 5] [--busy]

All three get the same audio: --audio-s seconds of real 8 kHz test clips (../shared/data; with
--background, background clips only) as int16,
fed in 20 ms chunks as a camera's packets arrive. Each run is a fresh child process, so every runtime
uses the threads it chooses itself as the product runs (no *_NUM_THREADS variables are set here); the
clock is the whole process's CPU time (all its threads, BLAS included) from the first chunk to the last,
after the model is loaded:
- Sound Sentry: `Pipeline` at the model's hop (1.0 s for the shipped models: a window per second of audio, decided by the temporal stage), the model's defaults, with
  the default level floor (-60 dBFS) and without it; with --taught, also with one taught sound (a head on
  the model's taught network, which then runs on every window above the level floor too).
- YAMNet (../shared/peers/yamnet) as Frigate runs it: audio resampled to 16 kHz (PyAV's FFmpeg
  resampler, streaming, as Frigate's ffmpeg does), a 0.975 s frame every 0.48 s, int16 / 32768 as
  float32, one interpreter thread, invoke, read the 521 scores, plus Frigate's RMS / dBFS of the frame;
  every frame, and with Frigate's default min_volume (frames below RMS 500, about -36 dBFS, skipped).
Runs are interleaved and each figure is the median of --runs. --busy keeps a CPU-bound process running
beside the measurements (on a 2-core machine: the other core busy). Also printed: the wall time of
each `process()` call that completed a window, p95 (the latency the engine adds once a window's
audio has arrived), and the per-window floor: CPU ms of one predict() of one window, median.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
YAMNET = REPO.parent / "shared" / "peers" / "yamnet" / "yamnet_classification_tflite_1.tflite"
YAMNET_PYTHON = Path(
    os.environ.get("SOUND_SENTRY_CACHE") or Path.home() / ".cache" / "sound-sentry",
    "venv-yamnet",
    "bin",
    "python",
)
RATE = 8000
CHUNK = 160  # 20 ms
SOUND_SENTRY = {
    "numpy": "NumPy runtime",
    "numpy-no-floor": "NumPy runtime, no level floor",
    "onnxruntime": "onnxruntime",
}
"""Sound Sentry's runtimes, each run for every model asked for: `numpy@accurate`, `onnxruntime@compact`..."""
TAUGHT = {
    "numpy-taught": "NumPy runtime, one taught sound",
    "onnxruntime-taught": "onnxruntime, one taught sound",
}
"""With --taught, for the models sounds are taught on: the same pipelines with one taught sound."""
YAMNET_RUNS = {
    "yamnet": "YAMNet as Frigate, every frame",
    "yamnet-min-volume": "YAMNet as Frigate, min_volume 500 (its default)",
}


def runtimes(models: list[str], taught: bool = False) -> dict[str, str]:
    """Every child to run, with its label: Sound Sentry's runtimes per model (with --taught, also with a
    taught sound where the model has a taught network), then YAMNet's two."""
    from custom_components.sound_sentry.engine.model import model_path  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model_info import ModelInfo  # noqa: PLC0415

    kinds = {
        model: {**SOUND_SENTRY, **(TAUGHT if taught and ModelInfo.load(model_path(model)).taught else {})}
        for model in models
    }
    ours = {
        f"{runtime}@{model}": f"Sound Sentry {model}, {label}"
        for model in models
        for runtime, label in kinds[model].items()
    }
    return {**ours, **YAMNET_RUNS}


FRIGATE_MIN_VOLUME = 500  # RMS of int16 samples, about -36 dBFS: Frigate skips quieter frames


def _chunks(pcm: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [pcm[i : i + CHUNK] for i in range(0, pcm.size, CHUNK)]


def _threads() -> int:
    return sum(1 for _ in Path("/proc/self/task").iterdir())


def child_sound_sentry(child: str, pcm: npt.NDArray[np.int16]) -> dict[str, Any]:
    """The product's pipeline on one runtime (`numpy@accurate`...), the model loaded as the integration does."""
    from custom_components.sound_sentry.engine.detection_settings import with_taught  # noqa: PLC0415
    from custom_components.sound_sentry.engine.frontend import FrontEnd  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model import load_model, model_path  # noqa: PLC0415
    from custom_components.sound_sentry.engine.pipeline import Pipeline  # noqa: PLC0415
    from custom_components.sound_sentry.engine.taught import TaughtSound, bank_id  # noqa: PLC0415

    runtime, model = child.split("@")
    path = model_path(model)
    loaded = load_model(path, runtime.removesuffix("-no-floor").removesuffix("-taught"))  # type: ignore[arg-type]
    backend, info = loaded.backend, loaded.info
    kwargs: dict[str, Any] = {"min_level_dbfs": None} if runtime.endswith("-no-floor") else {}
    if runtime.endswith("-taught"):  # one taught sound: its cost does not depend on its head's weights
        network = loaded.taught_backend()  # loaded before the clock starts, as at a source's setup
        rng = np.random.default_rng(0)
        head = rng.standard_normal(network.embedding_size).astype(np.float32)
        sound = TaughtSound(
            "taught", info.name, info.version, head, -4.0, {"balanced": 0.99}, bank_id(info) or ""
        )
        kwargs["taught"] = {"taught": sound}
        kwargs["detector"] = with_taught(info.detector_settings(), {"taught": 0.99})
    pipeline = Pipeline.for_model(loaded, **kwargs)  # the model's own hop and temporal stage
    chunks = _chunks(pcm)
    latencies: list[float] = []
    windows = classified = 0
    cpu, wall = time.process_time(), time.perf_counter()
    for chunk in chunks:
        start = time.perf_counter()
        out = pipeline.process(chunk)
        if out.windows:
            latencies.append(time.perf_counter() - start)
            windows += len(out.windows)
            classified += sum(w.classified for w in out.windows)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    window = FrontEnd(info.front_end).features(pcm[: info.window_samples] / 32768.0)[None]
    per_window = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(20):
            backend.predict(window)
        per_window.append((time.process_time() - start) / 20)
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "windows": windows,
        "classified": classified,
        "latencies_s": latencies,
        "per_window_s": statistics.median(per_window),
        "threads": _threads(),
        "model": path.name,
    }


def child_yamnet(pcm: npt.NDArray[np.int16], min_volume: float, hop_s: float = 0.48) -> dict[str, Any]:
    """YAMNet tflite, one thread, as Frigate runs it, on the same 8 kHz audio resampled to 16 kHz."""
    from ai_edge_litert.interpreter import Interpreter  # noqa: PLC0415
    import av  # noqa: PLC0415

    interpreter = Interpreter(model_path=str(YAMNET), num_threads=1)
    interpreter.allocate_tensors()
    input_index = interpreter.get_input_details()[0]["index"]
    output_index = interpreter.get_output_details()[0]["index"]
    frame_len, hop = 15_600, round(hop_s * 16_000)
    resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
    buffer = np.zeros(0, np.int16)
    next_end = frame_len
    received = 0
    frames = classified = 0
    latencies: list[float] = []
    chunks = _chunks(pcm)
    cpu, wall = time.process_time(), time.perf_counter()
    for chunk in chunks:
        start = time.perf_counter()
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        for out in resampler.resample(frame):
            samples = out.to_ndarray().reshape(-1)
            buffer = np.concatenate([buffer, samples])
            received += samples.size
        ran = False
        while received >= next_end:
            audio = buffer[buffer.size - (received - next_end) - frame_len :][:frame_len]
            rms = np.sqrt(np.mean(np.absolute(np.square(audio.astype(np.float32)))))
            _dbfs = 20 * np.log10(np.abs(rms) / 32767) if rms else -math.inf
            if rms >= min_volume:
                waveform = (audio / 32768.0).astype(np.float32)
                interpreter.set_tensor(input_index, waveform)
                interpreter.invoke()
                _scores = interpreter.get_tensor(output_index)[0]
                classified += 1
            next_end += hop
            frames += 1
            ran = True
        buffer = buffer[-(frame_len + hop) :]
        if ran:
            latencies.append(time.perf_counter() - start)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    waveform = (pcm[:frame_len].astype(np.float32) / 32768.0).astype(np.float32)
    per_frame = []
    for _ in range(7):
        start = time.process_time()
        for _ in range(20):
            interpreter.set_tensor(input_index, waveform)
            interpreter.invoke()
            interpreter.get_tensor(output_index)
        per_frame.append((time.process_time() - start) / 20)
    return {
        "cpu_s": cpu,
        "wall_s": wall,
        "windows": frames,
        "classified": classified,
        "latencies_s": latencies,
        "per_window_s": statistics.median(per_frame),
        "threads": _threads(),
        "model": YAMNET.name,
    }


def _run_child(runtime: str, pcm_path: Path) -> dict[str, Any]:
    python = str(YAMNET_PYTHON) if runtime.startswith("yamnet") else sys.executable
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}  # as the product runs
    result = subprocess.run(
        [python, "-m", "benchmarks.vs_yamnet", "--child", runtime, str(pcm_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env=env,
        timeout=600,
    )
    if result.returncode:
        raise SystemExit(f"{runtime} run failed:\n{result.stderr[-3000:]}")
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)] if ordered else math.nan


def main() -> None:
    """Parent: prepare the audio, run the children interleaved, print the table and the ratios."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--audio-s", type=float, default=120.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--busy", action="store_true", help="keep a CPU-bound process running beside")
    parser.add_argument(
        "--models", nargs="+", default=["accurate", "compact"], help="shipped models to run (default: both)"
    )
    parser.add_argument(
        "--record",
        action="store_true",
        help="write each model's CPU per audio second into its shipped sidecar (what the settings forms show)",
    )
    parser.add_argument(
        "--taught",
        action="store_true",
        help="also run each model that has a taught network with one taught sound",
    )
    parser.add_argument(
        "--background",
        action="store_true",
        help="feed background test clips only (ordinary home sound) instead of the test clips in path order",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("pcm", nargs="?", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        pcm = np.load(args.pcm)
        if args.child.startswith("yamnet"):
            result = child_yamnet(pcm, FRIGATE_MIN_VOLUME if args.child == "yamnet-min-volume" else 0)
        else:
            result = child_sound_sentry(args.child, pcm)
        print(json.dumps(result))
        return
    if not YAMNET_PYTHON.is_file():
        raise SystemExit(f"{YAMNET_PYTHON} is missing: run scripts/setup yamnet first")
    from benchmarks.decode import real_audio  # noqa: PLC0415

    pcm = real_audio(args.audio_s, "background" if args.background else None)
    audio_s = pcm.size / RATE
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if args.busy else None
    labels = runtimes(args.models, args.taught)
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in labels}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            pcm_path = Path(tmp) / "pcm.npy"
            np.save(pcm_path, pcm)
            for _ in range(args.runs):
                for name in labels:
                    results[name].append(_run_child(name, pcm_path))
    finally:
        if busy:
            busy.kill()
            busy.wait()
    print(
        f"{audio_s:.0f} s of real 8 kHz {'background ' if args.background else ''}audio in 20 ms chunks, {args.runs} interleaved runs, median; "
        f"{'another process busy beside' if args.busy else 'nothing else started'}; "
        f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}; {os.cpu_count()} CPUs"
    )
    cpu = {name: [r["cpu_s"] / audio_s * 1e3 for r in runs] for name, runs in results.items()}
    yamnet, frigate = statistics.median(cpu["yamnet"]), statistics.median(cpu["yamnet-min-volume"])
    print(
        "| runtime | CPU ms per audio s (min-max) | vs YAMNet every frame | vs Frigate default | "
        "windows per s | classified | threads | latency p95 ms | CPU ms per window |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in labels:
        runs = results[name]
        median = statistics.median(cpu[name])
        latencies = [x for r in runs for x in r["latencies_s"]]
        print(
            f"| {labels[name]} | {median:.2f} ({min(cpu[name]):.2f}-{max(cpu[name]):.2f}) "
            f"| {median / yamnet:.2f}x | {median / frigate:.2f}x | {runs[0]['windows'] / audio_s:.2f} "
            f"| {runs[0]['classified'] / max(1, runs[0]['windows']):.0%} | {runs[0]['threads']} "
            f"| {_p95(latencies) * 1e3:.1f} | {statistics.median(r['per_window_s'] for r in runs) * 1e3:.3f} |"
        )
    print("Models: " + ", ".join(sorted({r[0]["model"] for r in results.values()})) + ".")
    if args.record:
        how = (
            f"python -m benchmarks.vs_yamnet --runs {args.runs} --audio-s {args.audio_s:g} ({os.cpu_count()}-core "
            f"{platform.machine()}, median; YAMNet as Frigate runs it, every frame, {yamnet:.2f} ms in the same run)"
        )
        for model in args.models:
            record_cpu(
                model,
                {
                    "NumPy": statistics.median(cpu[f"numpy@{model}"]),
                    "onnxruntime": statistics.median(cpu[f"onnxruntime@{model}"]),
                },
                how,
            )


def record_cpu(model: str, ms_per_audio_s: dict[str, float], how: str) -> None:
    """Store a shipped model's measured CPU per audio second in its sidecar's metrics."""
    from dataclasses import replace  # noqa: PLC0415

    from custom_components.sound_sentry.engine.model import model_path  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model_info import ModelInfo  # noqa: PLC0415

    info = ModelInfo.load(model_path(model))
    metrics = {
        **info.metrics,
        "cpu_ms_per_audio_s": {name: round(ms, 2) for name, ms in ms_per_audio_s.items()},
        "cpu_measured_by": how,
    }
    replace(info, metrics=metrics).save()
    print(f"recorded in {info.path.with_suffix('.json').name}: {metrics['cpu_ms_per_audio_s']}")


if __name__ == "__main__":
    main()
