"""The accurate model's MobileNetV3-style network (EfficientAT mn04) as a lean NumPy forward pass.

`MobileNet.from_graph()` walks the exported graph backwards from the output and checks that it is this
architecture: a 3x3 stem convolution with hard-swish; inverted residual blocks (an optional 1x1 expansion,
a 3x3 or 5x5 depthwise convolution of stride 1 or 2, optional channel squeeze-excitation, a 1x1
projection, a residual Add when the shapes match; ReLU or hard-swish); a 1x1 convolution with
hard-swish, the mean over frequency and time, one linear layer and a softmax. BatchNorm is already
folded into the convolutions by the export. Any other graph is refused with the node that does not fit.

The forward pass works channels-first on [C, H, W] buffers, one window at a time (H bands, W frames):
a 1x1 convolution is one matrix product over all positions; a depthwise k x k one copies its k*k
shifted views of a zero-padded buffer (for stride 2, of its four even/odd phases) and multiplies each
channel's taps in one stacked matrix product, which measured 2-3x faster than k*k multiply-adds. The
padded buffers are laid out so that every view is one contiguous run per channel. Hard-swish is
x * clip(x + 3, 0, 6), its 1/6 folded into the next linear layer's weights where that layer is its
only reader. `_Plan` lays the pass out once per thread and input shape as a list of NumPy calls on
preallocated buffers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .graph_walk import Array, GraphWalker
from .onnx_proto import Graph, Node
from .plan import PlannedNetwork, StepPlan

Activation = Literal["Relu", "HardSwish"]
_ACTIVATIONS = ("Relu", "HardSwish")


@dataclass(frozen=True)
class _Pointwise:
    """A 1x1 convolution."""

    weight: Array
    """[Cout, Cin]."""
    bias: Array
    """[Cout, 1]."""


@dataclass(frozen=True)
class _Depthwise:
    weight: Array
    """[C, k * k] in (ky, kx) order."""
    bias: Array
    """[C, 1]."""
    size: int
    stride: int


@dataclass(frozen=True)
class _Block:
    """An inverted residual block."""

    expand: _Pointwise | None
    expand_activation: Activation
    depthwise: _Depthwise
    activation: Activation
    se: tuple[tuple[Array, Array], tuple[Array, Array]] | None
    """Squeeze-excitation's two linear layers ([S, C], [S, 1]) and ([C, S], [C, 1]); None without."""
    project: _Pointwise
    residual: bool

    @property
    def in_channels(self) -> int:
        """Channels the block reads."""
        return int(self.expand.weight.shape[1] if self.expand else self.depthwise.weight.shape[0])


@dataclass(frozen=True)
class _Stem:
    weight: Array
    """[Cout, 9]: a 3x3 convolution of the one-channel input, in (ky, kx) order."""
    bias: Array
    stride: int
    activation: Activation


class MobileNet(PlannedNetwork):
    """Log mel windows [B, frames, bands] in, class probabilities [B, classes] out."""

    def __init__(
        self,
        stem: _Stem,
        blocks: list[_Block],
        last: tuple[_Pointwise, Activation],
        head: tuple[Array, Array],
    ) -> None:
        super().__init__(head[0].shape[0])
        self.stem, self.blocks, self.last, self.head = stem, blocks, last, head

    @classmethod
    def from_graph(cls, graph: Graph) -> MobileNet:
        """Check the graph's structure and take its weights; raise UnsupportedModelError if it does not fit."""
        walk = GraphWalker(graph, "MobileNet")
        head, tensor = walk.softmax_head()
        pool = walk.node(tensor, "ReduceMean", keepdims=0)
        if walk.axes(pool) not in ([2, 3], [-2, -1]):
            raise walk.fail(pool, "the head must average over bands and frames (axes 2, 3)")
        last_activation, tensor = _activation(walk, pool.inputs[0])
        last = _pointwise(walk, tensor)
        tensor = last.node.inputs[0]
        blocks: list[_Block] = []
        while not _is_activated_conv(walk, tensor, 3):  # the stem
            block, tensor = _block(walk, tensor)
            blocks.insert(0, block)
        stem_activation, tensor = _activation(walk, tensor)
        stem = walk.conv(tensor, (3,))
        unsqueeze = walk.node(stem.node.inputs[0], "Unsqueeze")
        transpose = walk.node(unsqueeze.inputs[0], "Transpose", perm=[0, 2, 1])
        if (
            walk.axes(unsqueeze) != [1]
            or stem.group != 1
            or stem.weight.shape[1] != 1
            or transpose.inputs[0] != graph.inputs[0].name
        ):
            raise walk.fail(stem.node, "the input must become [batch, 1, bands, frames] for a 3x3 stem")
        walk.check_all_used()
        if not blocks:
            raise walk.fail(None, "has no inverted residual blocks")
        channels = stem.weight.shape[0]
        for index, block in enumerate(blocks):
            if block.in_channels != channels:
                raise walk.fail(None, f"block {index} reads {block.in_channels} channels, not {channels}")
            channels = block.project.weight.shape[0]
        if last.weight.shape[1] != channels or head[0].shape[1] != last.weight.shape[0]:
            raise walk.fail(last.node, "its channels do not match the last block and the linear layer")
        stem_weight = stem.weight.reshape(stem.weight.shape[0], 9).copy()
        return cls(
            _Stem(stem_weight, stem.bias.reshape(-1, 1).copy(), stem.stride, stem_activation),
            blocks,
            (_Pointwise(_flat(last.weight), last.bias.reshape(-1, 1).copy()), last_activation),
            head,
        )

    def _plan(self, frames: int, bands: int) -> _Plan:
        return _Plan(self, frames, bands)


@dataclass(frozen=True)
class _PointwiseNode:
    node: Node
    weight: Array
    bias: Array


def _flat(weight: Array) -> Array:
    return np.ascontiguousarray(weight.reshape(weight.shape[0], -1))


def _pointwise(walk: GraphWalker, tensor: str) -> _PointwiseNode:
    conv = walk.conv(tensor, (1,))
    if conv.group != 1 or conv.stride != 1:
        raise walk.fail(conv.node, "a 1x1 convolution here has stride 1 and one group")
    return _PointwiseNode(conv.node, conv.weight, conv.bias)


def _activation(walk: GraphWalker, tensor: str) -> tuple[Activation, str]:
    op = walk.op(tensor)
    kind: Activation = "HardSwish" if op == "HardSwish" else "Relu"
    return kind, walk.node(tensor, kind).inputs[0]


def _is_activated_conv(walk: GraphWalker, tensor: str, kernel: int) -> bool:
    """Whether `tensor` is an activation of a `kernel` x `kernel` convolution with one group.

    With kernel 3 that is the stem's output (blocks' 3x3 convolutions are depthwise); with kernel 1, a
    block's expansion.
    """
    activation = walk.producers.get(tensor)
    if activation is None or activation.op_type not in _ACTIVATIONS:
        return False
    conv = walk.producers.get(activation.inputs[0])
    weight = walk.graph.initializers.get(conv.inputs[1]) if conv and len(conv.inputs) > 1 else None
    return (
        conv is not None
        and conv.op_type == "Conv"
        and weight is not None
        and weight.shape[2:] == (kernel, kernel)
        and conv.attributes.get("group", 1) == 1
    )


def _squeeze_excitation(
    walk: GraphWalker, mul: Node
) -> tuple[tuple[tuple[Array, Array], tuple[Array, Array]], str]:
    """The gate of Mul(x, Unsqueeze(Unsqueeze(Sigmoid(Gemm(Relu(Gemm(ReduceMean(x)))))))): (layers, x)."""
    if len(mul.inputs) != 2:
        raise walk.fail(mul, "needs two inputs")
    x, gate = mul.inputs
    if walk.op(x) == "Unsqueeze":
        x, gate = gate, x
    fc1, fc2 = walk.squeeze_excitation(gate, x)
    return (fc1, fc2), x


def _block(walk: GraphWalker, tensor: str) -> tuple[_Block, str]:
    """One inverted residual block, from its output back to its input: (block, input tensor)."""
    add = walk.node(tensor, "Add") if walk.op(tensor) == "Add" else None
    skip = None
    if add is not None:
        if len(add.inputs) != 2:
            raise walk.fail(add, "needs two inputs")
        # The block's branch is computed after its input: the later of the two operands.
        order = [walk.order.get(id(walk.producers.get(name)), -1) for name in add.inputs]
        branch = int(order[1] > order[0])
        tensor, skip = add.inputs[branch], add.inputs[1 - branch]
    project = _pointwise(walk, tensor)
    tensor = project.node.inputs[0]
    se = None
    if walk.op(tensor) == "Mul":
        se, tensor = _squeeze_excitation(walk, walk.node(tensor, "Mul"))
    activation, tensor = _activation(walk, tensor)
    depthwise = walk.conv(tensor, (3, 5))
    channels = depthwise.weight.shape[0]
    if depthwise.group != channels or depthwise.weight.shape[1] != 1:
        raise walk.fail(
            depthwise.node, "a block's k x k convolution must be depthwise (one group per channel)"
        )
    tensor = depthwise.node.inputs[0]
    expand, expand_activation = None, activation
    if _is_activated_conv(walk, tensor, 1):  # an expansion
        expand_activation, tensor = _activation(walk, tensor)
        expand_node = _pointwise(walk, tensor)
        expand = _Pointwise(_flat(expand_node.weight), expand_node.bias.reshape(-1, 1).copy())
        tensor = expand_node.node.inputs[0]
        if expand.weight.shape[0] != channels:
            raise walk.fail(expand_node.node, "its channels do not match the depthwise convolution's")
    if project.weight.shape[1] != channels or (se is not None and se[0][0].shape[1] != channels):
        raise walk.fail(project.node, "its channels do not match the depthwise convolution's")
    if add is not None and (skip != tensor or depthwise.stride != 1):
        raise walk.fail(add, "a residual Add must add the block's input to a stride-1 branch")
    block = _Block(
        expand=expand,
        expand_activation=expand_activation,
        depthwise=_Depthwise(
            _flat(depthwise.weight),
            depthwise.bias.reshape(-1, 1).copy(),
            depthwise.size,
            depthwise.stride,
        ),
        activation=activation,
        se=se,
        project=_Pointwise(_flat(project.weight), project.bias.reshape(-1, 1).copy()),
        residual=add is not None,
    )
    return block, tensor


def _out_size(size: int, stride: int) -> int:
    return (size - 1) // stride + 1  # 'same' padding


class _Plan(StepPlan):
    """The forward pass for one input shape as a flat list of NumPy calls on preallocated buffers.

    Built once per input shape and thread: every buffer, view and folded constant is made here, so a
    call runs only the arithmetic. Layout: channels-first [C, H, W] (H bands, W frames), one window.
    """

    def __init__(self, net: MobileNet, frames: int, bands: int) -> None:
        super().__init__()
        self._scratch = np.zeros(0, np.float32)  # depthwise tap buffers: used one at a time, so shared
        stem = net.stem
        padded = np.zeros((bands + 2, frames + 2), np.float32)
        self.input = padded[1:-1, 1:-1]
        height, width = _out_size(bands, stem.stride), _out_size(frames, stem.stride)
        taps = self._gather(padded[None], 3, stem.stride, height, width)
        x = np.zeros((stem.weight.shape[0], height, width), np.float32)
        self._linear(stem.weight, stem.bias, taps.reshape(9, -1), x.reshape(x.shape[0], -1))
        self._activate(stem.activation, x, x, exact=True)  # the first block may add it back: unscaled
        for block in net.blocks:
            x = self._block(block, x)
        (last, activation), (head_weight, head_bias) = net.last, net.head
        channels, height, width = last.weight.shape[0], x.shape[1], x.shape[2]
        y = self._pointwise(last.weight, last.bias, x)
        self._activate(activation, y, y, exact=False)
        sums = np.zeros((channels, 1), np.float32)
        self._add(np.add.reduce, y.reshape(channels, -1), axis=1, keepdims=True, out=sums)
        scale = _scale(activation) / (height * width)  # the mean's 1/(H W) and hard-swish's 1/6
        self._softmax(self._linear(head_weight * scale, head_bias, sums))
        self.embedding = np.zeros((channels, 1), np.float32)
        self._add(np.multiply, sums, scale, out=self.embedding)

    def _pointwise(self, weight: Array, bias: Array, x: Array) -> Array:
        """1x1 convolution of [Cin, H, W] (contiguous) -> [Cout, H, W], with the bias."""
        out = np.zeros((weight.shape[0], *x.shape[1:]), np.float32)
        self._linear(weight, bias, x.reshape(x.shape[0], -1), out.reshape(out.shape[0], -1))
        return out

    def _activate(self, kind: Activation, x: Array, out: Array, *, exact: bool) -> None:
        """ReLU, or hard-swish x * clip(x + 3, 0, 6) (times 1/6 only if `exact`: else the reader folds it)."""
        if kind == "Relu":
            self._add(np.maximum, x, 0.0, out=out)
            return
        clipped = np.zeros(x.shape, np.float32)
        self._add(np.add, x, 3.0, out=clipped)
        self._add(np.clip, clipped, 0.0, 6.0, out=clipped)
        self._add(np.multiply, x, clipped, out=out)
        if exact:
            self._add(np.multiply, out, np.float32(1 / 6), out=out)

    def _taps(self, channels: int, count: int, length: int) -> Array:
        """A [C, count, length] buffer for gathered taps (shared: used by one convolution at a time)."""
        size = channels * count * length
        if self._scratch.size < size:
            self._scratch = np.zeros(size, np.float32)
        return self._scratch[:size].reshape(channels, count, length)

    def _gather(self, padded: Array, size: int, stride: int, height: int, width: int) -> Array:
        """The k*k shifted views (with the stride) of a padded [C, H + 2p, W + 2p] buffer: [C, k*k, H' W']."""
        channels = padded.shape[0]
        taps = self._taps(channels, size * size, height * width)
        last_y, last_x = stride * (height - 1) + 1, stride * (width - 1) + 1
        for ky in range(size):
            for kx in range(size):
                view = padded[:, ky : ky + last_y : stride, kx : kx + last_x : stride]
                self._add(np.copyto, taps[:, ky * size + kx].reshape(view.shape), view)
        return taps

    def _block(self, block: _Block, x: Array) -> Array:
        dw = block.depthwise
        channels, (_, height, width) = dw.weight.shape[0], x.shape
        pad, half = dw.size // 2, (dw.size - 1) // 2
        # Zero-padded input buffers laid out so that each tap reads one contiguous run per channel,
        # [C, H' row], whose last (row - W') columns of each output row are discarded.
        if dw.stride == 1:
            # Rows share their padding (a row's right padding is the next one's left).
            out_h, out_w, row = height, width, width + pad
            flat = np.zeros((1, channels, (height + 2 * pad) * row + 2 * pad), np.float32)
            padded = flat[0, :, : (height + 2 * pad) * row].reshape(channels, height + 2 * pad, row)
            starts = [(0, ky * row + kx) for ky in range(dw.size) for kx in range(dw.size)]
        else:
            # Stride 2: four phases (even/odd rows x even/odd columns of the padded input); tap (ky, kx)
            # reads phase (ky % 2, kx % 2) shifted by (ky // 2, kx // 2).
            out_h, out_w = _out_size(height, 2), _out_size(width, 2)
            row = out_w + half
            flat = np.zeros((4, channels, (out_h + half) * row + half), np.float32)
            starts = [
                ((ky % 2) * 2 + kx % 2, (ky // 2) * row + kx // 2)
                for ky in range(dw.size)
                for kx in range(dw.size)
            ]
        if block.expand is None:
            source, dw_weight = x, dw.weight
        else:
            source = self._pointwise(block.expand.weight, block.expand.bias, x)
            dw_weight = dw.weight * _scale(block.expand_activation)
        if dw.stride == 1:
            interior = padded[:, pad : pad + height, pad:]
            if block.expand is None:
                self._add(np.copyto, interior, source)
            else:
                self._activate(block.expand_activation, source, interior, exact=False)
        else:
            if block.expand is not None:
                self._activate(block.expand_activation, source, source, exact=False)
            phases = flat[:, :, : (out_h + half) * row].reshape(4, channels, out_h + half, row)
            for phase_y in (0, 1):
                (row_at, y), rows = _phase(pad, phase_y, height, out_h + half)
                for phase_x in (0, 1):
                    (column_at, x_at), columns = _phase(pad, phase_x, width, row)
                    target = phases[phase_y * 2 + phase_x, :, row_at : row_at + rows]
                    self._add(
                        np.copyto,
                        target[:, :, column_at : column_at + columns],
                        source[:, y::2, x_at::2][:, :rows, :columns],
                    )
        length = out_h * row
        taps = self._taps(channels, dw.size**2, length)
        for index, (phase, start) in enumerate(starts):
            self._add(np.copyto, taps[:, index], flat[phase, :, start : start + length])
        # Each channel's taps in one stacked product: [C, 1, k*k] @ [C, k*k, L] -> [C, 1, L].
        summed = np.zeros((channels, 1, length), np.float32)
        self._add(np.matmul, dw_weight[:, None, :], taps, out=summed)
        hidden = np.zeros((channels, out_h, out_w), np.float32)
        flat = hidden.reshape(channels, -1)
        valid = summed.reshape(channels, out_h, row)[:, :, :out_w]
        self._add(np.add, valid, dw.bias[:, :, None], out=hidden)
        self._activate(block.activation, hidden, hidden, exact=False)
        scale = _scale(block.activation)
        project = block.project.weight * scale
        if block.se is not None:
            (w1, b1), (w2, b2) = block.se
            sums = np.zeros((channels, 1), np.float32)
            self._add(np.add.reduce, flat, axis=1, keepdims=True, out=sums)
            squeezed = self._linear(w1 * (scale / (out_h * out_w)), b1, sums)
            self._add(np.maximum, squeezed, 0.0, out=squeezed)
            gate = self._linear(-w2, -b2, squeezed)  # sigmoid(z) = 1 / (1 + exp(-z))
            self._add(np.exp, gate, out=gate)
            self._add(np.add, gate, 1.0, out=gate)
            self._add(np.reciprocal, gate, out=gate)
            if project.size < flat.size:  # gate the projection's weights: fewer products than the activations
                gated = np.zeros(project.shape, np.float32)
                self._add(np.multiply, project, gate.T, out=gated)
                project = gated
            else:
                self._add(np.multiply, flat, gate, out=flat)
        out = self._pointwise(project, block.project.bias, hidden)
        if block.residual:
            self._add(np.add, out, x, out=out)
        return out


def _phase(pad: int, parity: int, size: int, room: int) -> tuple[tuple[int, int], int]:
    """Where the input's rows (or columns) of one parity of the padded input go in a stride-2 phase.

    Phase index i holds padded position 2 i + parity, input position 2 i + parity - pad: returns
    ((first phase index, first input position), count), the count cut to the phase's `room`.
    """
    first = (pad - parity + 1) // 2
    position = 2 * first + parity - pad
    return (first, position), max(0, min(len(range(position, size, 2)), room - first))


def _scale(activation: Activation) -> float:
    """The factor a reader of this activation's output applies: hard-swish leaves its 1/6 to it."""
    return 1 / 6 if activation == "HardSwish" else 1.0
