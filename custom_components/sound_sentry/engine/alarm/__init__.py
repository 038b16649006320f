"""Smoke and CO alarms heard by their temporal pattern (T3 / T4 tone cadence), without a neural network.

`AlarmPatternDetector` (detector.py) finds alarm tones in short-time spectra of 8 kHz PCM
(`tones.ToneTracker`), and matches their onsets against the patterns (`patterns.PatternMatcher`); what
it listens for, and every tolerance, is in `settings.AlarmSettings`.
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
