"""NumPy kernels for the ONNX operators that Sound Sentry's exported models use.

Each builder gets a node, the opset and the node's inputs that are known at load time (weights, folded
constants). It does the per-model work once (lays out conv weights, transposes Gemm weights) and returns
a kernel: a function of the list of all the node's inputs (None for an absent optional one) that
returns the list of its outputs. Float tensors stay float32 throughout.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from .onnx_proto import Node

type Array = npt.NDArray[Any]
type Kernel = Callable[[list[Any]], list[Array]]
type InPlace = Callable[[Array], Array]
"""An elementwise op that may overwrite its float32 input (which nothing else reads) and returns it."""


def _view(base: Array, shape: tuple[int, ...], strides: tuple[int, ...]) -> Array:
    """A read-only strided view of the contiguous array `base` (much cheaper than as_strided).

    Callers keep every index inside `base`: each view here addresses windows of a padded input.
    """
    view: Array = np.ndarray(shape, base.dtype, base, 0, strides)
    view.flags.writeable = False
    return view


class UnsupportedModelError(ValueError):
    """The graph uses an operator, attribute or layout this runtime does not implement."""


@dataclass(frozen=True)
class BuildContext:
    """A node with what is known about it at load time."""

    node: Node
    opset: int
    constants: Sequence[Array | None]
    """Per input: its value when known at load time, else None."""

    def attr(self, name: str, default: Any = None) -> Any:
        """An attribute's value, or `default` when the node does not set it."""
        return self.node.attributes.get(name, default)

    def const(self, index: int) -> Array | None:
        """Input `index` when it is known at load time."""
        return self.constants[index] if index < len(self.constants) else None

    def has_input(self, index: int) -> bool:
        """Whether optional input `index` is present."""
        return index < len(self.node.inputs) and self.node.inputs[index] != ""

    def fail(self, reason: str) -> UnsupportedModelError:
        """An error naming this node."""
        label = f"{self.node.op_type} node {self.node.name!r}" if self.node.name else self.node.op_type
        return UnsupportedModelError(f"{label}: {reason}")


def _ints(values: Any) -> list[int]:
    return [] if values is None else [int(v) for v in np.asarray(values).reshape(-1)]


def _f32(array: Array) -> npt.NDArray[np.float32]:
    return np.ascontiguousarray(array, dtype=np.float32)


def _arg(args: list[Any], index: int) -> Any:
    return args[index] if index < len(args) else None


# Elementwise ops.


def _unary(fn: Callable[[Array], Array]) -> Callable[[BuildContext], Kernel]:
    def build(_ctx: BuildContext) -> Kernel:
        return lambda args: [fn(args[0])]

    return build


def _binary(fn: Callable[[Array, Array], Array]) -> Callable[[BuildContext], Kernel]:
    def build(_ctx: BuildContext) -> Kernel:
        return lambda args: [fn(args[0], args[1])]

    return build


def relu_inplace(x: Array) -> Array:
    """max(x, 0), overwriting x."""
    return np.maximum(x, 0, out=x)


def _relu(x: Array) -> Array:
    return np.maximum(x, np.zeros((), x.dtype))


def sigmoid_inplace(x: Array) -> Array:
    """1 / (1 + exp(-x)) as 0.5 * tanh(x / 2) + 0.5, overwriting x; never overflows."""
    if x.dtype.kind != "f":
        return _sigmoid(x)
    x *= 0.5
    np.tanh(x, out=x)
    x *= 0.5
    x += 0.5
    return x


def _sigmoid(x: Array) -> Array:
    return sigmoid_inplace(x.astype(np.float64 if x.dtype == np.float64 else np.float32, copy=True))


def _div(a: Array, b: Array) -> Array:
    if a.dtype.kind in "iu" and b.dtype.kind in "iu":
        return np.trunc(a / b).astype(np.result_type(a, b))  # ONNX integer division truncates
    return np.divide(a, b)


def build_softmax(ctx: BuildContext) -> Kernel:
    """Softmax; before opset 13 it normalises over all axes from `axis` on (coerced to 2-D)."""
    axis = int(ctx.attr("axis", -1 if ctx.opset >= 13 else 1))

    def softmax(args: list[Any]) -> list[Array]:
        x = args[0]
        if ctx.opset < 13:
            return [_softmax_last(x.reshape(*x.shape[: axis % x.ndim], -1)).reshape(x.shape)]
        if axis in (-1, x.ndim - 1):
            return [_softmax_last(x)]
        return [np.moveaxis(_softmax_last(np.moveaxis(x, axis, -1)), -1, axis)]

    return softmax


def _softmax_last(x: Array) -> Array:
    shifted: Array = np.exp(x - x.max(axis=-1, keepdims=True))
    shifted /= shifted.sum(axis=-1, keepdims=True)
    return shifted


def build_clip(ctx: BuildContext) -> Kernel:
    """Clip with min/max as attributes (opset < 11) or optional inputs."""
    low, high = ctx.attr("min"), ctx.attr("max")

    def clip(args: list[Any]) -> list[Array]:
        lo, hi = _arg(args, 1), _arg(args, 2)
        x = args[0]
        return [np.clip(x, low if lo is None else lo, high if hi is None else hi).astype(x.dtype, copy=False)]

    return clip


# Reductions and pooling.


@cache
def _mean_vector(size: int) -> npt.NDArray[np.float32]:
    return np.full(size, 1.0 / size, dtype=np.float32)


def _mean_trailing(x: Array, count: int, keepdims: bool) -> Array:
    """Mean over the last `count` axes; a matrix-vector product is several times faster than .mean()."""
    lead = x.shape[: x.ndim - count]
    size = math.prod(x.shape[x.ndim - count :])
    if x.dtype != np.float32 or size == 0:
        return np.asarray(x.mean(axis=tuple(range(x.ndim - count, x.ndim)), keepdims=keepdims))
    out: Array = x.reshape(*lead, size) @ _mean_vector(size)
    return out.reshape(*lead, *(1,) * count) if keepdims else out


def build_reduce_mean(ctx: BuildContext) -> Kernel:
    """ReduceMean over `axes` (attribute before opset 18, input from 18 on)."""
    keepdims = bool(ctx.attr("keepdims", 1))
    noop_empty = bool(ctx.attr("noop_with_empty_axes", 0))
    fixed = _ints(ctx.const(1)) if ctx.opset >= 18 else list(ctx.attr("axes", []))
    axes_known = ctx.opset < 18 or not ctx.has_input(1) or ctx.const(1) is not None
    # The common case, known axes that are the last ones (e.g. 2, 3 of NCHW), is decided once.
    rank = max(fixed, default=0) + 1
    trailing = (
        len(fixed) if axes_known and fixed and sorted(fixed) == list(range(rank - len(fixed), rank)) else None
    )

    def reduce_mean(args: list[Any]) -> list[Array]:
        x = args[0]
        axes = fixed if axes_known else _ints(_arg(args, 1))
        if trailing is not None and x.ndim == rank:
            return [_mean_trailing(x, trailing, keepdims)]
        if not axes:
            return [x] if noop_empty else [np.asarray(x.mean(keepdims=keepdims, dtype=x.dtype))]
        normalised = sorted({a % x.ndim for a in axes})
        if normalised == list(range(x.ndim - len(normalised), x.ndim)):
            return [_mean_trailing(x, len(normalised), keepdims)]
        return [x.mean(axis=tuple(normalised), keepdims=keepdims, dtype=x.dtype)]

    return reduce_mean


def build_global_average_pool(_ctx: BuildContext) -> Kernel:
    """Mean over all spatial axes, kept as size-1 axes."""
    return lambda args: [_mean_trailing(args[0], args[0].ndim - 2, keepdims=True)]


# Shape manipulation.


def build_transpose(ctx: BuildContext) -> Kernel:
    """Transpose by `perm` (default: reverse the axes)."""
    perm = ctx.attr("perm")
    return lambda args: [np.transpose(args[0], perm)]


def build_reshape(ctx: BuildContext) -> Kernel:
    """Reshape; a 0 copies the input's dimension unless allowzero, a -1 is inferred."""
    allowzero = bool(ctx.attr("allowzero", 0))

    def reshape(args: list[Any]) -> list[Array]:
        x = args[0]
        shape = _ints(args[1])
        if not allowzero:
            shape = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return [x.reshape(shape)]

    return reshape


def build_flatten(ctx: BuildContext) -> Kernel:
    """Flatten to 2-D around `axis`."""
    axis = int(ctx.attr("axis", 1))

    def flatten(args: list[Any]) -> list[Array]:
        x = args[0]
        split = axis % x.ndim if axis < 0 else axis
        return [x.reshape(int(np.prod(x.shape[:split])), -1)]

    return flatten


def _axes_of(ctx: BuildContext) -> tuple[bool, list[int]]:
    """(known at load time, axes) of Unsqueeze/Squeeze: an attribute before opset 13, an input from 13."""
    if ctx.opset < 13:
        return True, list(ctx.attr("axes", []))
    if not ctx.has_input(1):
        return True, []
    axes = ctx.const(1)
    return axes is not None, _ints(axes)


def build_unsqueeze(ctx: BuildContext) -> Kernel:
    """Insert size-1 axes."""
    known, fixed = _axes_of(ctx)

    def unsqueeze(args: list[Any]) -> list[Array]:
        x = args[0]
        axes = fixed if known else _ints(args[1])
        rank = x.ndim + len(axes)
        shape = list(x.shape)
        for axis in sorted(a % rank for a in axes):
            shape.insert(axis, 1)
        return [x.reshape(shape)]

    return unsqueeze


def build_squeeze(ctx: BuildContext) -> Kernel:
    """Drop size-1 axes: the listed ones, or all of them."""
    known, fixed = _axes_of(ctx)

    def squeeze(args: list[Any]) -> list[Array]:
        x = args[0]
        axes = fixed if known else _ints(_arg(args, 1))
        return [np.squeeze(x, tuple(a % x.ndim for a in axes)) if axes else np.squeeze(x)]

    return squeeze


def build_concat(ctx: BuildContext) -> Kernel:
    """Concatenate along `axis`."""
    axis = int(ctx.attr("axis", 0))
    return lambda args: [np.concatenate([a for a in args if a is not None], axis=axis)]


def build_shape(ctx: BuildContext) -> Kernel:
    """The input's shape as int64, optionally sliced by `start`/`end` (opset 15)."""
    start, end = ctx.attr("start", 0), ctx.attr("end")
    return lambda args: [np.array(args[0].shape[start:end], dtype=np.int64)]


def build_gather(ctx: BuildContext) -> Kernel:
    """Take along `axis`; negative indices count from the end."""
    axis = int(ctx.attr("axis", 0))

    def gather(args: list[Any]) -> list[Array]:
        x, indices = args[0], np.asarray(args[1], dtype=np.int64)
        size = x.shape[axis]
        if np.any((indices < -size) | (indices >= size)):
            raise ValueError(f"Gather index out of range for an axis of size {size}")
        return [np.take(x, indices, axis=axis, mode="wrap")]

    return gather


def build_slice(ctx: BuildContext) -> Kernel:
    """Slice with starts/ends/axes/steps (attributes before opset 10, inputs from 10 on)."""

    def slice_(args: list[Any]) -> list[Array]:
        x = args[0]
        if ctx.opset < 10:
            starts, ends = list(ctx.attr("starts")), list(ctx.attr("ends"))
            axes = list(ctx.attr("axes", range(len(starts))))
            steps = [1] * len(starts)
        else:
            starts, ends = _ints(args[1]), _ints(args[2])
            axes = _ints(_arg(args, 3)) or list(range(len(starts)))
            steps = _ints(_arg(args, 4)) or [1] * len(starts)
        index: list[slice] = [slice(None)] * x.ndim
        for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
            # INT64_MAX / INT64_MIN mean "to the end": Python slicing clamps them the same way.
            index[axis % x.ndim] = slice(start, end, step)
        return [x[tuple(index)]]

    return slice_


def build_constant(ctx: BuildContext) -> Kernel:
    """A Constant node's value (a tensor, or one of the scalar and list forms)."""
    attributes = ctx.node.attributes
    if isinstance(attributes.get("value"), np.ndarray):
        value = attributes["value"]
    elif "value_float" in attributes:
        value = np.array(attributes["value_float"], dtype=np.float32)
    elif "value_floats" in attributes:
        value = np.array(attributes["value_floats"], dtype=np.float32)
    elif "value_int" in attributes:
        value = np.array(attributes["value_int"], dtype=np.int64)
    elif "value_ints" in attributes:
        value = np.array(attributes["value_ints"], dtype=np.int64)
    else:
        raise ctx.fail(f"unsupported value attribute {sorted(attributes)}")
    return lambda _args: [value]


def build_cast(ctx: BuildContext) -> Kernel:
    """Cast to a numeric type."""
    from .onnx_proto import DTYPES  # noqa: PLC0415

    dtype = DTYPES.get(int(ctx.attr("to", 0)))
    if dtype is None:
        raise ctx.fail(f"cast to unsupported type {ctx.attr('to')}")
    return lambda args: [np.asarray(args[0]).astype(dtype)]


# Linear algebra.


def build_gemm(ctx: BuildContext) -> Kernel:
    """Y = alpha * A' @ B' + beta * C; a constant B is transposed and scaled once."""
    alpha, beta = float(ctx.attr("alpha", 1.0)), float(ctx.attr("beta", 1.0))
    trans_a, trans_b = bool(ctx.attr("transA", 0)), bool(ctx.attr("transB", 0))
    b_const, c_const = ctx.const(1), ctx.const(2)
    weights = None if b_const is None else _f32((b_const.T if trans_b else b_const) * alpha)
    bias = None if c_const is None else _f32(c_const * beta)

    def gemm(args: list[Any]) -> list[Array]:
        a, c = args[0], _arg(args, 2)
        if trans_a:
            a = a.T
        if weights is not None:
            out = a @ weights
        else:
            b = args[1]
            out = (a @ (b.T if trans_b else b)) * np.float32(alpha)
        if bias is not None:
            out += bias
        elif c is not None:
            out = out + c * np.float32(beta)
        return [out]

    return gemm


def build_matmul(_ctx: BuildContext) -> Kernel:
    """NumPy matmul has ONNX MatMul's broadcasting rules."""
    return lambda args: [np.matmul(args[0], args[1])]


def build_batch_normalization(ctx: BuildContext) -> Kernel:
    """Inference-mode batch norm, as one scale and shift per channel."""
    eps = float(ctx.attr("epsilon", 1e-5))
    if bool(ctx.attr("training_mode", 0)):
        raise ctx.fail("training_mode is not supported")

    def batch_norm(args: list[Any]) -> list[Array]:
        x, gamma, beta, mean, var = args[:5]
        scale = (gamma / np.sqrt(var + eps)).astype(np.float32)
        shape = (1, -1) + (1,) * (x.ndim - 2)
        shift = (beta - mean * scale).astype(np.float32)
        return [x * scale.reshape(shape) + shift.reshape(shape)]

    return batch_norm


# Convolution.


def build_conv(ctx: BuildContext) -> Kernel:
    """1-D/2-D convolution with load-time weights (see Conv2d)."""
    weight = ctx.const(1)
    if weight is None:
        raise ctx.fail("weights computed at run time are not supported")
    spatial = weight.ndim - 2
    if spatial not in (1, 2):
        raise ctx.fail(f"{spatial}-D convolution is not supported")
    auto_pad = str(ctx.attr("auto_pad", "NOTSET"))
    if auto_pad not in ("NOTSET", "VALID"):
        raise ctx.fail(f"auto_pad={auto_pad} is not supported; export with explicit pads")
    kernel = tuple(int(k) for k in ctx.attr("kernel_shape", weight.shape[2:]))
    if kernel != weight.shape[2:]:
        raise ctx.fail(f"kernel_shape {kernel} differs from the weights' {weight.shape[2:]}")
    strides = [int(s) for s in ctx.attr("strides", [1] * spatial)]
    dilations = [int(d) for d in ctx.attr("dilations", [1] * spatial)]
    pads = (
        [0] * (2 * spatial) if auto_pad == "VALID" else [int(p) for p in ctx.attr("pads", [0] * 2 * spatial)]
    )
    bias = ctx.const(2)
    if ctx.has_input(2) and bias is None:
        raise ctx.fail("a bias computed at run time is not supported")
    if spatial == 1:  # run as 2-D with a height of 1
        weight, strides, dilations = weight[:, :, None, :], [1, *strides], [1, *dilations]
        pads = [0, pads[0], 0, pads[1]]
    conv = Conv2d(
        weight=_f32(weight),
        bias=None if bias is None else _f32(bias),
        strides=(strides[0], strides[1]),
        pads=(pads[0], pads[1], pads[2], pads[3]),
        dilations=(dilations[0], dilations[1]),
        group=int(ctx.attr("group", 1)),
    )
    if spatial == 1:
        return lambda args: [conv(args[0][:, :, None, :])[:, :, 0, :]]
    return lambda args: [conv(args[0])]


IM2COL_BATCH_BYTES = 128 * 1024
"""Per-window im2col size above which a batch is convolved one window at a time."""


class Conv2d:
    """A 2-D convolution with fixed weights as one matmul per group over an im2col matrix.

    Pointwise convs need no im2col. For stride 1 the padded input is flattened per channel, so each
    kernel tap is a contiguous shifted slice and the im2col matrix is a strided view; the output is
    computed on the padded width and cropped. Strided convs take windows with sliding_window_view.
    Batches go through numpy's stacked matmul, so several windows cost one call per layer.
    """

    def __init__(
        self,
        *,
        weight: npt.NDArray[np.float32],
        bias: npt.NDArray[np.float32] | None,
        strides: tuple[int, int],
        pads: tuple[int, int, int, int],
        dilations: tuple[int, int],
        group: int,
    ) -> None:
        out_channels, self.group_in, kh, kw = weight.shape
        if group < 1 or out_channels % group:
            raise UnsupportedModelError(
                f"Conv: {out_channels} output channels do not split into {group} groups"
            )
        self.group = group
        self.kernel = (kh, kw)
        self.strides = strides
        self.pads = pads
        self.dilations = dilations
        self.pointwise = (kh, kw) == (1, 1) and pads == (0, 0, 0, 0)
        self.flat = not self.pointwise and strides == (1, 1)
        # im2col rows are ordered (channel, tap) for the windowed path and (tap, channel) for the flat one.
        order = (0, 2, 3, 1) if self.flat else (0, 1, 2, 3)
        self.weights = [
            np.ascontiguousarray(w.transpose(order).reshape(w.shape[0], -1)) for w in np.split(weight, group)
        ]
        self.bias = None if bias is None else bias.reshape(-1, 1)

    def __call__(self, x: Array) -> Array:
        """Convolve a [B, C, H, W] batch."""
        x = x.astype(np.float32, copy=False)
        batch, channels = x.shape[:2]
        if channels != self.group * self.group_in:
            raise ValueError(f"Conv expects {self.group * self.group_in} input channels, got {channels}")
        if self.pointwise:
            sh, sw = self.strides
            if (sh, sw) != (1, 1):
                x = x[:, :, ::sh, ::sw]
            out_h, out_w = x.shape[2], x.shape[3]
            return self._matmul(x.reshape(batch, channels, out_h * out_w), out_h, out_w, out_w)
        if batch > 1 and x[:1].nbytes * self.kernel[0] * self.kernel[1] > IM2COL_BATCH_BYTES:
            # A large im2col matrix for the whole batch falls out of cache; one window at a time is faster.
            return np.concatenate([self(x[i : i + 1]) for i in range(batch)])
        if self.flat:
            return self._flat(x)
        return self._windowed(x)

    def _matmul(self, cols: Array, out_h: int, out_w: int, row: int) -> Array:
        """Weights @ im2col (per group), plus bias; `row` >= out_w is the computed width to crop from."""
        batch = cols.shape[0]
        if self.group == 1:
            out = np.matmul(self.weights[0], cols)
        else:
            rows = cols.shape[1] // self.group
            out = np.concatenate(
                [np.matmul(w, cols[:, g * rows : (g + 1) * rows]) for g, w in enumerate(self.weights)], axis=1
            )
        if self.bias is not None:
            out += self.bias
        grid: Array = out.reshape(batch, -1, out_h, row)
        return grid if row == out_w else grid[:, :, :, :out_w]

    def _padded(self, x: Array, extra: int = 0) -> Array:
        """X zero-padded, flattened per channel with `extra` zeros after, as [B, C, (H+pads)*(W+pads)+extra]."""
        top, left, bottom, right = self.pads
        batch, channels, height, width = x.shape
        rows, cols = height + top + bottom, width + left + right
        padded = np.zeros((batch, channels, rows * cols + extra), np.float32)
        padded[:, :, : rows * cols].reshape(batch, channels, rows, cols)[
            :, :, top : top + height, left : left + width
        ] = x
        return padded

    def _flat(self, x: Array) -> Array:
        (kh, kw), (dh, dw) = self.kernel, self.dilations
        top, left, bottom, right = self.pads
        batch, channels, height, width = x.shape
        row = width + left + right
        out_h, out_w = height + top + bottom - (kh - 1) * dh, row - (kw - 1) * dw
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"Conv input {height}x{width} is smaller than its kernel")
        length = out_h * row  # outputs computed on the padded width; the last columns are cropped
        padded = self._padded(x, extra=(kw - 1) * dw)
        item, (s_batch, s_channel, s_elem) = padded.itemsize, padded.strides
        # cols[b, i, j, c, n] = padded[b, c, n + i*dh*row + j*dw]: no copy until the reshape below.
        cols = _view(
            padded,
            (batch, kh, kw, channels, length),
            (s_batch, dh * row * item, dw * item, s_channel, s_elem),
        )
        if self.group == 1:
            return self._matmul(cols.reshape(batch, kh * kw * channels, length), out_h, out_w, row)
        # Grouped: im2col rows must be (group, tap, channel-in-group).
        grouped = cols.reshape(batch, kh * kw, self.group, self.group_in, length).transpose(0, 2, 1, 3, 4)
        return self._matmul(grouped.reshape(batch, -1, length), out_h, out_w, row)

    def _windowed(self, x: Array) -> Array:
        (kh, kw), (sh, sw), (dh, dw) = self.kernel, self.strides, self.dilations
        top, left, bottom, right = self.pads
        batch, channels, height, width = x.shape
        if top or left or bottom or right:
            rows, cols_ = height + top + bottom, width + left + right
            x = self._padded(x).reshape(batch, channels, rows, cols_)
        else:
            x = np.ascontiguousarray(x)
        out_h = (x.shape[2] - (kh - 1) * dh - 1) // sh + 1
        out_w = (x.shape[3] - (kw - 1) * dw - 1) // sw + 1
        if out_h <= 0 or out_w <= 0:
            raise ValueError(f"Conv input {height}x{width} is smaller than its kernel")
        s_batch, s_channel, s_row, s_col = x.strides
        # cols[b, c, i, j, y, x] = x[b, c, y*sh + i*dh, x*sw + j*dw], ordered (channel, tap) as the weights.
        windows = _view(
            x,
            (batch, channels, kh, kw, out_h, out_w),
            (s_batch, s_channel, dh * s_row, dw * s_col, sh * s_row, sw * s_col),
        )
        return self._matmul(windows.reshape(batch, channels * kh * kw, out_h * out_w), out_h, out_w, out_w)


# Quantisation.


def _per_axis(values: Array, axis: int, ndim: int) -> Array:
    """Scale or zero point shaped to broadcast along `axis` of an `ndim`-D tensor."""
    if values.size == 1:
        return values.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = -1
    return values.reshape(shape)


_QUANT_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def _quant_range(ctx: BuildContext | None, dtype: np.dtype[Any]) -> tuple[int, int]:
    if dtype not in _QUANT_RANGES:
        message = f"quantising to {dtype} is not supported"
        raise ctx.fail(message) if ctx else UnsupportedModelError(message)
    return _QUANT_RANGES[dtype]


def _check_blocked(ctx: BuildContext) -> None:
    if int(ctx.attr("block_size", 0)):
        raise ctx.fail("blocked quantisation is not supported")


def build_quantize_linear(ctx: BuildContext) -> Kernel:
    """Y = saturate(round_half_even(x / scale) + zero_point), per tensor or per `axis`."""
    axis = int(ctx.attr("axis", 1))
    _check_blocked(ctx)
    zero = ctx.const(2)
    _quant_range(ctx, np.dtype(np.uint8) if zero is None else zero.dtype)

    def quantize(args: list[Any]) -> list[Array]:
        x, scale = args[0], args[1]
        zero_point = _arg(args, 2)
        if zero_point is None:
            zero_point = np.zeros((), np.uint8)
        low, high = _quant_range(ctx, zero_point.dtype)
        q = np.rint(x / _per_axis(scale, axis, x.ndim).astype(np.float32))
        q += _per_axis(zero_point, axis, x.ndim).astype(np.float32)
        return [np.clip(q, low, high).astype(zero_point.dtype)]

    return quantize


def build_dequantize_linear(ctx: BuildContext) -> Kernel:
    """Y = (x - zero_point) * scale, per tensor or per `axis`."""
    axis = int(ctx.attr("axis", 1))
    _check_blocked(ctx)

    def dequantize(args: list[Any]) -> list[Array]:
        x, scale, zero_point = args[0], args[1], _arg(args, 2)
        values = x.astype(np.float32)
        if zero_point is not None:
            values -= _per_axis(zero_point, axis, x.ndim).astype(np.float32)
        values *= _per_axis(scale, axis, x.ndim).astype(np.float32)
        return [values]

    return dequantize


class FakeQuantizer:
    """QuantizeLinear then DequantizeLinear with the same parameters, in float32 and in place.

    (clip(rint(x / s) + zp, low, high) - zp) * s == clip(rint(x / s), low - zp, high - zp) * s.
    A Relu next to it only raises the lower bound to 0 (rint is monotone and rint(0) == 0), and a
    second quantiser on the same grid changes nothing, so chains of them collapse into one (`merge`).
    """

    def __init__(self, scale: Array, zero_point: Array, axis: int, *, relu: bool = False) -> None:
        low, high = _quant_range(None, zero_point.dtype)
        self.scale, self.zero_point, self.axis, self.relu = scale, zero_point, axis, relu
        self._per_tensor = scale.size == 1 and zero_point.size == 1
        zp = float(zero_point.reshape(-1)[0]) if self._per_tensor else 0.0
        self._s = np.float32(scale.reshape(-1)[0]) if self._per_tensor else np.float32(1)
        self._lo = max(low - zp, 0.0) if relu else low - zp
        self._hi = high - zp
        self._low, self._high = low, high

    def same_grid(self, other: object) -> bool:
        """Whether `other` quantises to the same levels."""
        return (
            isinstance(other, FakeQuantizer)
            and other.axis == self.axis
            and other.zero_point.dtype == self.zero_point.dtype
            and np.array_equal(other.scale, self.scale)
            and np.array_equal(other.zero_point, self.zero_point)
        )

    def with_relu(self) -> FakeQuantizer:
        """The same quantiser with a Relu folded in."""
        return FakeQuantizer(self.scale, self.zero_point, self.axis, relu=True)

    def __call__(self, x: Array) -> Array:
        """Quantise and dequantise `x` in place."""
        if self._per_tensor:
            s: Any = self._s
            low: Any = self._lo
            high: Any = self._hi
        else:
            s = _per_axis(self.scale, self.axis, x.ndim).astype(np.float32)
            zp = _per_axis(self.zero_point, self.axis, x.ndim).astype(np.float32)
            low, high = self._low - zp, self._high - zp
            if self.relu:
                low = np.maximum(low, 0)
        x /= s
        np.rint(x, out=x)
        np.clip(x, low, high, out=x)
        x *= s
        return x


def merge_in_place(chain: list[InPlace], step: InPlace) -> list[InPlace]:
    """`chain` followed by `step`, with Relu and same-grid quantisers collapsed into one quantiser."""
    last = chain[-1] if chain else None
    if isinstance(step, FakeQuantizer) and isinstance(last, FakeQuantizer) and step.same_grid(last):
        return [*chain[:-1], last.with_relu() if step.relu else last]
    if step is relu_inplace and isinstance(last, FakeQuantizer):
        return [*chain[:-1], last.with_relu()]
    if isinstance(step, FakeQuantizer) and last is relu_inplace:
        return [*chain[:-1], step.with_relu()]
    return [*chain, step]


BUILDERS: dict[str, Callable[[BuildContext], Kernel]] = {
    "Abs": _unary(np.abs),
    "Add": _binary(np.add),
    "BatchNormalization": build_batch_normalization,
    "Cast": build_cast,
    "Clip": build_clip,
    "Concat": build_concat,
    "Constant": build_constant,
    "Conv": build_conv,
    "DequantizeLinear": build_dequantize_linear,
    "Div": _binary(_div),
    "Exp": _unary(np.exp),
    "Flatten": build_flatten,
    "Gather": build_gather,
    "Gemm": build_gemm,
    "GlobalAveragePool": build_global_average_pool,
    "Identity": _unary(lambda x: x),
    "MatMul": build_matmul,
    "Mul": _binary(np.multiply),
    "Neg": _unary(np.negative),
    "QuantizeLinear": build_quantize_linear,
    "ReduceMean": build_reduce_mean,
    "Relu": _unary(_relu),
    "Reshape": build_reshape,
    "Shape": build_shape,
    "Sigmoid": _unary(_sigmoid),
    "Slice": build_slice,
    "Softmax": build_softmax,
    "Sqrt": _unary(np.sqrt),
    "Squeeze": build_squeeze,
    "Sub": _binary(np.subtract),
    "Tanh": _unary(np.tanh),
    "Transpose": build_transpose,
    "Unsqueeze": build_unsqueeze,
}
"""Supported operators of the default ONNX domain."""

FRESH_OUTPUT = frozenset({"Add", "Conv", "Div", "Gemm", "MatMul", "Mul", "Relu", "Sigmoid", "Sub"})
"""Ops whose float output is a new array that nothing else references (safe to overwrite in place)."""

IN_PLACE: dict[str, InPlace] = {"Relu": relu_inplace, "Sigmoid": sigmoid_inplace}
"""Unary ops that can run in place on a fresh float32 output of the op before them."""
