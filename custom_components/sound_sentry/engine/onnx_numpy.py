"""Run a decoded ONNX graph with NumPy: fold constants at load time, fuse, then call a flat list of kernels.

Load time does everything that does not depend on the input: nodes whose inputs are all constants run
once (this dequantises int8 weights), a QuantizeLinear -> DequantizeLinear pair on an activation becomes
one float "fake quantise", and an op whose only input is the only use of another op's output joins that
op's step; elementwise ones (Relu, Sigmoid, fake quantise) then run in place on its fresh output.
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from .onnx_ops import (
    BUILDERS,
    FRESH_OUTPUT,
    IN_PLACE,
    Array,
    BuildContext,
    FakeQuantizer,
    InPlace,
    Kernel,
    UnsupportedModelError,
    merge_in_place,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .onnx_proto import Graph, Model, Node

_DEFAULT_DOMAINS = ("", "ai.onnx")


def unsupported_ops(graph: Graph) -> list[str]:
    """Operators of `graph` this runtime cannot run, sorted (domain-qualified outside ai.onnx)."""
    return sorted(
        {
            node.op_type if node.domain in _DEFAULT_DOMAINS else f"{node.domain}.{node.op_type}"
            for node in graph.nodes
            if node.domain not in _DEFAULT_DOMAINS or node.op_type not in BUILDERS
        }
    )


def topological_order(graph: Graph, available: set[str]) -> list[Node]:
    """Nodes ordered so that every input exists before use (Kahn's algorithm, linear time).

    Raise UnsupportedModelError naming an input that nothing produces (or a cycle).
    """
    known = set(available) | {""}
    missing: list[set[str]] = [set(node.inputs) - known for node in graph.nodes]
    waiting: dict[str, list[int]] = {}
    for index, names in enumerate(missing):
        for name in names:
            waiting.setdefault(name, []).append(index)
    ready = deque(index for index, names in enumerate(missing) if not names)
    ordered: list[Node] = []
    while ready:
        node = graph.nodes[ready.popleft()]
        ordered.append(node)
        for name in node.outputs:
            for index in waiting.pop(name, []):
                missing[index].discard(name)
                if not missing[index]:
                    ready.append(index)
    if len(ordered) < len(graph.nodes):
        index = next(i for i, names in enumerate(missing) if names)
        node = graph.nodes[index]
        raise UnsupportedModelError(
            f"{node.op_type} node {node.name!r} reads {sorted(missing[index])[0]!r}, which nothing produces"
        )
    return ordered


def _copy_float32(args: list[Any]) -> list[Array]:
    """A private float32 copy of the input, for in-place steps to work on."""
    return [np.array(args[0], dtype=np.float32)]


@dataclass
class _Op:
    """A node (or a fused chain of nodes) that runs at inference time."""

    kernel: Kernel
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fresh: bool
    """Its output is a new float array that nothing else references."""
    in_place: InPlace | None = None
    """Set for elementwise ops that can instead run in place on their producer's fresh output."""
    epilogue: list[InPlace] = field(default_factory=list)
    label: str = ""

    def fused_kernel(self) -> Kernel:
        if not self.epilogue:
            return self.kernel
        kernel, epilogue = self.kernel, tuple(self.epilogue)

        def fused(args: list[Any]) -> list[Array]:
            out = kernel(args)[0]
            for step in epilogue:
                out = step(out)
            return [out]

        return fused


@dataclass(frozen=True, slots=True)
class _Step:
    kernel: Kernel
    template: list[Array | None]
    """The kernel's arguments with the load-time constants filled in."""
    dynamic: tuple[tuple[int, int], ...]
    """(argument position, value slot) of each input computed at run time."""
    outputs: tuple[int, ...]
    label: str
    """The op types this step runs, e.g. "Conv+Relu"."""


class NumpyGraph:
    """An ONNX graph compiled for NumPy; `run()` maps named inputs to the outputs."""

    def __init__(self, model: Model) -> None:
        """Check, fold, fuse and lay out the graph; raise UnsupportedModelError if it cannot run."""
        graph = model.graph
        if missing := unsupported_ops(graph):
            raise UnsupportedModelError(f"unsupported operator(s): {', '.join(missing)}")
        self.opset = next((model.opsets[d] for d in _DEFAULT_DOMAINS if d in model.opsets), 1)
        constants: dict[str, Array] = dict(graph.initializers)
        # Old IR versions also list initializers as graph inputs; those are weights, not feeds.
        self.input_names = [v.name for v in graph.inputs if v.name not in constants]
        self.output_names = [v.name for v in graph.outputs]
        dynamic: list[Node] = []
        for node in topological_order(graph, set(constants) | set(self.input_names)):
            if all(name in constants for name in node.inputs if name):
                outputs = BUILDERS[node.op_type](self._context(node, constants))(
                    [constants.get(name) for name in node.inputs]
                )
                constants.update(zip(node.outputs, outputs, strict=False))
            else:
                dynamic.append(node)
        self._constants = constants
        ops = self._fuse_chains(self._ops(dynamic, constants), dynamic)
        self.op_counts = Counter(op.label for op in ops)
        self._steps, self._output_slots, self._slot_count = self._layout(ops, constants)

    def _context(self, node: Node, constants: Mapping[str, Array]) -> BuildContext:
        return BuildContext(node, self.opset, [constants.get(name) for name in node.inputs])

    def _consumers(self, nodes: list[Node]) -> Counter[str]:
        consumers = Counter(name for node in nodes for name in node.inputs)
        consumers.update(self.output_names)
        return consumers

    def _ops(self, nodes: list[Node], constants: Mapping[str, Array]) -> list[_Op]:
        """One op per node, with each activation QuantizeLinear -> DequantizeLinear pair made one op."""
        consumers = self._consumers(nodes)
        readers: dict[str, list[Node]] = {}
        for node in nodes:
            for name in node.inputs:
                readers.setdefault(name, []).append(node)
        ops: list[_Op] = []
        skip: set[int] = set()
        for node in nodes:
            if id(node) in skip:
                continue
            pair = self._qdq_pair(node, readers, consumers, constants)
            if pair is not None:
                dq, quantise = pair
                skip.add(id(dq))
                ops.append(
                    _Op(
                        _copy_float32,
                        node.inputs[:1],
                        dq.outputs,
                        fresh=True,
                        in_place=quantise,
                        epilogue=[quantise],
                        label="FakeQuantize",
                    )
                )
                continue
            ops.append(
                _Op(
                    BUILDERS[node.op_type](self._context(node, constants)),
                    node.inputs,
                    node.outputs,
                    fresh=node.op_type in FRESH_OUTPUT,
                    in_place=IN_PLACE.get(node.op_type),
                    label=node.op_type,
                )
            )
        return ops

    @staticmethod
    def _qdq_pair(
        node: Node,
        readers: Mapping[str, list[Node]],
        consumers: Counter[str],
        constants: Mapping[str, Array],
    ) -> tuple[Node, InPlace] | None:
        """The DequantizeLinear that alone reads this QuantizeLinear with the same parameters, if any."""
        if node.op_type != "QuantizeLinear" or len(node.inputs) < 3 or consumers[node.outputs[0]] != 1:
            return None
        found = readers.get(node.outputs[0], [])
        dq = found[0] if len(found) == 1 else None
        if dq is None or dq.op_type != "DequantizeLinear" or len(dq.inputs) < 3:
            return None
        scale, zero_point = constants.get(node.inputs[1]), constants.get(node.inputs[2])
        dq_scale, dq_zero_point = constants.get(dq.inputs[1]), constants.get(dq.inputs[2])
        if scale is None or zero_point is None or dq_scale is None or dq_zero_point is None:
            return None
        axis = int(node.attributes.get("axis", 1))
        if (
            not np.array_equal(scale, dq_scale)
            or not np.array_equal(zero_point, dq_zero_point)
            or zero_point.dtype != dq_zero_point.dtype
            or axis != int(dq.attributes.get("axis", 1))
            or node.attributes.get("block_size")
            or dq.attributes.get("block_size")
        ):
            return None
        return dq, FakeQuantizer(scale, zero_point, axis)

    def _fuse_chains(self, ops: list[_Op], nodes: list[Node]) -> list[_Op]:
        """Append each op whose only run-time input is the sole use of another op's output to that op.

        Elementwise ops after an op with a fresh output run in place; others run as a plain function of
        the previous result. Either way one step replaces several, which saves interpreter overhead.
        """
        consumers = self._consumers(nodes)
        producer: dict[str, _Op] = {}
        kept: list[_Op] = []
        for op in ops:
            sources = [name for name in op.inputs if name and name not in self._constants]
            source = producer.get(sources[0]) if len(sources) == 1 and len(op.outputs) == 1 else None
            if source is not None and len(source.outputs) == 1 and consumers[sources[0]] == 1:
                if op.in_place is not None and source.fresh:
                    source.epilogue = merge_in_place(source.epilogue, op.in_place)
                else:
                    source.epilogue = [*source.epilogue, self._as_function(op, sources[0])]
                    source.fresh = op.fresh
                source.outputs = op.outputs
                source.label += f"+{op.label}"
                producer[op.outputs[0]] = source
                continue
            kept.append(op)
            for name in op.outputs:
                producer[name] = op
        return kept

    def _as_function(self, op: _Op, source: str) -> InPlace:
        """`op` as a function of its one run-time input."""
        kernel, template = op.fused_kernel(), [self._constants.get(name) for name in op.inputs]
        position = op.inputs.index(source)

        def run(x: Array) -> Array:
            args = template.copy()
            args[position] = x
            return kernel(args)[0]

        return run

    def _layout(self, ops: list[_Op], constants: Mapping[str, Array]) -> tuple[list[_Step], list[int], int]:
        """Steps reading and writing numbered value slots (a list lookup is cheaper than a dict)."""
        slots = {name: index for index, name in enumerate(self.input_names)}

        def slot(name: str) -> int:
            return slots.setdefault(name, len(slots))

        steps = [
            _Step(
                op.fused_kernel(),
                [constants.get(name) for name in op.inputs],
                tuple((i, slot(name)) for i, name in enumerate(op.inputs) if name and name not in constants),
                tuple(slot(name) for name in op.outputs),
                op.label,
            )
            for op in ops
        ]
        return steps, [-1 if name in constants else slot(name) for name in self.output_names], len(slots)

    def run(self, feeds: Mapping[str, Any]) -> list[Array]:
        """The graph outputs, in order, for the named inputs."""
        values: list[Any] = [None] * self._slot_count
        for index, name in enumerate(self.input_names):
            values[index] = feeds[name]
        for step in self._steps:
            args = step.template.copy()
            for position, source in step.dynamic:
                args[position] = values[source]
            for target, value in zip(step.outputs, step.kernel(args), strict=False):
                values[target] = value
        return [
            self._constants[name] if index < 0 else values[index]
            for name, index in zip(self.output_names, self._output_slots, strict=True)
        ]
