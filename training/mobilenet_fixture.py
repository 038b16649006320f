"""Writes the NumPy runtime's test fixture: mn04's architecture at width 0.1 with seeded random weights.

    TRAIN_MODULE=training.mobilenet_fixture scripts/train [OUT.onnx]

Every kind of layer the accurate model has is there (a block without expansion, 3x3 and 5x5 depthwise
convolutions of stride 1 and 2, blocks with and without squeeze-excitation, ReLU and hard-swish blocks,
residual and plain ones) at a tenth of the width, so the file stays small. BatchNorm's statistics
are those of random windows and the biases are random, and the frame count is symbolic, so that the tests
can compare both runtimes on windows of any length.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

import torch
from torch import nn

from training.audio_paths import REPO_ROOT
from training.export import INPUT_NAME
from training.mobilenet import NUM_BANDS, NUM_FRAMES, PEER, SoundNet, export_onnx

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "mobilenet_random.onnx"
WIDTH = 0.1


def random_network(seed: int = 0) -> SoundNet:
    """mn04's layers at width 0.1, seeded random weights and BatchNorm statistics, a 4-class head."""
    for path in (PEER, PEER / "shim", PEER / "src"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import teacher  # the peer's loader: its model builder

    get_model, _mel = teacher._imports()  # noqa: SLF001
    torch.manual_seed(seed)
    backbone = get_model(num_classes=527, width_mult=WIDTH, strides=(2, 2, 2, 2), head_type="mlp")
    net = SoundNet(backbone)
    net.head = nn.Linear(net.features[-1][0].out_channels, 4)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Linear):  # non-zero biases: zeros would be shared via Identity nodes
                module.bias.normal_(0.0, 0.2)
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 0.2)
                module.momentum = None  # running statistics: the average over the batches below
        # BatchNorm statistics of random windows keep every layer's activations spread, so the
        # output moves with the input (random running statistics make it nearly constant).
        net.train()
        for _ in range(4):
            net.embed(torch.randn(16, NUM_FRAMES, NUM_BANDS) * 2.0)
        net.head.weight.normal_(0.0, 0.2)
    return net.eval()


def main() -> None:
    """Export the fixture, with the frame count made symbolic."""
    import onnx

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("out", type=Path, nargs="?", default=FIXTURE)
    args = parser.parse_args()
    export_onnx(random_network(), args.out)
    model = onnx.load(str(args.out))
    (features,) = [value for value in model.graph.input if value.name == INPUT_NAME]
    features.type.tensor_type.shape.dim[1].dim_param = "frames"
    onnx.checker.check_model(model)
    onnx.save(model, str(args.out))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
