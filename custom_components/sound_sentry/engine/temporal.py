"""The temporal stage: a causal GRU over the model's window embeddings that decides on sequences.

The network classifies each 2 s window on its own; the temporal stage reads the windows in order (each
window's embedding and log-probabilities) and carries a hidden state from one window to the next, so it
hears context: one shot against a rhythm of hammer blows, a cry that goes on against a laugh. It is
causal (it sees no window after the one it scores) and outputs per-window class probabilities, which
the `EventDetector` debounces as before.

It ships as a second small ONNX graph next to the model (named in the sidecar, `ModelInfo.temporal`),
with its state as an input and an output, so that one instance serves every source and each pipeline
keeps its own state (reset with the pipeline on a reconnect). The graph is exactly:

    inputs [T, D] --Unsqueeze(1)--> GRU(W, R, B, initial_h = Unsqueeze(state, 0), linear_before_reset=1)
      Y [T, 1, 1, H] --Squeeze(1, 2)--> Gemm(transB=1) --> Softmax(axis=1) --> probabilities [T, C]
      Y_h [1, 1, H] --Squeeze(0)--> next_state [1, H]

with the inputs' normalisation folded into W and B. onnxruntime runs it where it installs; `NumpyTemporal`
runs the same file everywhere else (parity 1e-4, tested).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from .backends import import_onnxruntime
from .graph_walk import GraphWalker, UnsupportedModelError
from .model_info import ModelLoadError
from .onnx_proto import decode_model

Array = npt.NDArray[np.float32]

INPUTS = "inputs"
STATE = "state"
PROBABILITIES = "probabilities"
NEXT_STATE = "next_state"
LOG_FLOOR = 1e-6
"""Probabilities are clipped here before their log: a certain window's log-probabilities stay finite."""


def temporal_inputs(probabilities: npt.ArrayLike, embeddings: npt.ArrayLike) -> Array:
    """What the stage reads per window: [embedding, log(probabilities)], [T, E + C] float32.

    The one definition of the stage's input, for training and the engine alike.
    """
    probs = np.asarray(probabilities, dtype=np.float32)
    log_probs = np.log(np.clip(probs, LOG_FLOOR, 1.0))
    joined: Array = np.concatenate([np.asarray(embeddings, dtype=np.float32), log_probs], axis=1)
    return joined.astype(np.float32)


class TemporalRuntime(Protocol):
    """Runs the temporal stage: stateless, so one instance serves every source."""

    name: str
    hidden_size: int
    input_size: int

    def run(self, inputs: Array, state: Array) -> tuple[Array, Array]:
        """Probabilities [T, C] of T windows' inputs [T, D] in time order, and the state [1, H] after them."""
        ...


def initial_state(runtime: TemporalRuntime) -> Array:
    """The state of a new stream: zeros [1, H]."""
    return np.zeros((1, runtime.hidden_size), np.float32)


def _sigmoid(x: Array) -> Array:
    out: Array = 0.5 * (np.tanh(0.5 * x) + 1.0)  # no overflow for large |x|
    return out


class NumpyTemporal:
    """The temporal stage's ONNX graph (see the module docstring) run with NumPy only."""

    name = "numpy"

    def __init__(self, path: Path) -> None:
        """Decode the graph and take its weights; raise ModelLoadError if it is not the stage's graph."""
        self.path = path
        try:
            graph = decode_model(_read(path)).graph
            walk = GraphWalker(graph, "temporal stage")
            if [i.name for i in graph.inputs] != [INPUTS, STATE] or [o.name for o in graph.outputs] != [
                PROBABILITIES,
                NEXT_STATE,
            ]:
                raise walk.fail(
                    None, f"needs inputs {INPUTS}, {STATE} and outputs {PROBABILITIES}, {NEXT_STATE}"
                )
            softmax = walk.node(PROBABILITIES, "Softmax", axis=1)
            (self._head_w, head_b), tensor = walk.gemm(softmax.inputs[0])
            self._head_b = head_b[:, 0]
            squeeze = walk.node(tensor, "Squeeze")
            if walk.axes(squeeze) != [1, 2]:
                raise walk.fail(squeeze, "must drop the direction and batch axes (1, 2)")
            gru = walk.node(squeeze.inputs[0], "GRU", linear_before_reset=1, direction="forward")
            state_squeeze = walk.node(NEXT_STATE, "Squeeze")
            if walk.axes(state_squeeze) != [0] or state_squeeze.inputs[0] != gru.outputs[1]:
                raise walk.fail(state_squeeze, "next_state must be the GRU's last hidden state")
            unsqueeze = walk.node(gru.inputs[0], "Unsqueeze")
            state_unsqueeze = walk.node(gru.inputs[5], "Unsqueeze")
            if (
                walk.axes(unsqueeze) != [1]
                or unsqueeze.inputs[0] != INPUTS
                or walk.axes(state_unsqueeze) != [0]
                or state_unsqueeze.inputs[0] != STATE
                or gru.inputs[4]
            ):
                raise walk.fail(gru, "must read the inputs as one sequence of batch 1, from the given state")
            weights, recurrent, bias = (walk.weight(gru, i)[0] for i in (1, 2, 3))
            walk.check_all_used()
        except UnsupportedModelError as err:
            raise ModelLoadError(f"temporal stage {path} cannot run on the NumPy runtime ({err})") from err
        except (IndexError, ValueError, KeyError) as err:
            raise ModelLoadError(
                f"temporal stage {path} is malformed ({err}): reinstall Sound Sentry"
            ) from err
        self.hidden_size = hidden = int(gru.attributes["hidden_size"])
        if (
            weights.shape[0] != 3 * hidden
            or recurrent.shape != (3 * hidden, hidden)
            or bias.shape != (6 * hidden,)
        ):
            raise ModelLoadError(f"temporal stage {path}: its GRU weights do not fit hidden_size {hidden}")
        if self._head_w.shape[1] != hidden:
            raise ModelLoadError(
                f"temporal stage {path}: its head reads {self._head_w.shape[1]}, not {hidden}"
            )
        self.input_size = int(weights.shape[1])
        self._w = np.ascontiguousarray(weights.T)  # [D, 3H], gates z, r, h (ONNX order)
        self._r_zr = np.ascontiguousarray(recurrent[: 2 * hidden].T)  # [H, 2H]
        self._r_h = np.ascontiguousarray(recurrent[2 * hidden :].T)  # [H, H]
        self._wb = bias[: 3 * hidden].copy()
        self._rb_zr, self._rb_h = bias[3 * hidden : 5 * hidden].copy(), bias[5 * hidden :].copy()

    def run(self, inputs: Array, state: Array) -> tuple[Array, Array]:
        """Probabilities [T, C] of T windows' inputs [T, D] in time order, and the state [1, H] after them."""
        x = np.asarray(inputs, np.float32)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"inputs must be [windows, {self.input_size}], got {x.shape}")
        hidden = self.hidden_size
        h = np.asarray(state, np.float32).reshape(hidden).copy()
        gates_x = x @ self._w + self._wb  # [T, 3H]
        out = np.empty((x.shape[0], hidden), np.float32)
        for t in range(x.shape[0]):
            zr = _sigmoid(gates_x[t, : 2 * hidden] + h @ self._r_zr + self._rb_zr)
            z, r = zr[:hidden], zr[hidden:]
            candidate = np.tanh(gates_x[t, 2 * hidden :] + r * (h @ self._r_h + self._rb_h))
            h = (1.0 - z) * candidate + z * h
            out[t] = h
        logits = out @ self._head_w.T + self._head_b
        logits -= logits.max(axis=1, keepdims=True)
        probs = np.exp(logits)
        probs /= probs.sum(axis=1, keepdims=True)
        return probs.astype(np.float32), h.reshape(1, hidden).astype(np.float32)


class OnnxTemporal:
    """The temporal stage's ONNX graph on onnxruntime (one thread, as the model)."""

    name = "onnxruntime"

    def __init__(self, path: Path, ort: Any) -> None:
        """Open a session; raise ModelLoadError if onnxruntime cannot load the graph."""
        self.path = path
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(_read(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelLoadError(
                f"temporal stage {path} could not be loaded by onnxruntime ({str(err).strip()[:300]}): "
                "reinstall Sound Sentry"
            ) from err
        inputs = {i.name: i.shape for i in self._session.get_inputs()}
        if set(inputs) != {INPUTS, STATE}:
            raise ModelLoadError(f"temporal stage {path} needs inputs {INPUTS} and {STATE}")
        self.input_size = int(inputs[INPUTS][1])
        self.hidden_size = int(inputs[STATE][1])

    def run(self, inputs: Array, state: Array) -> tuple[Array, Array]:
        """Probabilities [T, C] of T windows' inputs [T, D] in time order, and the state [1, H] after them."""
        probs, next_state = self._session.run(
            [PROBABILITIES, NEXT_STATE],
            {
                INPUTS: np.ascontiguousarray(inputs, np.float32),
                STATE: np.ascontiguousarray(state, np.float32),
            },
        )
        return np.asarray(probs, np.float32), np.asarray(next_state, np.float32)


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"temporal stage {path} not found: reinstall Sound Sentry") from None
    except OSError as err:
        raise ModelLoadError(f"temporal stage {path} is unreadable ({err.strerror or err})") from err


def load_temporal(path: Path, runtime: str) -> TemporalRuntime:
    """The temporal stage on the model's runtime ("numpy" or "onnxruntime")."""
    if runtime == "onnxruntime":
        ort = import_onnxruntime()
        if ort is None:
            raise ModelLoadError("the onnxruntime runtime was requested but onnxruntime is not installed")
        return OnnxTemporal(path, ort)
    return NumpyTemporal(path)
