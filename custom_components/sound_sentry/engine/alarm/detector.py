"""The smoke / CO alarm detector: a tone tracker and a pattern matcher behind one streaming interface."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..events import AlarmEvent
from .patterns import PatternMatcher
from .settings import AlarmSettings, TemporalPattern
from .tones import ToneTracker


class AlarmPatternDetector:
    """Streaming T3 / T4 detector over 8 kHz float32 PCM in chunks of any length.

    `ToneTracker` cuts short-time spectra into tones (onset, length, pitch) per tone band;
    `PatternMatcher` matches their onsets against the patterns (see both). `process()` returns
    `AlarmEvent`s (labels `smoke_alarm`, `co_alarm`) with the tone's `frequency_hz` and the `cycles`
    heard. Not thread-safe; `reset()` between streams.
    """

    def __init__(self, settings: AlarmSettings | None = None) -> None:
        self.settings = settings or AlarmSettings()
        self.tracker = ToneTracker(self.settings)
        self.matcher = PatternMatcher(self.settings)

    @property
    def patterns(self) -> list[TemporalPattern]:
        """The patterns reported."""
        return self.matcher.patterns

    def reset(self) -> None:
        """Start over, as for a new stream: no audio, no tones, no alarms, time 0."""
        self.tracker.reset()
        self.matcher.reset()

    @property
    def active(self) -> dict[str, bool]:
        """Whether each reported alarm is sounding now."""
        return self.matcher.active

    def process(self, samples: npt.NDArray[np.float32]) -> list[AlarmEvent]:
        """Feed float32 PCM at `sample_rate_hz` (any length); return the alarm starts and ends, in order."""
        heard = self.tracker.process(samples)
        return self.matcher.process(heard) if heard is not None else []

    def finish(self) -> list[AlarmEvent]:
        """The stream ended (a recording's last sample): return the events of what is left to analyse.

        Analyses the audio still held back for a block and ends the tones still sounding (nothing follows
        them). Alarms still on are not ended. `reset()` before feeding another stream.
        """
        return self.matcher.process(self.tracker.finish())
