"""Reading a known architecture out of a decoded ONNX graph, for the NumPy forward passes.

`GraphWalker` follows the graph backwards from a tensor, checking each producer's operator and
attributes and taking its constant weights; every mismatch becomes an `UnsupportedModelError` naming the
node that does not fit. `resnetse.py` and `mobilenet.py` describe their architectures with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .onnx_proto import Graph, Node

Array = npt.NDArray[np.float32]


class UnsupportedModelError(ValueError):
    """The graph is not the architecture a NumPy forward pass runs."""


@dataclass(frozen=True)
class ConvNode:
    """A Conv with 'same' padding, no dilation and equal strides, as the graph has it."""

    node: Node
    weight: Array
    """[Cout, Cin / group, k, k]."""
    bias: Array
    """[Cout]."""
    group: int
    stride: int

    @property
    def size(self) -> int:
        """The kernel's height and width."""
        return int(self.weight.shape[2])


class GraphWalker:
    """Follows the graph backwards from a tensor, checking each producer's operator and attributes."""

    def __init__(self, graph: Graph, architecture: str) -> None:
        self.graph = graph
        self.architecture = architecture
        self.producers = {out: node for node in graph.nodes for out in node.outputs}
        self.order = {id(node): index for index, node in enumerate(graph.nodes)}
        self.used: set[int] = set()

    def fail(self, node: Node | None, reason: str) -> UnsupportedModelError:
        """The error for `node` (or the whole graph) not fitting the architecture."""
        where = f"node {node.name or node.outputs[0]!r} ({node.op_type})" if node else "the graph"
        return UnsupportedModelError(f"not a {self.architecture} graph: {where}: {reason}")

    def op(self, tensor: str) -> str | None:
        """The operator computing `tensor`, or None for an input or initializer."""
        node = self.producers.get(tensor)
        return node.op_type if node else None

    def node(self, tensor: str, op: str, **attributes: Any) -> Node:
        """The node computing `tensor`, which must be `op` with these attributes (absent means default)."""
        node = self.producers.get(tensor)
        if node is None:
            raise self.fail(None, f"{tensor!r} should be computed by {op}, but it is an input or initializer")
        if node.op_type != op or node.domain not in ("", "ai.onnx"):
            raise self.fail(node, f"expected {op}")
        for key, value in attributes.items():
            if node.attributes.get(key, value) != value:
                raise self.fail(node, f"{key} is {node.attributes.get(key)!r}, expected {value!r}")
        self.used.add(id(node))
        return node

    def weight(self, node: Node, index: int) -> Array:
        """Input `index` of `node`, which must be a float32 initializer."""
        if index >= len(node.inputs) or node.inputs[index] not in self.graph.initializers:
            raise self.fail(node, f"input {index} must be a constant weight")
        value = self.graph.initializers[node.inputs[index]]
        if value.dtype != np.float32:
            raise self.fail(node, f"weight {node.inputs[index]!r} is {value.dtype}, only float32 runs here")
        return value

    def constant(self, tensor: str) -> npt.NDArray[Any]:
        """An initializer or the value of a Constant node."""
        if tensor in self.graph.initializers:
            return self.graph.initializers[tensor]
        node = self.node(tensor, "Constant")
        return np.asarray(node.attributes.get("value"))

    def axes(self, node: Node) -> list[int]:
        """The `axes` of an Unsqueeze or Reduce node: an attribute (older opsets) or a constant input."""
        axes = node.attributes.get("axes")
        if axes is None:
            axes = self.constant(node.inputs[1]).reshape(-1) if len(node.inputs) > 1 else []
        return [int(axis) for axis in axes]

    def conv(self, tensor: str, sizes: tuple[int, ...]) -> ConvNode:
        """The Conv computing `tensor`: a square kernel of one of `sizes`, 'same' padding, stride 1 or 2."""
        node = self.node(tensor, "Conv")
        weight = self.weight(node, 1)
        cout, _, kh, kw = weight.shape if weight.ndim == 4 else (0, 0, 0, 0)
        if kh != kw or kh not in sizes:
            sizes_text = " and ".join(f"{size}x{size}" for size in sizes)
            raise self.fail(node, f"only {sizes_text} convolutions run here, not weight {weight.shape}")
        strides = node.attributes.get("strides", [1, 1])
        pad = kh // 2
        if (
            len(strides) != 2
            or strides[0] != strides[1]
            or strides[0] not in (1, 2)
            or list(node.attributes.get("pads", [0] * 4)) != [pad] * 4
            or list(node.attributes.get("dilations", [1, 1])) != [1, 1]
            or node.attributes.get("auto_pad", "NOTSET") not in ("NOTSET", b"NOTSET")
        ):
            raise self.fail(node, "needs equal strides of 1 or 2, 'same' padding and no dilation")
        bias = self.weight(node, 2) if len(node.inputs) > 2 else np.zeros(cout, np.float32)
        if bias.shape != (cout,):
            raise self.fail(node, f"bias {bias.shape} does not match weight {weight.shape}")
        return ConvNode(node, weight, bias, int(node.attributes.get("group", 1)), int(strides[0]))

    def gemm(self, tensor: str) -> tuple[tuple[Array, Array], str]:
        """The Gemm computing `tensor` (x W^T + b): ((W [out, in], b [out, 1]), the tensor it reads)."""
        node = self.node(tensor, "Gemm", alpha=1.0, beta=1.0, transA=0, transB=1)
        weight = self.weight(node, 1)
        bias = self.weight(node, 2) if len(node.inputs) > 2 else np.zeros(weight.shape[0], np.float32)
        return (np.ascontiguousarray(weight), bias.reshape(-1, 1).copy()), node.inputs[0]

    def softmax_head(self) -> tuple[tuple[Array, Array], str]:
        """The graph's output, a Softmax over the classes of a Gemm: ((W, b), the tensor it reads).

        A second output, if any, must be that tensor: the window's embedding (see `backends.EMBEDDING_OUTPUT`).
        """
        if len(self.graph.inputs) != 1 or len(self.graph.outputs) not in (1, 2):
            raise self.fail(None, "needs exactly one input and one or two outputs")
        softmax = self.node(self.graph.outputs[0].name, "Softmax")
        if softmax.attributes.get("axis", -1) not in (-1, 1):
            raise self.fail(softmax, "must be over the classes")
        head = self.gemm(softmax.inputs[0])
        if len(self.graph.outputs) == 2 and self.graph.outputs[1].name != head[1]:
            raise self.fail(None, "its second output must be what the softmax head's linear layer reads")
        return head

    def squeeze_excitation(self, gate: str, x: str) -> tuple[tuple[Array, Array], tuple[Array, Array]]:
        """The squeeze-excitation gate computing `gate` from `x`: its linear layers (squeeze, excitation).

        The gate is Unsqueeze(Unsqueeze(Sigmoid(Gemm(Relu(Gemm(ReduceMean(x))))))), [B, C, 1, 1].
        """
        tensor = gate
        for dims in (3, 2):  # backwards: the outer Unsqueeze makes [B, C, 1, 1] from [B, C, 1]
            unsqueeze = self.node(tensor, "Unsqueeze")
            axes = self.axes(unsqueeze)
            if len(axes) != 1 or axes[0] not in (dims, -1):
                raise self.fail(unsqueeze, f"must add axis {dims} (got {axes})")
            tensor = unsqueeze.inputs[0]
        excitation, tensor = self.gemm(self.node(tensor, "Sigmoid").inputs[0])
        squeeze, tensor = self.gemm(self.node(tensor, "Relu").inputs[0])
        mean = self.node(tensor, "ReduceMean", keepdims=0)
        if self.axes(mean) not in ([2, 3], [-2, -1]) or mean.inputs[0] != x:
            raise self.fail(mean, "squeeze-excitation must average its input over bands and frames")
        if squeeze[0].shape[1] != excitation[0].shape[0] or squeeze[0].shape[0] != excitation[0].shape[1]:
            raise self.fail(mean, "the squeeze-excitation's linear layers do not fit together")
        return squeeze, excitation

    def check_all_used(self) -> None:
        """Refuse a graph with nodes that the walk did not account for."""
        unused = [node.op_type for node in self.graph.nodes if id(node) not in self.used]
        if unused:
            raise self.fail(None, f"has nodes outside the architecture: {', '.join(unused)}")
