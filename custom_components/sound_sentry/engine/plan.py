"""What the NumPy forward passes share: a pass laid out once as NumPy calls on preallocated buffers.

`StepPlan` holds the calls and the layers both networks build them from; `PlannedNetwork` keeps one plan
per thread and input shape and runs it window by window. `resnetse.py` and `mobilenet.py` lay out their
own architectures on them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
import threading
from typing import Any

import numpy as np

from .graph_walk import Array


class StepPlan:
    """The forward pass for one input shape as a flat list of NumPy calls on preallocated buffers.

    Built once per input shape and thread: every buffer, view and folded constant is made when it is
    built, so a call runs only the arithmetic. A subclass lays its network out in `__init__`, sets
    `input` (the view a window's [bands, frames] is copied into) and ends with `_softmax`.
    """

    input: Array
    output: Array
    """Class probabilities [classes, 1] after the steps have run."""
    embedding: Array
    """The window's embedding [features, 1] after the steps have run: what the softmax head's linear
    layer reads (the temporal stage's input; see `temporal.py`)."""

    def __init__(self) -> None:
        self.steps: list[Callable[[], object]] = []

    def _add(self, function: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        self.steps.append(partial(function, *args, **kwargs))

    def _linear(self, weight: Array, bias: Array, x: Array, out: Array | None = None) -> Array:
        """The product weight [N, K] @ x [K, M] plus bias [N, 1], into `out` (a new buffer by default)."""
        if out is None:
            out = np.zeros((weight.shape[0], x.shape[1]), np.float32)
        self._add(np.matmul, weight, x, out=out)
        self._add(np.add, out, bias, out=out)
        return out

    def _softmax(self, logits: Array) -> None:
        """Softmax over the classes (axis 0) of `logits` [classes, M], in place; it becomes `output`."""
        peak = np.zeros((1, logits.shape[1]), np.float32)
        self._add(np.max, logits, axis=0, keepdims=True, out=peak)
        self._add(np.subtract, logits, peak, out=logits)
        self._add(np.exp, logits, out=logits)
        self._add(np.sum, logits, axis=0, keepdims=True, out=peak)
        self._add(np.divide, logits, peak, out=logits)
        self.output = logits


class PlannedNetwork(ABC):
    """A network run through a `StepPlan` per thread: `__call__` is thread-safe and allocates only its output."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self._local = threading.local()

    @abstractmethod
    def _plan(self, frames: int, bands: int) -> StepPlan:
        """A new plan for windows of this shape."""

    def __call__(self, features: Array) -> Array:
        """Probabilities [B, classes] of float32 windows [B, frames, bands], one window at a time."""
        return self.forward(features)[0]

    def forward(self, features: Array) -> tuple[Array, Array]:
        """Probabilities [B, classes] and embeddings [B, features] of windows [B, frames, bands].

        One window at a time: on the CPUs measured, batching saved nothing per window (ResNetSE: 1.28 ms
        at 4 against 1.30 ms at 1) and would hold B times the work buffers (3.5 MB per ResNetSE window).
        """
        batch, frames, bands = features.shape
        plans: dict[tuple[int, int], StepPlan] = self._local.__dict__.setdefault("plans", {})
        plan = plans.get((frames, bands))
        if plan is None:
            plans.clear()  # one input shape in practice: keep one plan per thread
            plan = plans[frames, bands] = self._plan(frames, bands)
        out = np.empty((batch, self.num_classes), np.float32)
        embeddings = np.empty((batch, plan.embedding.shape[0]), np.float32)
        for index in range(batch):
            np.copyto(plan.input, features[index].T)
            for step in plan.steps:
                step()
            out[index] = plan.output[:, 0]
            embeddings[index] = plan.embedding[:, 0]
        return out, embeddings
