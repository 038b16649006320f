"""Memory of the model runtime: RSS a fresh process gains by importing a runtime, loading the model and
classifying, for onnxruntime's session options and the NumPy runtime.

    scripts/run python -m benchmarks.model_memory [--windows 400]

Each configuration runs in its own fresh interpreter (so nothing is shared or already mapped): first
numpy, PyAV and the engine are imported (Home Assistant has them loaded anyway) and RSS is read; then
the runtime is imported, the model loaded, and `--windows` windows of real test-split audio are
classified through a Pipeline in 20 ms chunks, as a source does, plus one 64-window batch (the largest
a pipeline makes). RSS is read after each step; "peak" is VmHWM.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any

from benchmarks._common import load_average, model_note, model_path

CONFIGS = {
    "onnxruntime, defaults (arena + memory pattern)": {"backend": "onnxruntime"},
    "onnxruntime, no memory pattern": {"backend": "onnxruntime", "mem_pattern": False},
    "onnxruntime, no CPU memory arena": {"backend": "onnxruntime", "arena": False},
    "onnxruntime, neither": {"backend": "onnxruntime", "arena": False, "mem_pattern": False},
    "onnxruntime, no prepacking": {"backend": "onnxruntime", "prepacking": False},
    "onnxruntime, no arena, no prepacking": {"backend": "onnxruntime", "arena": False, "prepacking": False},
    "NumPy runtime": {"backend": "numpy"},
}


class _Session:
    """The smallest backend: one onnxruntime session with the options under test."""

    name = "onnxruntime"

    def __init__(self, session: Any) -> None:
        self.session = session
        self.input = session.get_inputs()[0].name

        self.embedding_size = 1 if len(session.get_outputs()) > 1 else 0

    def predict(self, features: Any) -> Any:
        return self.session.run(None, {self.input: features})[0]

    def embed(self, features: Any) -> Any:
        return tuple(self.session.run(None, {self.input: features}))


def child(config: dict[str, object], windows: int) -> dict[str, float]:
    """One measurement, in this (fresh) process."""
    from pathlib import Path  # noqa: PLC0415
    import time  # noqa: PLC0415

    import numpy as np  # noqa: PLC0415

    from benchmarks._common import DATA, pipeline_for, rss_mb  # noqa: PLC0415
    from benchmarks._common.audio import clip_paths, read_clip  # noqa: PLC0415
    from custom_components.sound_sentry.engine import backends  # noqa: PLC0415
    from custom_components.sound_sentry.engine.frontend import FrontEnd  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model_info import ModelInfo  # noqa: PLC0415

    def hwm() -> float:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    path = model_path()
    info = ModelInfo.load(path)
    audio = np.concatenate([read_clip(p) for p in clip_paths(DATA, "background")[:40]])
    audio = np.resize(audio, round((windows * info.hop_s + 2) * 8000))
    pcm = (audio * 32767).astype(np.int16)
    base = rss_mb()
    if config["backend"] == "onnxruntime":
        import onnxruntime as ort  # noqa: PLC0415

        imported = rss_mb()
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        options.enable_cpu_mem_arena = bool(config.get("arena", True))
        options.enable_mem_pattern = bool(config.get("mem_pattern", True))
        if not config.get("prepacking", True):
            options.add_session_config_entry("session.disable_prepacking", "1")
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        backend = _Session(session)
    else:
        imported = rss_mb()
        backend = backends.NumpyBackend(path)
    loaded = rss_mb()
    pipeline = pipeline_for(backend, info)
    cpu = time.process_time()
    n_windows = 0
    for start in range(0, pcm.size, 160):
        n_windows += len(pipeline.process(pcm[start : start + 160]).windows)
    cpu = time.process_time() - cpu
    streamed = rss_mb()
    front_end = FrontEnd(info.front_end)  # the model's input: frames x bands of a window
    window = (front_end.num_frames(info.window_samples), front_end.num_bands)
    backend.predict(np.zeros((64, *window), dtype=np.float32))
    batched = rss_mb()
    return {
        "base": base,
        "import": imported - base,
        "load": loaded - imported,
        "stream": streamed - loaded,
        "batch": batched - streamed,
        "total": batched - base,
        "peak": hwm() - base,
        "ms_per_window": 1000 * cpu / max(1, n_windows),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--windows", type=int, default=400)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child), args.windows)))
        return
    print(
        f"Model: {model_note(model_path())}; {args.windows} windows streamed in 20 ms chunks, then one batch of 64"
    )
    print(f"Load average (1, 5, 15 min): {load_average()}")
    print()
    print(
        "| runtime | import (MB) | load model (MB) | stream (MB) | batch of 64 (MB) | total over numpy+PyAV (MB) "
        "| peak over it (MB) | pipeline CPU per window (ms) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, config in CONFIGS.items():
        out = subprocess.run(
            [sys.executable, "-m", "benchmarks.model_memory", "--windows", str(args.windows), "--child", json.dumps(config)],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"| {name} | {r['import']:.1f} | {r['load']:.1f} | {r['stream']:.1f} | {r['batch']:.1f} | "
            f"{r['total']:.1f} | {r['peak']:.1f} | {r['ms_per_window']:.2f} |"
        )


if __name__ == "__main__":
    main()
