"""A small reader of ONNX model files (protobuf wire format) that needs neither `onnx` nor `protobuf`.

It decodes only what an inference graph uses: ModelProto (opsets, graph), GraphProto (nodes,
initializers, inputs, outputs), NodeProto, AttributeProto, TensorProto (raw_data and the typed
`*_data` fields) and ValueInfoProto (names and shapes). Field numbers follow onnx/onnx.proto3.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import struct
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .model_info import ModelLoadError

if TYPE_CHECKING:
    from collections.abc import Iterator

# Wire types.
_VARINT, _FIXED64, _LEN, _FIXED32 = 0, 1, 2, 5

# TensorProto.DataType -> NumPy dtype (little-endian, as raw_data stores them).
DTYPES: dict[int, np.dtype[Any]] = {
    1: np.dtype("<f4"),
    2: np.dtype("u1"),
    3: np.dtype("i1"),
    4: np.dtype("<u2"),
    5: np.dtype("<i2"),
    6: np.dtype("<i4"),
    7: np.dtype("<i8"),
    9: np.dtype("?"),
    10: np.dtype("<f2"),
    11: np.dtype("<f8"),
    12: np.dtype("<u4"),
    13: np.dtype("<u8"),
}
_MAX_ELEMENTS = 1 << 28  # far above any model here; a corrupt dims field must not allocate gigabytes


class OnnxDecodeError(ModelLoadError):
    """The bytes are not a well-formed ONNX protobuf (truncated, corrupt, or not ONNX at all)."""


@dataclass(frozen=True)
class ValueInfo:
    """A graph input or output: its name and shape (ints, or names of symbolic dimensions)."""

    name: str
    shape: tuple[int | str, ...] | None = None
    elem_type: int = 0


@dataclass(frozen=True)
class Node:
    """One operator application."""

    op_type: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attributes: dict[str, Any]
    name: str = ""
    domain: str = ""


@dataclass
class Graph:
    """A decoded GraphProto: nodes in file order, constant tensors, inputs and outputs."""

    nodes: list[Node] = field(default_factory=list)
    initializers: dict[str, npt.NDArray[Any]] = field(default_factory=dict)
    inputs: list[ValueInfo] = field(default_factory=list)
    outputs: list[ValueInfo] = field(default_factory=list)


@dataclass
class Model:
    """A decoded ModelProto."""

    graph: Graph
    opsets: dict[str, int]
    """Domain ("" is the default ai.onnx domain) -> opset version."""
    ir_version: int = 0
    producer_name: str = ""


def _fields(buf: memoryview) -> Iterator[tuple[int, int, Any]]:
    """Yield (field number, wire type, value): an int for scalars, a memoryview for length-delimited."""
    pos, end = 0, len(buf)
    value: Any
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise OnnxDecodeError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _LEN:
            length, pos = _varint(buf, pos)
            if length > end - pos:
                raise OnnxDecodeError("length-delimited field runs past the end (truncated file?)")
            value, pos = buf[pos : pos + length], pos + length
        elif wire == _FIXED32:
            if pos + 4 > end:
                raise OnnxDecodeError("fixed32 field runs past the end")
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        elif wire == _FIXED64:
            if pos + 8 > end:
                raise OnnxDecodeError("fixed64 field runs past the end")
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        else:
            raise OnnxDecodeError(f"unsupported wire type {wire}")
        yield number, wire, value


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    for index in range(pos, min(pos + 10, len(buf))):
        byte = buf[index]
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, index + 1
        shift += 7
    raise OnnxDecodeError("malformed or truncated varint")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: Any) -> str:
    if not isinstance(value, memoryview):
        raise OnnxDecodeError("expected a string field")
    try:
        return bytes(value).decode("utf-8")
    except UnicodeDecodeError as err:
        raise OnnxDecodeError("a name is not valid UTF-8") from err


def _repeated_ints(wire: int, value: Any) -> list[int]:
    """A repeated int32/int64 field: packed (one LEN field) or one varint per element."""
    if wire == _VARINT:
        return [_signed64(value)]
    if wire != _LEN:
        raise OnnxDecodeError("bad wire type for an integer list")
    out, pos = [], 0
    while pos < len(value):
        item, pos = _varint(value, pos)
        out.append(_signed64(item))
    return out


def _repeated_floats(wire: int, value: Any, fmt: str = "<f4") -> list[float]:
    """A repeated float/double field: packed or one fixed-width field per element."""
    size = np.dtype(fmt).itemsize
    if wire in (_FIXED32, _FIXED64):
        return [float(np.frombuffer(value.to_bytes(size, "little"), fmt)[0])]
    if wire != _LEN or len(value) % size:
        raise OnnxDecodeError("bad encoding of a float list")
    return [float(x) for x in np.frombuffer(value, fmt)]


def _tensor(buf: memoryview) -> tuple[str, npt.NDArray[Any]]:
    dims: list[int] = []
    data_type = 0
    name = ""
    raw: memoryview | None = None
    typed: list[Any] = []
    external = False
    for number, wire, value in _fields(buf):
        if number == 1:
            dims += _repeated_ints(wire, value)
        elif number == 2:
            data_type = value
        elif number == 8:
            name = _text(value)
        elif number == 9:
            raw = value
        elif number == 4:  # float_data
            typed += _repeated_floats(wire, value)
        elif number == 10:  # double_data
            typed += _repeated_floats(wire, value, "<f8")
        elif number in (5, 7, 11):  # int32_data, int64_data, uint64_data
            typed += _repeated_ints(wire, value)
        elif number == 14:
            external = value == 1
        elif number == 3:
            raise OnnxDecodeError(f"tensor {name!r} is segmented, which is not supported")
    if external:
        raise OnnxDecodeError(f"tensor {name!r} keeps its data in an external file, which is not supported")
    dtype = DTYPES.get(data_type)
    if dtype is None:
        raise OnnxDecodeError(f"tensor {name!r} has unsupported data type {data_type}")
    if any(d < 0 for d in dims):
        raise OnnxDecodeError(f"tensor {name!r} has a negative dimension")
    count = int(np.prod(dims, dtype=np.float64))
    if count > _MAX_ELEMENTS:
        raise OnnxDecodeError(f"tensor {name!r} claims {count} elements")
    if raw is not None:
        if len(raw) != count * dtype.itemsize:
            raise OnnxDecodeError(f"tensor {name!r} has {len(raw)} bytes of data for shape {dims}")
        array = np.frombuffer(raw, dtype=dtype).copy()
    else:
        if len(typed) != count:
            raise OnnxDecodeError(f"tensor {name!r} has {len(typed)} values for shape {dims}")
        if data_type == 10:  # float16 travels as its bit pattern in int32_data
            array = np.array(typed, dtype=np.uint16).view(np.float16)
        else:
            # Wrap-around is intended: uint64 values arrive as signed 64-bit ints.
            array = np.array(typed, dtype=np.float64 if dtype.kind == "f" else np.int64).astype(dtype)
    return name, array.reshape(dims).astype(dtype.newbyteorder("="), copy=False)


def _attribute(buf: memoryview) -> tuple[str, Any]:
    name = ""
    scalars: dict[int, Any] = {}
    ints: list[int] = []
    floats: list[float] = []
    strings: list[str] = []
    tensors: list[npt.NDArray[Any]] = []
    kind = 0
    for number, wire, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 20:
            kind = value
        elif number == 2:
            scalars[2] = float(np.frombuffer(value.to_bytes(4, "little"), "<f4")[0])
        elif number == 3:
            scalars[3] = _signed64(value)
        elif number == 4:
            scalars[4] = bytes(value)
        elif number == 5:
            scalars[5] = _tensor(value)[1]
        elif number == 7:
            floats += _repeated_floats(wire, value)
        elif number == 8:
            ints += _repeated_ints(wire, value)
        elif number == 9:
            strings.append(bytes(value).decode("utf-8", "replace"))
        elif number == 10:
            tensors.append(_tensor(value)[1])
        elif number in (6, 11, 14, 15, 22, 23):
            scalars[number] = None  # subgraphs, sparse tensors, type protos: no op here uses them
    # AttributeType: FLOAT=1 INT=2 STRING=3 TENSOR=4 GRAPH=5 FLOATS=6 INTS=7 STRINGS=8 TENSORS=9.
    by_kind: dict[int, Any] = {
        1: scalars.get(2, 0.0),
        2: scalars.get(3, 0),
        3: scalars.get(4, b"").decode("utf-8", "replace"),
        4: scalars.get(5),
        6: floats,
        7: ints,
        8: strings,
        9: tensors,
    }
    if kind not in by_kind:
        return name, _Unsupported(kind)
    return name, by_kind[kind]


@dataclass(frozen=True)
class _Unsupported:
    """An attribute of a kind the NumPy runtime never reads (subgraph, sparse tensor, type)."""

    kind: int


def _node(buf: memoryview) -> Node:
    inputs: list[str] = []
    outputs: list[str] = []
    attributes: dict[str, Any] = {}
    op_type = name = domain = ""
    for number, _wire, value in _fields(buf):
        if number == 1:
            inputs.append(_text(value))
        elif number == 2:
            outputs.append(_text(value))
        elif number == 3:
            name = _text(value)
        elif number == 4:
            op_type = _text(value)
        elif number == 7:
            domain = _text(value)
        elif number == 5:
            key, attribute = _attribute(value)
            attributes[key] = attribute
    if not op_type:
        raise OnnxDecodeError("a node has no op_type")
    return Node(op_type, tuple(inputs), tuple(outputs), attributes, name, domain)


def _shape(buf: memoryview) -> tuple[int | str, ...]:
    dims: list[int | str] = []
    for number, _wire, value in _fields(buf):
        if number == 1:  # Dimension: dim_value = 1, dim_param = 2
            dim: int | str = "?"
            for sub, _w, sub_value in _fields(value):
                if sub == 1:
                    dim = _signed64(sub_value)
                elif sub == 2:
                    dim = _text(sub_value)
            dims.append(dim)
    return tuple(dims)


def _value_info(buf: memoryview) -> ValueInfo:
    name = ""
    shape: tuple[int | str, ...] | None = None
    elem_type = 0
    for number, _wire, value in _fields(buf):
        if number == 1:
            name = _text(value)
        elif number == 2:  # TypeProto.tensor_type = 1 -> elem_type = 1, shape = 2
            for sub, _w, tensor_type in _fields(value):
                if sub != 1:
                    continue
                for inner, _w2, inner_value in _fields(tensor_type):
                    if inner == 1:
                        elem_type = inner_value
                    elif inner == 2:
                        shape = _shape(inner_value)
    return ValueInfo(name, shape, elem_type)


def _graph(buf: memoryview) -> Graph:
    graph = Graph()
    for number, _wire, value in _fields(buf):
        if number == 1:
            graph.nodes.append(_node(value))
        elif number == 5:
            name, array = _tensor(value)
            graph.initializers[name] = array
        elif number == 11:
            graph.inputs.append(_value_info(value))
        elif number == 12:
            graph.outputs.append(_value_info(value))
        elif number == 15:
            raise OnnxDecodeError("sparse initializers are not supported")
    return graph


def decode_model(data: bytes) -> Model:
    """Decode the bytes of an .onnx file; raise OnnxDecodeError when they are not a usable ONNX model."""
    buf = memoryview(data)
    graph: Graph | None = None
    opsets: dict[str, int] = {}
    ir_version = 0
    producer = ""
    try:
        for number, _wire, value in _fields(buf):
            if number == 1:
                ir_version = value
            elif number == 2:
                producer = _text(value)
            elif number == 7:
                graph = _graph(value)
            elif number == 8:
                domain, version = "", 1
                for sub, _w, sub_value in _fields(value):
                    if sub == 1:
                        domain = _text(sub_value)
                    elif sub == 2:
                        version = sub_value
                opsets[domain] = version
    except (struct.error, ValueError, TypeError, AttributeError, OverflowError) as err:
        # A wrong wire type where a message is expected surfaces as one of these.
        raise OnnxDecodeError(f"corrupt protobuf ({err})") from err
    if graph is None or not graph.nodes:
        raise OnnxDecodeError("no graph found: this is not an ONNX model")
    if not graph.inputs or not graph.outputs:
        raise OnnxDecodeError("the graph declares no inputs or no outputs")
    return Model(graph=graph, opsets=opsets, ir_version=ir_version, producer_name=producer)
