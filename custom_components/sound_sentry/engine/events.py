"""What the engine reports: typed events of the model's sounds and of smoke / CO alarm patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias


@dataclass(frozen=True, slots=True)
class SoundEvent:
    """A sound the model hears (e.g. `babycry`) starts (`active`) or ends."""

    label: str
    active: bool
    time_s: float
    """Stream time of the window that caused the transition (its end)."""
    peak_probability: float
    """Highest probability of the event so far (at its start: over the voting windows)."""
    clip_key: str | None = None
    """The key of the event's clip, given by the `ClipRecorder` when the event starts (None without one,
    and for an end)."""


@dataclass(frozen=True, slots=True)
class AlarmEvent:
    """A smoke or CO alarm's beep pattern starts (`active`) or ends; a pattern has no probability."""

    label: str
    """`smoke_alarm` (temporal-three) or `co_alarm` (temporal-four)."""
    active: bool
    time_s: float
    """Stream time at which the pattern was recognised, or at which it ended."""
    frequency_hz: float
    """The alarm's tone (a square wave's fundamental)."""
    cycles: int
    """Cycles of the pattern heard so far (2 when it starts)."""
    clip_key: str | None = None
    """The key of the event's clip, given by the `ClipRecorder` when the event starts (None without one,
    and for an end)."""


DetectionEvent: TypeAlias = SoundEvent | AlarmEvent
"""Any event of the engine: the pipeline's output has both kinds, in time order."""


def event_data(event: DetectionEvent, clip: str | None = None) -> dict[str, float | int | str]:
    """What an event entity shows of a sound that starts, for Home Assistant's entity and MQTT alike.

    A sound: its `confidence` (0..1); an alarm pattern (no probability): the tone's `frequency_hz` and
    the `cycles` heard; with `clip`, also the clip (a media-source id in Home Assistant, a file for MQTT).
    """
    data: dict[str, float | int | str]
    if isinstance(event, AlarmEvent):
        data = {"frequency_hz": round(event.frequency_hz), "cycles": event.cycles}
    else:
        data = {"confidence": round(event.peak_probability, 3)}
    if clip is not None:
        data["clip"] = clip
    return data
