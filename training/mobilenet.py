"""The accurate model's network: EfficientAT mn04 (AudioSet-pretrained), a 4-class head, its ONNX export.

mn04 hears the native 8 kHz log mel here, with a head for Sound Sentry's four classes.

`SoundNet` takes the engine's log mel windows [B, frames, bands] (engine/logmel.py), runs mn04's
feature layers (stem, 15 inverted-residual blocks, the 1x1 conv to 384 channels), averages over
frequency and time into a 384-d embedding and maps it to four logits. It keeps mn04's own AudioSet
classifier (527 labels) beside the new head: training uses it as an auxiliary output, distilled towards
the frozen network's AudioSet outputs, so that what AudioSet knows (baby laughter is not a cry,
jackhammers are not gunshots) stays in the embedding. The export drops it.

The backbone lives in ../shared/peers/efficientat (MIT); it is imported from there at training time.
"""

from __future__ import annotations

from pathlib import Path
import sys

import torch
from torch import nn

from custom_components.sound_sentry.engine.logmel import LogMelSettings
from training.audio_paths import REPO_ROOT

PEER = REPO_ROOT.parent / "shared" / "peers" / "efficientat"
NUM_FRAMES = 200
"""Frames per window: 200 x 10 ms (16,176 samples, 2.02 s), EfficientAT's 2 s windows."""
NUM_BANDS = LogMelSettings().num_bands
EMBEDDING = 384


def window_samples(frames: int = NUM_FRAMES) -> int:
    """Samples in a window of `frames` log mel frames."""
    s = LogMelSettings()
    return s.fft_size + (frames - 1) * s.frame_shift


def load_pretrained() -> nn.Module:
    """mn04 with its AudioSet weights (eval mode), from the peer folder."""
    for path in (PEER, PEER / "shim", PEER / "src"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))
    import teacher  # the peer's loader: strict weights, CPU

    model, _mel = teacher.load()
    return model


class _ChannelSE(nn.Module):
    """mn04's concurrent squeeze-excitation with its one (channel) branch: the same arithmetic, plain ops."""

    def __init__(self, concurrent: nn.Module) -> None:
        super().__init__()
        (self.se,) = concurrent.conc_se_layers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = x.mean(dim=(2, 3))
        scale = torch.sigmoid(self.se.fc2(torch.relu(self.se.fc1(scale))))
        return x * scale[:, :, None, None]


def _plain_se(module: nn.Module) -> None:
    for name, child in module.named_children():
        if type(child).__name__ == "ConcurrentSEBlock":
            if len(child.conc_se_layers) != 1:
                raise ValueError("only channel squeeze-excitation is supported")
            setattr(module, name, _ChannelSE(child))
        else:
            _plain_se(child)


class SoundNet(nn.Module):
    """Log mel windows [B, frames, bands] -> logits [B, 4] (and AudioSet logits [B, 527] for training)."""

    def __init__(self, pretrained: nn.Module | None = None, num_classes: int = 4) -> None:
        super().__init__()
        net = pretrained if pretrained is not None else load_pretrained()
        _plain_se(net.features)
        self.features = net.features
        self.audioset = net.classifier
        self.head = nn.Linear(EMBEDDING, num_classes)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """The 384-d embedding of windows [B, frames, bands]."""
        x = self.features(features.transpose(1, 2).unsqueeze(1))
        return x.mean(dim=(2, 3))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Our four classes' logits and mn04's AudioSet logits."""
        embedding = self.embed(features)
        return self.head(embedding), self.audioset(embedding[:, :, None, None])


class _Probabilities(nn.Module):
    def __init__(self, net: SoundNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.net.head(self.net.embed(features)), dim=1)


def export_onnx(net: SoundNet, path: Path, frames: int = NUM_FRAMES, bands: int = NUM_BANDS) -> None:
    """Write the network as ONNX: input `features` [B, frames, bands], output softmax `probabilities` [B, 4].

    Any band count works (the network is convolutional): the front end's `num_bands` decides.

    BatchNorm is folded into the convolutions by the TorchScript exporter's eval passes, so the graph
    holds Conv, HardSwish, Relu, ReduceMean, Gemm/MatMul, Sigmoid, Mul, Add and Softmax: what the engine's
    NumPy runtime (engine/mobilenet.py) runs.
    """
    from training.export import export_graph

    export_graph(
        _Probabilities(net),
        path,
        torch.zeros(2, frames, bands),
        "Sound Sentry accurate model: EfficientAT mn04 (AudioSet) fine-tuned, BatchNorm folded",
    )


def export_taught(path: Path, bands: int = NUM_BANDS) -> None:
    """The graph taught sounds read (engine/taught.py): the pretrained mn04, unchanged, and its `embedding`.

    mn04's AudioSet feature layers and their 384-d mean (no fine-tuning: it tells apart far more sounds
    than the fine-tuned one, docs/taught-sounds.md), with a one-class zero head so that the graph has the
    softmax `probabilities` output both runtimes expect (always 1; nothing reads it).
    """
    from training.temporal import with_embedding_output

    net = SoundNet(num_classes=1).eval()
    with torch.no_grad():
        net.head.weight.zero_()
        net.head.bias.zero_()
    export_onnx(net, path, bands=bands)
    with_embedding_output(path, path)


def random_head(seed: int = 0) -> SoundNet:
    """The pretrained backbone with a seeded random head, spread so outputs differ visibly (parity tests)."""
    torch.manual_seed(seed)
    net = SoundNet().eval()
    with torch.no_grad():
        net.head.weight.normal_(0.0, 0.5)
        net.head.bias.zero_()
    return net


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description="export the pretrained mn04 with a random 4-class head (runtime tests; with --embedding, the "
        "AudioSet embedding that benchmarks.few_shot --network compares with the fine-tuned one)"
    )
    parser.add_argument("out", type=Path)
    parser.add_argument("--bands", type=int, default=NUM_BANDS, help="mel bands of the front end it is fed")
    parser.add_argument("--embedding", action="store_true", help="add the `embedding` output")
    parser.add_argument(
        "--taught",
        action="store_true",
        help="write the graph taught sounds read instead (`export_taught`: the pretrained embedding, a dummy head)",
    )
    args = parser.parse_args()
    if args.taught:
        export_taught(args.out, bands=args.bands)
    else:
        export_onnx(random_head(), args.out, bands=args.bands)
    if args.embedding and not args.taught:
        from training.temporal import with_embedding_output

        with_embedding_output(args.out, args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
