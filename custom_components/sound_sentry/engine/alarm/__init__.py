"""Smoke and CO alarms heard by their temporal pattern (T3 / T4 tone cadence), without a neural network.

`AlarmPatternDetector` (detector.py) finds alarm tones in short-time spectra of 8 kHz PCM
(`tones.ToneTracker`), and matches their onsets against the patterns (`patterns.PatternMatcher`); what
it listens for, and every tolerance, is in `settings.AlarmSettings`.

A piezo whose beep splits into several spectral lines (a recorded First Alert alarm's at about 2.2 / 2.6 /
3.0 / 3.5 kHz, irregularly spaced, their levels changing from beep to beep, in a room) is heard by its
lines: the tracker keeps each such beep's line frequencies (`Tone.lines_hz`), and the matcher takes two
beeps for one alarm's when at least two of their lines coincide. Their power-weighted centre, which the
matcher compared before, moves by 5-15% from beep to beep with the lines' levels, far past the 1.5% an
alarm's pitch may move, so no such alarm was ever heard (`benchmarks.alarms`, *T3 split beep*: 0%). A
spectrum also counts as several lines when two of them lie in the searched band, though their centre
lies below it (the 2.2 kHz line loudest).
"""

from .detector import AlarmPatternDetector
from .patterns import PatternMatcher
from .settings import (
    CO_ALARM,
    LOW_FREQUENCY,
    PATTERNS,
    PIEZO,
    SMOKE_ALARM,
    T3,
    T4,
    AlarmSettings,
    TemporalPattern,
    ToneBand,
)
from .tones import Tone, TonesHeard, ToneTracker

__all__ = [
    "CO_ALARM",
    "LOW_FREQUENCY",
    "PATTERNS",
    "PIEZO",
    "SMOKE_ALARM",
    "T3",
    "T4",
    "AlarmPatternDetector",
    "AlarmSettings",
    "PatternMatcher",
    "TemporalPattern",
    "Tone",
    "ToneBand",
    "ToneTracker",
    "TonesHeard",
]
