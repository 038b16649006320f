"""Export a ResNetSE to ONNX (BatchNorm folded, softmax output) and to int8 QDQ, with JSON sidecars.

`python -m training.export --random OUT_STEM` writes a seeded, randomly initialised network (with
non-trivial BatchNorm statistics) as OUT_STEM.onnx / .json and OUT_STEM.int8.onnx / .json: the small
test fixtures other parts of the project run.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
import hashlib
import json
from pathlib import Path
import tempfile
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
import torch

from custom_components.sound_sentry.engine.fbank import FbankSettings
from training.audio import LABELS, NUM_FRAMES, NUM_MEL_BINS, SAMPLE_RATE_HZ, WINDOW_SAMPLES
from training.model import ProbabilityModel, ResNetSE, fold_batchnorm

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
DEFAULT_DETECTION: dict[str, Any] = {
    "thresholds": {"babycry": 0.5, "glassbreak": 0.5, "gunshot": 0.5},
    "k": 2,
    "n": 3,
    "hold_s": 1.0,
}


def export_onnx(model: ResNetSE, path: Path) -> None:
    """Write `model` as ONNX: BN folded, input `features` [B,192,24], output softmax `probabilities` [B,4]."""
    wrapped = ProbabilityModel(fold_batchnorm(model)).eval()
    example = torch.zeros(2, NUM_FRAMES, NUM_MEL_BINS)
    # The TorchScript exporter gives a plain, stable op set (Conv, Gemm, ReduceMean, ...) that a small
    # NumPy interpreter can run; BN is already folded, so no BatchNormalization node can appear.
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            wrapped,
            (example,),
            str(raw),
            dynamo=False,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=OPSET,
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            do_constant_folding=True,
        )
        graph = onnx.load(str(raw))
    graph.doc_string = "Sound Sentry ResNetSE (FACTS §4), BatchNorm folded"
    graph.producer_name = "sound-sentry-training"
    onnx.checker.check_model(graph)
    assert not [n for n in graph.graph.node if n.op_type == "BatchNormalization"], "BatchNorm left in graph"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(path))


class _Windows:
    """onnxruntime CalibrationDataReader over an array of feature windows."""

    def __init__(self, windows: npt.NDArray[np.float32], batch: int = 16) -> None:
        self._batches = iter([windows[i : i + batch] for i in range(0, len(windows), batch)])

    def get_next(self) -> dict[str, npt.NDArray[np.float32]] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_int8(float_path: Path, int8_path: Path, calibration: npt.NDArray[np.float32]) -> None:
    """Static int8 QDQ quantisation (symmetric int8 weights per channel, int8 activations) calibrated on windows."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quant_pre_process,
        quantize_static,
    )

    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(int8_path),
            _Windows(calibration),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # Conv and Gemm carry all the multiply-adds; the SE gates, softmax and adds stay float.
            op_types_to_quantize=["Conv", "Gemm", "MatMul"],
            calibrate_method=CalibrationMethod.MinMax,
            extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
        )
    graph = onnx.load(str(int8_path))
    # The pre-processing step declares every onnxruntime domain; keep only those the nodes use.
    used = {node.domain for node in graph.graph.node}
    kept = [entry for entry in graph.opset_import if entry.domain in used or entry.domain == ""]
    del graph.opset_import[:]
    graph.opset_import.extend(kept)
    onnx.checker.check_model(graph)
    graph.doc_string = "Sound Sentry ResNetSE (FACTS §4), int8 QDQ (onnxruntime static quantisation)"
    onnx.save(graph, str(int8_path))


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def sidecar_path(onnx_path: Path) -> Path:
    """`foo.onnx` -> `foo.json`, `foo.int8.onnx` -> `foo.int8.json`."""
    return onnx_path.with_suffix(".json")


def write_sidecar(
    onnx_path: Path,
    *,
    name: str,
    version: str,
    detection: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the JSON sidecar beside `onnx_path` and return it."""
    settings = asdict(FbankSettings())
    sidecar: dict[str, Any] = {
        "name": name,
        "version": version,
        "labels": list(LABELS),
        "sample_rate_hz": SAMPLE_RATE_HZ,
        "window_samples": WINDOW_SAMPLES,
        "fbank": settings,
        "features": {
            "num_frames": NUM_FRAMES,
            "layout": "time x mel",
            "fft_size": 256,
            "window": "povey",
            "remove_dc_offset": True,
            "dither": 0.0,
            "snip_edges": True,
            "use_energy": False,
            "log_floor": "float32 eps",
            "normalise": "per-window mean subtraction per mel bin over time",
        },
        "input": {"name": INPUT_NAME, "shape": ["batch", NUM_FRAMES, NUM_MEL_BINS], "dtype": "float32"},
        "output": {"name": OUTPUT_NAME, "shape": ["batch", len(LABELS)], "dtype": "float32", "softmax": True},
        "detection": detection,
        "sha256": sha256(onnx_path),
    }
    if extra:
        sidecar.update(extra)
    if metrics is not None:
        sidecar["metrics"] = metrics
    sidecar_path(onnx_path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return sidecar


def random_model(seed: int = 0) -> ResNetSE:
    """A seeded random ResNetSE whose BN statistics are non-trivial (so folding is exercised)."""
    torch.manual_seed(seed)
    model = ResNetSE()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d | torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5, generator=generator)
                module.bias.normal_(0.0, 0.2, generator=generator)
        # Spread the logits so that outputs differ visibly between inputs (useful for parity tests).
        model.fc2.weight.mul_(20.0)
        model.train()
        for _ in range(4):  # running statistics from a few batches of FBANK-like inputs
            model(torch.randn(16, NUM_FRAMES, NUM_MEL_BINS, generator=generator) * 3.0)
    return model.eval()


def calibration_windows(count: int, split: str = "train", seed: int = 0) -> npt.NDArray[np.float32]:
    """`count` real feature windows from `split`, balanced over the classes (energy-centred)."""
    from training.audio import energy_centre, features, fit_window, load_audio, read_manifest

    rng = np.random.default_rng(seed)
    clips = [c for c in read_manifest() if c.split == split]
    chosen = []
    for index, label in enumerate(LABELS):
        pool = [c for c in clips if c.label == label]
        take = count // len(LABELS) + (1 if index < count % len(LABELS) else 0)
        chosen += [pool[i] for i in rng.choice(len(pool), size=take, replace=False)]
    out = []
    for clip in chosen:
        samples = load_audio(clip.path)
        out.append(features(fit_window(samples, energy_centre(samples))))
    return np.stack(out).astype(np.float32)


def export_pair(
    model: ResNetSE,
    stem: Path,
    calibration: npt.NDArray[np.float32],
    *,
    name: str,
    version: str,
    detection: dict[str, Any],
    metrics: dict[str, dict[str, Any]] | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, Path]:
    """Write STEM.onnx, STEM.int8.onnx and their sidecars; return the two model paths."""
    float_path = stem.with_name(stem.name + ".onnx")
    int8_path = stem.with_name(stem.name + ".int8.onnx")
    export_onnx(model, float_path)
    quantize_int8(float_path, int8_path, calibration)
    metrics = metrics or {}
    write_sidecar(
        float_path,
        name=name,
        version=version,
        detection=detection,
        metrics=metrics.get("float32"),
        extra=extra,
    )
    write_sidecar(
        int8_path, name=name, version=version, detection=detection, metrics=metrics.get("int8"), extra=extra
    )
    return float_path, int8_path


def main() -> None:
    """Export a random fixture or a trained checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "stem", type=Path, help="output path without .onnx, e.g. tests/fixtures/resnetse_random"
    )
    parser.add_argument("--random", action="store_true", help="export a seeded random network")
    parser.add_argument("--checkpoint", type=Path, help="a state_dict saved by training.train")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--calibration-windows", type=int, default=32)
    args = parser.parse_args()
    if args.random:
        model = random_model(args.seed)
        name, version = "resnetse-random", f"0.0.0+seed{args.seed}"
    elif args.checkpoint:
        model = ResNetSE()
        model.load_state_dict(torch.load(args.checkpoint, map_location="cpu"))
        model.eval()
        name, version = "sound_sentry_resnetse", "dev"
    else:
        parser.error("pass --random or --checkpoint")
    calibration = calibration_windows(args.calibration_windows, seed=args.seed)
    extra = {"note": "randomly initialised test fixture: its outputs mean nothing"} if args.random else None
    for path in export_pair(
        model, args.stem, calibration, name=name, version=version, detection=DEFAULT_DETECTION, extra=extra
    ):
        print(f"wrote {path} ({path.stat().st_size} bytes) and {sidecar_path(path)}")


if __name__ == "__main__":
    main()
