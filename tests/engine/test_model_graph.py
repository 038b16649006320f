"""The compact model's exported network is the seed card's ResNetSE: 61,574 parameters, 10.73 M multiply-adds per window.

Read from the ONNX graph itself (no torch), for the shipped model and the random test fixture, so a
retrained model of another size fails here in both Home Assistant environments.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine.onnx_proto import Graph, decode_model

REPO = Path(__file__).resolve().parents[2]
MODELS = [
    REPO / "custom_components" / "sound_sentry" / "models" / "sound_sentry_resnetse.onnx",
    REPO / "tests" / "fixtures" / "resnetse_random.onnx",
]


def trained_parameters(graph: Graph) -> int:
    """The network's trainable parameters before BatchNorm folding (training/resnetse.py: count_parameters).

    Every Conv was bias-free and followed by a BatchNorm (weight and bias per channel): folding left one
    bias per channel in the graph, so each Conv bias stands for two parameters. The head's two Linears
    were each preceded by a BatchNorm1d of their input width (pool_bn, fc1_bn), folded into them without
    a trace: two parameters per input feature. (The other Gemm nodes are the SE blocks' Linears.)
    """
    inits = graph.initializers
    params = sum(int(array.size) for array in inits.values())
    params += sum(int(inits[node.inputs[2]].size) for node in graph.nodes if node.op_type == "Conv")
    head = [node for node in graph.nodes if node.op_type == "Gemm"][-2:]
    params += sum(2 * int(inits[node.inputs[1]].shape[1]) for node in head)
    return params


def multiply_adds(graph: Graph, features: tuple[int, int]) -> int:
    """Multiply-adds of one window in the Conv and Gemm nodes (training/resnetse.py: count_macs)."""
    inits = graph.initializers
    frames, bins = features
    shapes: dict[str, tuple[int, int, int]] = {}  # 4-D activations: channels, height, width
    total = 0
    for node in graph.nodes:
        if node.op_type == "Unsqueeze" and node.inputs[0] not in shapes:
            shapes[node.outputs[0]] = (1, bins, frames)  # features transposed to [bins, frames], a channel
        elif node.op_type == "Conv":
            weight = inits[node.inputs[1]]
            _, height, width = shapes[node.inputs[0]]
            (kh, kw), (sh, sw) = weight.shape[2:], node.attributes["strides"]
            top, left, bottom, right = node.attributes["pads"]
            out = ((height + top + bottom - kh) // sh + 1, (width + left + right - kw) // sw + 1)
            shapes[node.outputs[0]] = (weight.shape[0], *out)
            total += int(np.prod(weight.shape)) * out[0] * out[1]
        elif node.op_type == "Gemm":
            total += int(inits[node.inputs[1]].size)
        elif node.op_type in {"Relu", "Add", "Mul"} and node.inputs[0] in shapes:
            shapes[node.outputs[0]] = shapes[node.inputs[0]]
    return total


@pytest.mark.parametrize("path", MODELS, ids=lambda path: str(path.relative_to(REPO)))
def test_parameters_and_multiply_adds_match_the_card(path: Path) -> None:
    model = decode_model(path.read_bytes())
    graph = model.graph
    (features,) = graph.inputs
    assert features.shape is not None
    assert features.shape[1:] == (192, 24)
    assert trained_parameters(graph) == 61_574
    # The card's 10.73 M also counts the 4,608 adds of the time pooling (64 channels x 3 x 24 frames).
    macs = multiply_adds(graph, (192, 24))
    assert macs == 10_724_768
    assert round((macs + 64 * 3 * 24) / 1e6, 2) == 10.73
