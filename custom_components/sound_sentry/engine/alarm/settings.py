"""What the smoke / CO alarm detector listens for: the T3 / T4 patterns, the tone bands, every tolerance.

Smoke alarms sound the temporal-three pattern (ISO 8201, NFPA 72: three 0.5 s tones 0.5 s apart, then
1.5 s of silence, repeating); CO alarms the temporal-four pattern (four 0.1 s tones 0.1 s apart, then
about 5 s of silence). The tone is a piezo at about 2.8-3.5 kHz, or, in low-frequency alarms for sleeping
rooms, a 520 Hz square wave.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
import math

SMOKE_ALARM = "smoke_alarm"
CO_ALARM = "co_alarm"


@dataclass(frozen=True, kw_only=True)
class TemporalPattern:
    """A temporal alarm pattern: `tones` equal tones, then a pause, repeating."""

    label: str
    """The event label the pattern reports (`smoke_alarm`, `co_alarm`)."""
    tones: int
    """Tones in one cycle."""
    on_s: float
    """Nominal length of one tone."""
    off_s: float
    """Nominal silence between the tones of a cycle."""
    pause_s: float
    """Nominal silence after the last tone of a cycle."""

    @property
    def onset_interval_s(self) -> float:
        """Onset-to-onset time of the tones within a cycle."""
        return self.on_s + self.off_s

    @property
    def cycle_s(self) -> float:
        """Onset of a cycle's first tone to the onset of the next cycle's first tone."""
        return self.tones * self.on_s + (self.tones - 1) * self.off_s + self.pause_s


T3 = TemporalPattern(label=SMOKE_ALARM, tones=3, on_s=0.5, off_s=0.5, pause_s=1.5)
"""Temporal-three (ISO 8201, NFPA 72 18.4.3): smoke alarms and evacuation signals; a 4 s cycle."""
T4 = TemporalPattern(label=CO_ALARM, tones=4, on_s=0.1, off_s=0.1, pause_s=5.0)
"""Temporal-four (NFPA 720, UL 2034): carbon monoxide alarms; a 5.7 s cycle."""
PATTERNS = (T3, T4)


@dataclass(frozen=True, kw_only=True)
class ToneBand:
    """Where one kind of alarm tone lives in the spectrum."""

    name: str
    """`piezo` or `low_frequency`; for logs and tests."""
    low_hz: float
    """Lowest fundamental searched."""
    high_hz: float
    """Highest fundamental searched."""
    harmonics: tuple[int, ...]
    """Multiples of the fundamental whose energy counts as the tone (a square wave has odd harmonics)."""
    reference_low_hz: float
    """The tone's energy is compared with all energy from here..."""
    reference_high_hz: float
    """...to here: the tonal share is tone / this band."""
    frequency_tolerance: float
    """A tone is cut where the spectrum's peak jumps by more than this fraction of its frequency (plus
    one FFT bin): a background's tone giving way to the alarm's."""
    match_tolerance: float
    """Tones of one alarm differ by at most this fraction of their frequency (plus an eighth of a bin) in
    their median pitch: an alarm's oscillator is steady from tone to tone."""


PIEZO = ToneBand(
    name="piezo",
    low_hz=2500.0,
    high_hz=3900.0,
    harmonics=(1,),
    reference_low_hz=2000.0,
    reference_high_hz=4000.0,
    frequency_tolerance=0.03,
    match_tolerance=0.005,
)
"""Piezo horns: 2.8-3.5 kHz nominal, searched with margin up to the 4 kHz Nyquist limit."""
LOW_FREQUENCY = ToneBand(
    name="low_frequency",
    low_hz=460.0,
    high_hz=580.0,
    harmonics=(1, 3, 5, 7),
    reference_low_hz=250.0,
    reference_high_hz=4000.0,
    frequency_tolerance=0.05,
    match_tolerance=0.01,
)
"""Low-frequency alarms (UL 217 / NFPA 72 sleeping rooms): a 520 Hz (+-10%) square wave."""


@dataclass(frozen=True, kw_only=True)
class AlarmSettings:
    """What the alarm pattern detector listens for, and how strictly."""

    labels: Sequence[str] = (SMOKE_ALARM, CO_ALARM)
    """The patterns to report, by label; the others are not matched."""
    sample_rate_hz: int = 8000
    """Rate of the PCM fed to `process()`."""
    n_fft: int = 256
    """Samples per short-time spectrum (32 ms at 8 kHz: 31 Hz bins, fine enough for 0.1 s tones)."""
    hop_s: float = 0.02
    """Seconds between spectra."""
    block_s: float = 1.0
    """Audio is analysed once this much has arrived, so that 20 ms chunks cost no more than long ones (an
    alarm turns on up to this much later: small beside its two cycles)."""
    tonal_share_on: float = 0.5
    """A tone starts where the tone's share of its reference band reaches this..."""
    tonal_share_off: float = 0.3
    """...and goes on while the share stays at or above this (hysteresis)."""
    min_tone_dbfs: float = -70.0
    """Level gate: quieter tones are ignored (the tone's own power, dBFS as the sound level sensor)."""
    release_db: float = 8.0
    """A tone ends where it falls this far below its loudest in the last `release_window_s`, so that
    room reverb, which keeps a decaying tone in the gaps, does not join the tones."""
    release_window_s: float = 0.3
    """See `release_db`."""
    bridge_s: float = 0.04
    """Dips this short within a tone do not end it (a room's interference while the reverb builds up)."""
    join_fraction: float = 0.6
    """Tones of one pitch whose onsets are less than this fraction of a pattern's onset interval apart
    are pieces of one tone (longer notches than `bridge_s`, from the room) when matching that pattern."""
    join_gap_s: float = 0.1
    """...and at most this far apart (a notch: a sound of that pitch just before a tone is not part of it)."""
    sounding_fraction: float = 0.5
    """A joined tone must have sounded at least this fraction of a pattern's shortest tone (not a few
    fragments spread over a tone's length)."""
    timing_tolerance: float = 0.10
    """Allowed relative error of each on, off and pause time: the standards' +-10%."""
    timing_slack_s: float = 0.06
    """Added to each timing tolerance: the spectra's own time resolution (hop and window)."""
    reverb_fill: float = 0.6
    """A tone may look longer than nominal by this fraction of the following gap (reverb)."""
    repeat_slack_s: float = 0.2
    """The two cycles that turn an alarm on must match tone by tone: each onset interval and each tone's
    length (but the last's, which reverb may lengthen into the pause) within this much."""
    other_tone_s: float = 0.3
    """No tone of another pitch this long (and as long as a pattern's tone) may sound in the band in the pause between the two cycles that
    turn an alarm on: an alarm's pause is silent, a melody's is not (checked for patterns whose tones are
    at least this long: T3)."""
    line_floor_db: float = 10.0
    """A piezo beep may split into several spectral lines (the loudest holding a quarter of the band):
    lines at most this far below the loudest count as the tone, with it..."""
    line_contrast_db: float = 10.0
    """...when their peak stands this far above the band's median bin (a narrow line, not noise)..."""
    max_lines: int = 5
    """...the loudest this many."""
    line_presence: float = 1 / 3
    """A beep of several lines has the lines that peaked in at least this fraction of its spectra of
    several lines (not a noise's peak that came and went)."""
    lines_match_tolerance: float = 0.015
    """Beeps of several lines are one alarm's when at least two of their lines lie within this fraction
    of each other: the alarm's lines hold their frequencies, but their levels change from beep to beep
    and the room fades each differently, so neither their centre nor the loudest is steady (a single
    line's pitch is held to its band's `match_tolerance`)."""
    max_tone_s: float = 1.5
    """A tone longer than this is a continuous sound, not a pattern's tone."""
    end_after_cycles: float = 2.0
    """An alarm ends when no whole cycle of its tones has been heard for this many cycles (one cycle
    missed, e.g. under a loud noise, does not end it)."""
    keep_on_tolerance: float = 0.05
    """While an alarm is on, a cycle keeps it on when its tone is within this fraction (plus a bin) of
    the alarm's."""
    harmonic_tolerance: float = 0.01
    """A piezo-band tone is a square wave's odd harmonic when it lies within this fraction (plus half a
    bin) of a multiple of a low-frequency tone that starts with it."""
    low_frequency: ToneBand = LOW_FREQUENCY
    """Where the low-frequency alarms' square wave is searched, and its tolerances."""
    piezo: ToneBand = PIEZO
    """Where piezo beeps are searched, and their tolerances."""

    @property
    def bands(self) -> tuple[ToneBand, ToneBand]:
        """The tone bands, in the order tones are tracked and reported: low frequency, piezo."""
        return self.low_frequency, self.piezo

    def __post_init__(self) -> None:
        """Reject settings that cannot work."""
        unknown = set(self.labels) - {pattern.label for pattern in PATTERNS}
        if unknown:
            raise ValueError(f"unknown alarm labels {sorted(unknown)}; known: {SMOKE_ALARM}, {CO_ALARM}")
        if self.sample_rate_hz < 2 * self.piezo.reference_high_hz:
            raise ValueError(f"sample_rate_hz must be at least 8000, not {self.sample_rate_hz}")
        for name in ("hop_s", "block_s", "release_window_s", "max_tone_s", "end_after_cycles"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if not 0 < self.tonal_share_off <= self.tonal_share_on <= 1:
            raise ValueError("need 0 < tonal_share_off <= tonal_share_on <= 1")
        if self.n_fft < 64 or self.hop_s * self.sample_rate_hz < 1:
            raise ValueError("n_fft must be at least 64 and hop_s at least one sample")
        if self.sample_rate_hz / self.n_fft > self.low_frequency.low_hz / 3:
            raise ValueError(
                f"n_fft must be at least {3 * self.sample_rate_hz / self.low_frequency.low_hz:.0f}"
            )
