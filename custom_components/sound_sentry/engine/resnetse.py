"""The ResNetSE classifier as a lean NumPy forward pass, with its weights read from the .onnx file.

The shipped .onnx stays the one model file: `ResNetSE.from_graph()` walks its graph backwards from the
output (`graph_walk.py`), checks that it is this architecture (a 3x3 stem, bottleneck blocks with squeeze-and-excitation
and a 1x1 or identity shortcut, a time-mean head with two linear layers and a softmax; BatchNorm already
folded into the convolutions by the export) and takes the weights. Any other graph is refused with the
node that does not fit, so a retrained model of the same architecture runs with no export step and a
different one fails loudly at load.

The forward pass works channels-first on [C, B, H, W] buffers (B windows, H mel bins, W frames): a 1x1
convolution is one matrix product over all positions of all windows, a 3x3 one gathers its 9 shifted
views (im2col, with the stride) into one buffer and multiplies once. `_Plan` lays the whole pass out once
per thread as a list of NumPy calls on preallocated buffers (about 3 MB).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph_walk import Array, GraphWalker
from .onnx_proto import Graph, Node
from .plan import PlannedNetwork, StepPlan


@dataclass(frozen=True)
class _Conv:
    weight: Array
    """[Cout, Cin] for a 1x1 convolution, [Cout, 9 * Cin] in (ky, kx, Cin) order for a 3x3 one."""
    bias: Array
    """[Cout, 1]."""
    size: int
    stride: int


@dataclass(frozen=True)
class _Block:
    conv1: _Conv
    conv2: _Conv
    conv3: _Conv
    se1: tuple[Array, Array]
    se2: tuple[Array, Array]
    shortcut: _Conv | None
    """A strided or widening 1x1 convolution; None for the identity."""


def _conv(walk: GraphWalker, tensor: str) -> tuple[_Conv, str]:
    """The 1x1 or 3x3 Conv producing `tensor`, in the im2col layout, and the tensor it reads."""
    conv = walk.conv(tensor, (1, 3))
    if conv.group != 1:
        raise walk.fail(conv.node, f"group is {conv.group}, expected 1")
    cout = conv.weight.shape[0]
    # (Cout, Cin, ky, kx) -> (Cout, ky, kx, Cin): the im2col buffer's row order.
    flat = conv.weight.transpose(0, 2, 3, 1).reshape(cout, -1)
    layer = _Conv(np.ascontiguousarray(flat), conv.bias.reshape(-1, 1).copy(), conv.size, conv.stride)
    return layer, conv.node.inputs[0]


class ResNetSE(PlannedNetwork):
    """Mean-normalised FBANK windows [B, frames, mel bins] in, class probabilities [B, classes] out."""

    def __init__(self, stem: _Conv, blocks: list[_Block], fc1: tuple[Array, Array], fc2: tuple[Array, Array]):
        super().__init__(fc2[0].shape[0])
        self.stem, self.blocks, self.fc1, self.fc2 = stem, blocks, fc1, fc2

    @classmethod
    def from_graph(cls, graph: Graph) -> ResNetSE:
        """Check the graph's structure and take its weights; raise UnsupportedModelError if it does not fit."""
        walk = GraphWalker(graph, "ResNetSE")
        fc2, tensor = walk.softmax_head()
        fc1, tensor = walk.gemm(tensor)
        tensor = walk.node(tensor, "Flatten", axis=1).inputs[0]
        head = walk.node(tensor, "ReduceMean", keepdims=0)
        if walk.axes(head) != [3]:
            raise walk.fail(head, "the head must average over time (axis 3)")
        tensor = head.inputs[0]
        blocks: list[_Block] = []
        while True:
            relu = walk.node(tensor, "Relu")
            if relu.inputs[0] in walk.producers and walk.producers[relu.inputs[0]].op_type != "Add":
                break  # the stem's ReLU
            block, tensor = _block(walk, walk.node(relu.inputs[0], "Add"))
            blocks.insert(0, block)
        stem, tensor = _conv(walk, relu.inputs[0])
        unsqueeze = walk.node(tensor, "Unsqueeze")
        axes = walk.axes(unsqueeze)
        transpose = walk.node(unsqueeze.inputs[0], "Transpose", perm=[0, 2, 1])
        if axes != [1] or stem.size != 3 or stem.stride != 1 or transpose.inputs[0] != graph.inputs[0].name:
            raise walk.fail(transpose, "the input must become [batch, 1, mel bins, frames] for a 3x3 stem")
        walk.check_all_used()
        if not blocks:
            raise walk.fail(None, "has no residual blocks")
        return cls(stem, blocks, fc1, fc2)

    def _plan(self, frames: int, bands: int) -> _Plan:
        return _Plan(self, 1, frames, bands)


class _Plan(StepPlan):
    """The forward pass for one input shape as a flat list of NumPy calls on preallocated buffers.

    Built once per input shape and thread: every buffer, view and folded constant is made here, so a
    call runs only the arithmetic, with no slicing, reshaping or allocation. Layout: channels-first
    [C, B, H, W] (H mel bins, W frames); a 3x3 convolution reads a zero-padded buffer that the step
    before writes into.
    """

    def __init__(self, net: ResNetSE, batch: int, frames: int, mels: int) -> None:
        super().__init__()
        self._scratch = np.zeros(0, np.float32)  # im2col buffers: used one at a time, so shared
        padded = np.zeros((1, batch, mels + 2, frames + 2), np.float32)
        self.input = padded[0, :, 1:-1, 1:-1]
        x = self._conv(net.stem, padded, relu=True)
        for block in net.blocks:
            x = self._block(block, x)
        channels, _, height, width = x.shape
        pooled = np.zeros((channels, height, batch), np.float32)  # ONNX Flatten order: C-major, then H
        self._add(np.add.reduce, x, axis=3, out=pooled.transpose(0, 2, 1))  # time sum; 1/W is in fc1
        hidden = self._linear(net.fc1[0] / width, net.fc1[1], pooled.reshape(channels * height, batch))
        self._softmax(self._linear(*net.fc2, hidden))
        self.embedding = hidden

    def _conv(self, conv: _Conv, x: Array, *, relu: bool, into: Array | None = None) -> Array:
        """Input [Cin, B, H, W] (padded by 1 for a 3x3) -> [Cout, B, H', W'], + bias (+ ReLU, into `into`)."""
        cin, batch, height, width = x.shape
        stride = conv.stride
        if conv.size == 1:
            if stride != 1:
                strided = x[:, :, ::stride, ::stride]
                x = np.zeros(strided.shape, np.float32)
                self._add(np.copyto, x, strided)
            out_h, out_w = x.shape[2:]
            columns = x.reshape(cin, -1)
        else:  # im2col: rows (ky, kx, Cin), columns (B, H', W'); 9 slice copies beat one 6-D strided copy
            out_h, out_w = (height - 3) // stride + 1, (width - 3) // stride + 1
            size = 9 * cin * batch * out_h * out_w
            if self._scratch.size < size:
                self._scratch = np.zeros(size, np.float32)
            gathered = self._scratch[:size].reshape(3, 3, cin, batch, out_h, out_w)
            last_y, last_x = stride * (out_h - 1) + 1, stride * (out_w - 1) + 1
            for ky in range(3):
                for kx in range(3):
                    self._add(
                        np.copyto,
                        gathered[ky, kx],
                        x[:, :, ky : ky + last_y : stride, kx : kx + last_x : stride],
                    )
            columns = gathered.reshape(9 * cin, -1)
        out = np.zeros((conv.weight.shape[0], batch, out_h, out_w), np.float32)
        flat = out.reshape(conv.weight.shape[0], -1)
        self._add(np.matmul, conv.weight, columns, out=flat)
        self._add(np.add, flat, conv.bias, out=flat)
        if not relu:
            return out
        target = out if into is None else into
        self._add(np.maximum, out, 0.0, out=target)
        return target

    def _block(self, block: _Block, x: Array) -> Array:
        _, batch, height, width = x.shape
        padded = np.zeros((block.conv1.weight.shape[0], batch, height + 2, width + 2), np.float32)
        self._conv(block.conv1, x, relu=True, into=padded[:, :, 1:-1, 1:-1])
        h = self._conv(block.conv2, padded, relu=True)
        h = self._conv(block.conv3, h, relu=False)
        channels, _, out_h, out_w = h.shape
        # Squeeze-and-excitation: a gate per channel from the mean over all positions (1/(H W) is in se1).
        sums = np.zeros((channels, batch), np.float32)
        self._add(np.add.reduce, h.reshape(channels, batch, -1), axis=2, out=sums)
        hidden = self._linear(block.se1[0] / (out_h * out_w), block.se1[1], sums)
        self._add(np.maximum, hidden, 0.0, out=hidden)
        gate = self._linear(-block.se2[0], -block.se2[1], hidden)  # sigmoid(z) = 1 / (1 + exp(-z))
        self._add(np.exp, gate, out=gate)
        self._add(np.add, gate, 1.0, out=gate)
        self._add(np.reciprocal, gate, out=gate)
        self._add(np.multiply, h, gate[:, :, None, None], out=h)
        skip = x if block.shortcut is None else self._conv(block.shortcut, x, relu=False)
        self._add(np.add, h, skip, out=h)
        self._add(np.maximum, h, 0.0, out=h)
        return h


def _block(walk: GraphWalker, add: Node) -> tuple[_Block, str]:
    """One residual block, from its Add back to its input: (block, input tensor)."""
    branches = [walk.producers.get(name) for name in add.inputs]
    if len(add.inputs) != 2:
        raise walk.fail(add, "needs two inputs")
    mul_index = next((i for i, n in enumerate(branches) if n is not None and n.op_type == "Mul"), None)
    if mul_index is None:
        raise walk.fail(add, "one input must be the squeeze-and-excitation Mul")
    mul = walk.node(add.inputs[mul_index], "Mul")
    skip = add.inputs[1 - mul_index]
    conv3_out, gate = mul.inputs
    if walk.producers.get(conv3_out) is None or walk.producers[conv3_out].op_type != "Conv":
        conv3_out, gate = gate, conv3_out
    se1, se2 = walk.squeeze_excitation(gate, conv3_out)
    conv3, tensor = _conv(walk, conv3_out)
    conv2, tensor = _conv(walk, walk.node(tensor, "Relu").inputs[0])
    conv1, block_input = _conv(walk, walk.node(tensor, "Relu").inputs[0])
    shortcut = None
    if skip != block_input:
        shortcut, source = _conv(walk, skip)
        if source != block_input or shortcut.size != 1:
            raise walk.fail(
                walk.producers[skip], "the shortcut must be a 1x1 convolution of the block's input"
            )
    if conv1.size != 1 or conv2.size != 3 or conv3.size != 1 or conv1.stride != 1 or conv3.stride != 1:
        raise walk.fail(add, "a block is 1x1, 3x3 (stride 1 or 2), 1x1 convolutions")
    if (shortcut.stride if shortcut else 1) != conv2.stride:
        raise walk.fail(add, "the shortcut's stride must match the 3x3 convolution's")
    return _Block(conv1, conv2, conv3, se1, se2, shortcut), block_input
