"""EventDetector: k-of-n to start, hold to end, peaks, per class."""

from __future__ import annotations

import pytest

from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.events import SoundEvent

LABELS = ["background", "babycry", "glassbreak", "gunshot"]


def detector(k: int = 2, n: int = 3, hold_s: float = 1.0) -> EventDetector:
    thresholds = {"babycry": 0.5, "glassbreak": 0.6, "gunshot": 0.7}
    return EventDetector(LABELS, DetectorSettings(thresholds=thresholds, k=k, n=n, hold_s=hold_s))


def cry(p: float) -> list[float]:
    return [1 - p, p, 0.0, 0.0]


def run(det: EventDetector, probabilities: list[float], hop_s: float = 0.25) -> list[SoundEvent]:
    events: list[SoundEvent] = []
    for i, p in enumerate(probabilities):
        events += det.process((i + 1) * hop_s, cry(p))
    return events


def test_starts_after_k_of_n_and_carries_peak() -> None:
    events = run(detector(), [0.9, 0.1, 0.7])
    assert events == [SoundEvent("babycry", True, 0.75, 0.9)]


def test_single_window_spike_is_ignored() -> None:
    assert run(detector(), [0.9, 0.1, 0.1, 0.9, 0.1, 0.1]) == []


def test_k_equals_one_fires_on_first_window() -> None:
    assert run(detector(k=1, n=1), [0.55]) == [SoundEvent("babycry", True, 0.25, 0.55)]


def test_ends_after_hold_without_passing_window_with_event_peak() -> None:
    events = run(detector(hold_s=1.0), [0.6, 0.6, 0.95, 0.2, 0.2, 0.2, 0.2, 0.2])
    assert events[0] == SoundEvent("babycry", True, 0.5, 0.6)
    # last passing window at 0.75 s; 1.0 s later (1.75 s) the event ends, peak over the whole event.
    assert events[1] == SoundEvent("babycry", False, 1.75, 0.95)
    assert len(events) == 2


def test_passing_window_during_hold_extends_event() -> None:
    events = run(detector(hold_s=1.0), [0.6, 0.6, 0.2, 0.2, 0.2, 0.6, 0.2, 0.2, 0.2, 0.2])
    assert [e.active for e in events] == [True, False]
    assert events[1].time_s == pytest.approx(2.5)


def test_threshold_is_inclusive_and_classes_are_independent() -> None:
    det = detector(k=1, n=1)
    events = det.process(1.0, [0.0, 0.5, 0.59, 0.7])
    assert [(e.label, e.active) for e in events] == [("babycry", True), ("gunshot", True)]
    assert det.active == {"babycry": True, "glassbreak": False, "gunshot": True}


def test_reset_forgets_votes_and_events() -> None:
    det = detector()
    run(det, [0.9, 0.9])
    assert det.active["babycry"]
    det.reset()
    assert not det.active["babycry"]
    assert det.process(10.0, cry(0.9)) == []


def test_only_configured_classes_are_detected() -> None:
    det = EventDetector(LABELS, DetectorSettings(thresholds={"gunshot": 0.5}, k=1, n=1))
    assert [e.label for e in det.process(1.0, [0.0, 1.0, 1.0, 1.0])] == ["gunshot"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"k": 0},
        {"k": 4, "n": 3},
        {"hold_s": -1.0},
        {"thresholds": {"babycry": 0.0}},
        {"thresholds": {"babycry": 1.5}},
    ],
)
def test_rejects_settings_that_cannot_work(kwargs: dict[str, object]) -> None:
    settings = {"thresholds": {"babycry": 0.5}} | kwargs
    with pytest.raises(ValueError):
        DetectorSettings(**settings)  # type: ignore[arg-type]


def test_rejects_unknown_class() -> None:
    with pytest.raises(ValueError, match="unknown"):
        EventDetector(LABELS, DetectorSettings(thresholds={"doorbell": 0.5}))
