"""Turn per-window class probabilities into debounced sound events (k-of-n to start, hold to end)."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .events import SoundEvent

DEFAULT_HOLD_S = 2.0
"""Seconds without a passing window before an event ends: `DetectorSettings`' default, also written in
the sidecar of a model exported without tuned settings (`training.export`)."""


@dataclass(frozen=True, kw_only=True)
class DetectorSettings:
    """How eager and how sticky detection is, per event class."""

    thresholds: Mapping[str, float]
    """Probability a window must reach for each event class; classes not listed are never detected."""
    k: int = 2
    """Windows among the last `n` that must pass the threshold to start an event."""
    n: int = 3
    """Length of the voting history, in windows."""
    hold_s: float = DEFAULT_HOLD_S
    """Seconds without a passing window before an event ends."""

    def __post_init__(self) -> None:
        """Reject settings that could never (or always) fire."""
        if not 1 <= self.k <= self.n:
            raise ValueError(f"need 1 <= k <= n, got k={self.k}, n={self.n}")
        if self.hold_s < 0:
            raise ValueError(f"hold_s must be >= 0, got {self.hold_s}")
        for label, threshold in self.thresholds.items():
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"threshold for {label} must be in (0, 1], got {threshold}")


@dataclass(slots=True)
class _ClassState:
    votes: deque[float]
    active: bool = False
    last_pass_s: float = float("-inf")
    peak: float = 0.0


@dataclass
class EventDetector:
    """Debounces per-window probabilities into start/end events, one state machine per class.

    An event starts when `k` of the last `n` windows reach the class's threshold, and ends once
    `hold_s` seconds pass without such a window. Feed windows in time order to `process()`.
    """

    labels: list[str]
    settings: DetectorSettings
    _states: dict[str, _ClassState] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Create one state per detected class."""
        unknown = set(self.settings.thresholds) - set(self.labels)
        if unknown:
            raise ValueError(f"thresholds for unknown classes: {sorted(unknown)}")
        self.reset()

    def reset(self) -> None:
        """End every event silently and forget the voting history (e.g. after a reconnect)."""
        self._states = {
            label: _ClassState(votes=deque(maxlen=self.settings.n)) for label in self.settings.thresholds
        }

    @property
    def active(self) -> dict[str, bool]:
        """Whether each detected class is in an event now."""
        return {label: state.active for label, state in self._states.items()}

    def process(self, time_s: float, probabilities: npt.ArrayLike) -> list[SoundEvent]:
        """Take one window's probabilities (in `labels` order); return the transitions it causes."""
        probs = np.asarray(probabilities, dtype=np.float64).reshape(-1)
        events: list[SoundEvent] = []
        for label, state in self._states.items():
            probability = float(probs[self.labels.index(label)])
            threshold = self.settings.thresholds[label]
            state.votes.append(probability)
            if probability >= threshold:
                state.last_pass_s = time_s
            if state.active:
                state.peak = max(state.peak, probability)
                if time_s - state.last_pass_s >= self.settings.hold_s:
                    state.active = False
                    events.append(SoundEvent(label, False, time_s, state.peak))
            elif sum(vote >= threshold for vote in state.votes) >= self.settings.k:
                state.active = True
                state.peak = max(state.votes)
                events.append(SoundEvent(label, True, time_s, state.peak))
        return events
