"""Export a ResNetSE to ONNX (BatchNorm folded, softmax output, float32) with its JSON sidecar.

`python -m training.export --random OUT_STEM` writes a seeded, randomly initialised network (with
non-trivial BatchNorm statistics) as OUT_STEM.onnx / .json: the small test fixture other parts of the
project run. The product ships float32 only: int8 was slower on the CPUs measured, and onnxruntime's
int8 results depend on the CPU's instruction set.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
import tempfile
from typing import Any

import onnx
import torch

from custom_components.sound_sentry.engine.fbank import FbankSettings
from training.audio import NUM_FRAMES, NUM_MEL_BINS, WINDOW_SAMPLES
from training.resnetse import ProbabilityModel, ResNetSE, fold_batchnorm
from training.ship import NON_COMMERCIAL, PLACEHOLDER, write_info

OPSET = 17
INPUT_NAME = "features"
OUTPUT_NAME = "probabilities"
RANDOM_LICENCE = "MIT (Sound Sentry's code): random weights, trained on no audio; a test fixture"


def export_graph(module: torch.nn.Module, path: Path, example: torch.Tensor, description: str) -> None:
    """Write a network that maps `features` [B, ...] to softmax `probabilities` [B, 4] as ONNX, checked.

    The TorchScript exporter gives a plain, stable op set (Conv, Gemm, ReduceMean, ...) that the engine's
    NumPy runtimes run; its eval passes fold BatchNorm into the convolutions, and no BatchNormalization
    node may remain.
    """
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        torch.onnx.export(
            module.eval(),
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
    graph.doc_string = description
    graph.producer_name = "sound-sentry-training"
    onnx.checker.check_model(graph)
    if [n for n in graph.graph.node if n.op_type == "BatchNormalization"]:
        raise RuntimeError("BatchNorm left in the exported graph")
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(graph, str(path))


def export_onnx(model: ResNetSE, path: Path) -> None:
    """Write `model` as ONNX: BN folded, input `features` [B,192,24], output softmax `probabilities` [B,4]."""
    export_graph(
        ProbabilityModel(fold_batchnorm(model)),
        path,
        torch.zeros(2, NUM_FRAMES, NUM_MEL_BINS),
        "Sound Sentry ResNetSE (FACTS §4), BatchNorm folded",
    )


def write_sidecar(
    onnx_path: Path,
    *,
    name: str,
    version: str,
    detection: Mapping[str, Any],
    provenance: dict[str, Any] | None = None,
    licence: str = NON_COMMERCIAL,
) -> None:
    """The sidecar of an exported ResNetSE (the engine's model contract: `ModelInfo`)."""
    write_info(
        onnx_path,
        name=name,
        version=version,
        architecture="resnetse",
        front_end=FbankSettings(),
        window_samples=WINDOW_SAMPLES,
        detection=detection,
        provenance=provenance,
        licence=licence,
    )


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


def export_model(
    model: ResNetSE,
    stem: Path,
    *,
    name: str,
    version: str,
    detection: Mapping[str, Any],
    provenance: dict[str, Any] | None = None,
    licence: str = NON_COMMERCIAL,
) -> Path:
    """Write STEM.onnx and its sidecar; return the model's path."""
    path = stem.with_name(stem.name + ".onnx")
    export_onnx(model, path)
    write_sidecar(
        path, name=name, version=version, detection=detection, provenance=provenance, licence=licence
    )
    return path


def main() -> None:
    """Export a random fixture or a trained checkpoint."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "stem", type=Path, help="output path without .onnx, e.g. tests/fixtures/resnetse_random"
    )
    parser.add_argument("--random", action="store_true", help="export a seeded random network")
    parser.add_argument("--checkpoint", type=Path, help="a state_dict saved by training.train")
    parser.add_argument("--seed", type=int, default=0)
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
    provenance = (
        {"note": "randomly initialised test fixture: its outputs mean nothing"} if args.random else None
    )
    path = export_model(
        model,
        args.stem,
        name=name,
        version=version,
        detection=PLACEHOLDER,
        provenance=provenance,
        licence=RANDOM_LICENCE if args.random else NON_COMMERCIAL,
    )
    print(f"wrote {path} ({path.stat().st_size} bytes) and its sidecar")


if __name__ == "__main__":
    main()
