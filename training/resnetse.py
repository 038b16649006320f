"""ResNetSE classifier of the seed model card (FACTS §4): 61,574 parameters, ~10.73 M multiply-adds."""

from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval, fuse_linear_bn_eval

NUM_FRAMES = 192
NUM_MEL_BINS = 24
NUM_CLASSES = 4
BLOCKS = (2, 2, 4, 2)
WIDTHS = (4, 8, 16, 32)
STRIDES = (1, 2, 2, 2)
EXPANSION = 2
SE_REDUCTION = 8


class SqueezeExcite(nn.Module):
    """Channel attention: average pool -> Linear(C, C/8) -> ReLU -> Linear(C/8, C) -> sigmoid -> scale."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION) -> None:
        super().__init__()
        self.fc1 = nn.Linear(channels, channels // reduction)
        self.fc2 = nn.Linear(channels // reduction, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Scale each channel by its learned gate."""
        scale = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class Bottleneck(nn.Module):
    """SE bottleneck: 1x1 -> 3x3 (strided) -> 1x1, BN after each, SE, residual, ReLU."""

    def __init__(self, in_channels: int, planes: int, stride: int) -> None:
        super().__init__()
        out_channels = planes * EXPANSION
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.se = SqueezeExcite(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck plus shortcut."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.se(self.bn3(self.conv3(out)))
        return F.relu(out + self.shortcut(x))


class ResNetSE(nn.Module):
    """Input [B, 192, 24] (time x mel, mean-normalised FBANK); output logits [B, 4]."""

    def __init__(self) -> None:
        super().__init__()
        self.stem_conv = nn.Conv2d(1, WIDTHS[0], 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(WIDTHS[0])
        layers: list[nn.Module] = []
        in_channels = WIDTHS[0]
        for count, width, stride in zip(BLOCKS, WIDTHS, STRIDES, strict=True):
            for index in range(count):
                layers.append(Bottleneck(in_channels, width, stride if index == 0 else 1))
                in_channels = width * EXPANSION
        self.layers = nn.Sequential(*layers)
        pooled = in_channels * (NUM_MEL_BINS // 8)  # 64 channels x 3 mel rows = 192
        self.pool_bn = nn.BatchNorm1d(pooled)
        self.fc1 = nn.Linear(pooled, 64)
        self.fc1_bn = nn.BatchNorm1d(64)
        self.fc2 = nn.Linear(64, NUM_CLASSES)

    def embed(self, features: torch.Tensor) -> torch.Tensor:
        """Pooled 192-dim embedding before the head."""
        x = features.transpose(1, 2).unsqueeze(1)  # [B, 1, 24 mel, 192 time]
        x = F.relu(self.stem_bn(self.stem_conv(x)))
        x = self.layers(x)  # [B, 64, 3 mel, 24 time]
        return x.mean(dim=3).flatten(1)  # mean over time, then 64 channels x 3 mel = [B, 192]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits [B, 4]."""
        return self.fc2(self.fc1_bn(self.fc1(self.pool_bn(self.embed(features)))))


class ProbabilityModel(nn.Module):
    """Export wrapper: softmax over the logits (the ONNX contract's `probabilities`)."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Probabilities [B, 4]."""
        return torch.softmax(self.net(features), dim=-1)


def _fold_bn_into_next_linear(bn: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """Linear(BN(x)) as one Linear: BN is x * a + b per feature in eval mode."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    shift = bn.bias - bn.running_mean * scale
    fused = copy.deepcopy(linear)
    with torch.no_grad():
        fused.weight.copy_(linear.weight * scale[None, :])
        fused.bias.copy_(linear.bias + linear.weight @ shift)
    return fused


def fold_batchnorm(model: ResNetSE) -> ResNetSE:
    """An eval-mode copy with every BatchNorm folded into its neighbouring Conv or Linear."""
    folded = copy.deepcopy(model).eval()
    folded.stem_conv = fuse_conv_bn_eval(folded.stem_conv, folded.stem_bn)
    folded.stem_bn = nn.Identity()  # type: ignore[assignment]
    for block in folded.layers:
        assert isinstance(block, Bottleneck)
        for conv, bn in (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")):
            setattr(block, conv, fuse_conv_bn_eval(getattr(block, conv), getattr(block, bn)))
            setattr(block, bn, nn.Identity())
        if isinstance(block.shortcut, nn.Sequential):
            block.shortcut = fuse_conv_bn_eval(block.shortcut[0], block.shortcut[1])
    folded.fc1 = _fold_bn_into_next_linear(folded.pool_bn, folded.fc1)
    folded.pool_bn = nn.Identity()  # type: ignore[assignment]
    folded.fc1 = fuse_linear_bn_eval(folded.fc1, folded.fc1_bn)
    folded.fc1_bn = nn.Identity()  # type: ignore[assignment]
    return folded


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters (BatchNorm running statistics excluded)."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module) -> int:
    """Multiply-adds of one window in Conv2d and Linear layers (the SE scaling and BN are not counted)."""
    total = 0

    def conv_hook(module: nn.Module, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        kernel = module.kernel_size[0] * module.kernel_size[1] * module.in_channels // module.groups
        total += output[0].numel() * kernel

    def linear_hook(module: nn.Module, _inputs: object, _output: torch.Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += module.in_features * module.out_features

    handles = []
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            handles.append(module.register_forward_hook(conv_hook))
        elif isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(linear_hook))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, NUM_FRAMES, NUM_MEL_BINS))
    model.train(was_training)
    for handle in handles:
        handle.remove()
    return total
