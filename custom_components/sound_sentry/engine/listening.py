"""The listening test: what a source would have detected in a recording, sound by sound.

A user makes or plays a sound while the source records (Home Assistant's options flow, before saving a
taught sound or to check a built-in one). The recording goes through a fresh `Pipeline` with the
source's own settings, so that it decides exactly as the live source does: the level floor, the
temporal stage, k of n and the hold time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from .level import level_dbfs
from .pipeline import Pipeline

if TYPE_CHECKING:
    from .alarm import AlarmSettings
    from .detector import DetectorSettings
    from .model import LoadedModel
    from .taught import TaughtSound


@dataclass(frozen=True, slots=True)
class SoundResult:
    """How one sound fared in the test."""

    label: str
    peak: float | None
    """The highest probability any window gave it (None for a smoke or CO alarm: a pattern has none)."""
    threshold: float | None
    """The probability a window must reach at the source's sensitivity (None for an alarm)."""
    detected: bool
    """Whether the source would have turned the sound on (the detector's decision, k of n included)."""


@dataclass(frozen=True, slots=True)
class ListeningReport:
    """What a recording would have made the source detect, and how loud the room was."""

    sounds: tuple[SoundResult, ...]
    """The model's sounds the source detects, then its taught sounds, then its alarms."""
    level_dbfs: float
    """The room's level: the median level of the recording's windows (of the whole, if shorter)."""
    peak_dbfs: float
    """The loudest window's level."""
    silent: bool
    """No window was loud enough to be classified (the pipeline's level floor): the source sends
    silence, or something far too quiet to hear."""

    def result(self, label: str) -> SoundResult:
        """The result of one sound; KeyError for a sound that was not tested."""
        for sound in self.sounds:
            if sound.label == label:
                return sound
        raise KeyError(label)


def listening_test(
    model: LoadedModel,
    settings: DetectorSettings,
    samples: npt.NDArray[np.float32],
    *,
    taught: Mapping[str, TaughtSound] | None = None,
    alarms: AlarmSettings | None = None,
) -> ListeningReport:
    """Run `samples` (8 kHz mono) through a fresh pipeline of the source's settings (blocking).

    `settings` holds a threshold per sound the source detects, taught ones included
    (`detection_settings.with_taught`); `taught` are their heads and `alarms` the alarm patterns it
    listens for. The report has a result per sound in `settings` and per alarm.
    """
    pipeline = Pipeline.for_model(model, detector=settings, taught=taught, alarms=alarms)
    output = pipeline.process(samples)
    events = [*output.events, *pipeline.finish().events]
    detected = {event.label for event in events if event.active}
    peaks: dict[str, float] = {}
    for window in output.windows:
        for label, probability in window.probabilities.items():
            peaks[label] = max(peaks.get(label, 0.0), probability)
    sounds = [
        SoundResult(label, peaks.get(label, 0.0), threshold, label in detected)
        for label, threshold in settings.thresholds.items()
    ]
    sounds += [
        SoundResult(label, None, None, label in detected) for label in (alarms.labels if alarms else ())
    ]
    levels = [window.dbfs for window in output.windows] or [level_dbfs(samples)]
    return ListeningReport(
        sounds=tuple(sounds),
        level_dbfs=float(np.median(levels)),
        peak_dbfs=max(levels),
        silent=not any(window.classified for window in output.windows),
    )
