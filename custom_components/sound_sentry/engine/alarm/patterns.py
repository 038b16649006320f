"""T3 / T4 alarm patterns in tones: cycles of tones at the pattern's intervals, two cycles an alarm.

The second half of the smoke / CO alarm detector (`AlarmPatternDetector`); `tones.ToneTracker` hears the
tones it matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
import statistics

from ..events import AlarmEvent
from .settings import PATTERNS, AlarmSettings, TemporalPattern
from .tones import Tone, TonesHeard


@dataclass(slots=True)
class CycleHeard:
    """One cycle's tones, as heard."""

    band: int
    """Index in `AlarmSettings.bands` of the band it was heard in."""
    onsets_s: tuple[float, ...]
    durations_s: tuple[float, ...]
    frequency_hz: float
    reported_hz: float
    """What to report: `frequency_hz`, or the fundamental of a square wave heard in the piezo band."""
    several_lines: bool = False
    """Its tones are beeps of several lines."""
    lines_hz: tuple[float, ...] = ()
    """Beeps of several lines: the lines of its last tone (each of its tones shares two with it)."""


@dataclass(slots=True)
class _Alarm:
    """Per pattern: groups heard lately and whether the alarm is on."""

    groups: list[CycleHeard] = field(default_factory=list)
    active: bool = False
    frequency_hz: float = 0.0
    """The alarm's tone (a square wave's fundamental)."""
    heard_hz: tuple[float, ...] = ()
    """The frequencies whose cycles keep it on (a square wave's fundamental and a harmonic)."""
    lines_hz: tuple[float, ...] = ()
    """Beeps of several lines: the lines whose cycles keep it on (two of them shared)."""
    cycles: int = 0
    last_group_s: float = 0.0


def _joined(tones: list[Tone], within_s: float, gap_s: float) -> list[Tone]:
    """`tones` with pieces of one tone joined.

    A tone is joined to the one before when it starts less than `within_s` after it, and at most `gap_s`
    after its end (a notch, not a sound of its own before the tone).
    """
    joined: list[Tone] = []
    for tone in tones:
        if (
            joined
            and tone.onset_s - joined[-1].onset_s < within_s
            and tone.onset_s - joined[-1].offset_s <= gap_s
        ):
            last = joined[-1]
            joined[-1] = Tone(
                last.onset_s,
                max(last.offset_s, tone.offset_s),
                last.frequency_hz,
                last.sounding_s + tone.sounding_s,
                last.several_lines,
                last.lines_hz,
            )
        else:
            joined.append(tone)
    return joined


class PatternMatcher:
    """Streaming T3 / T4 matcher of the tones a `ToneTracker` hears.

    A pattern's cycle is heard when its tones' onsets come at the pattern's interval (within the
    standards' tolerance), at one frequency, with no such tone just before; the alarm turns on after two
    cycles one cycle apart with nothing of that frequency between them, and ends when no cycle has come
    for `end_after_cycles` cycles. Not thread-safe; `reset()` between streams.
    """

    def __init__(self, settings: AlarmSettings) -> None:
        self.settings = settings
        self.patterns = [pattern for pattern in PATTERNS if pattern.label in settings.labels]
        self._bin_hz = settings.sample_rate_hz / settings.n_fft
        self.reset()

    def reset(self) -> None:
        """Start over, as for a new stream: no tones, no alarms."""
        self.tones: list[list[Tone]] = [[] for _ in self.settings.bands]
        """Per band, the tones heard lately (what two cycles of the slowest pattern can still need)."""
        self._alarms = {pattern.label: _Alarm() for pattern in self.patterns}

    @property
    def active(self) -> dict[str, bool]:
        """Whether each reported alarm is sounding now."""
        return {label: alarm.active for label, alarm in self._alarms.items()}

    def process(self, heard: TonesHeard) -> list[AlarmEvent]:
        """Match the tones that ended; return the alarm starts and ends, in time order."""
        events: list[AlarmEvent] = []
        for index, tone in heard.tones:
            self.tones[index].append(tone)
            events.extend(self._match(index, tone))
        if heard.analysed_s is not None:
            events.extend(self._end_alarms(heard.analysed_s))
        events.sort(key=lambda event: event.time_s)
        return events

    def _shortest(self, pattern: TemporalPattern) -> float:
        """The shortest a pattern's tone may be heard (its tolerance, the spectra's resolution twice)."""
        settings = self.settings
        return max(
            pattern.on_s / 2, pattern.on_s * (1 - settings.timing_tolerance) - 2 * settings.timing_slack_s
        )

    def _one_alarm(self, index: int, a: Tone | CycleHeard, b: Tone | CycleHeard) -> bool:
        """Whether two tones (or cycles) heard in band `index` can be one alarm's.

        One line each: at the same pitch, within the band's `match_tolerance`. Several lines each: at
        least two of them at the same frequencies (`lines_match_tolerance`), whatever their levels.
        """
        if a.several_lines != b.several_lines:
            return False
        if a.several_lines:
            return self._shared_lines(a.lines_hz, b.lines_hz) >= 2
        tolerance = self.settings.bands[index].match_tolerance * a.frequency_hz + self._bin_hz / 8
        return abs(a.frequency_hz - b.frequency_hz) <= tolerance

    def _shared_lines(self, a_hz: tuple[float, ...], b_hz: tuple[float, ...]) -> int:
        """How many of the lines `a_hz` lie within `lines_match_tolerance` (plus 1/8 bin) of one of `b_hz`."""
        fraction = self.settings.lines_match_tolerance
        return sum(any(abs(a - b) <= fraction * a + self._bin_hz / 8 for b in b_hz) for a in a_hz)

    def _within(self, actual: float, nominal: float) -> bool:
        settings = self.settings
        return abs(actual - nominal) <= settings.timing_tolerance * nominal + settings.timing_slack_s

    def _match(self, index: int, tone: Tone) -> list[AlarmEvent]:
        """Match the tone that just ended: does it complete a cycle, and do two cycles start an alarm."""
        settings = self.settings
        heard = self.tones[index]
        # Keep what two cycles of the slowest pattern, and the tone before them, can still need.
        horizon = tone.offset_s - 3 * max(pattern.cycle_s for pattern in PATTERNS)
        while heard and heard[0].offset_s < horizon:
            heard.pop(0)
        same = [t for t in heard if self._one_alarm(index, t, tone)]
        decided_s = tone.offset_s + settings.n_fft / 2 / settings.sample_rate_hz  # the spectrum's end
        events = self._end_alarms(decided_s)  # an alarm that ended before this tone
        for pattern in self.patterns:
            longest = pattern.on_s + settings.reverb_fill * pattern.off_s + settings.timing_slack_s
            shortest = self._shortest(pattern)
            # Pieces of one tone (a room's interference can notch a tone for a moment) are one tone:
            # they start well within one onset interval of each other. Shorter sounds of the same pitch
            # (a background's) neither count nor break the pattern.
            candidates = [
                t
                for t in _joined(same, pattern.onset_interval_s * settings.join_fraction, settings.join_gap_s)
                if t.duration_s >= shortest and t.sounding_s >= shortest * settings.sounding_fraction
            ]
            if len(candidates) < pattern.tones or candidates[-1].offset_s != tone.offset_s:
                continue
            group = candidates[-pattern.tones :]
            if not all(shortest <= t.duration_s <= longest for t in group[:-1]):
                continue
            if not shortest <= group[-1].duration_s <= longest + settings.reverb_fill * pattern.pause_s:
                continue
            if not all(
                self._within(b.onset_s - a.onset_s, pattern.onset_interval_s) for a, b in pairwise(group)
            ):
                continue
            before = candidates[-pattern.tones - 1] if len(candidates) > pattern.tones else None
            if (
                before is not None
                and group[0].onset_s - before.onset_s
                <= pattern.onset_interval_s * (1 + settings.timing_tolerance) + settings.timing_slack_s
            ):
                continue  # part of a longer run of tones: not this pattern
            frequency = statistics.median([t.frequency_hz for t in group])
            reported = self._fundamental(index, group, frequency, shortest)
            events.extend(
                self._cycle(
                    pattern,
                    CycleHeard(
                        index,
                        tuple(t.onset_s for t in group),
                        tuple(t.duration_s for t in group),
                        frequency,
                        reported,
                        tone.several_lines,
                        tone.lines_hz,
                    ),
                    before,
                    decided_s,
                )
            )
        return events

    def _fundamental(self, index: int, group: list[Tone], frequency: float, shortest_s: float) -> float:
        """The frequency to report: a square wave's fundamental for its harmonics.

        Piezo-band tones that start with low-frequency tones at a fraction of their frequency are a
        520 Hz square wave's odd harmonics; heard as several lines (its 5th and 7th), their centre lies
        between its harmonics.
        """
        low = self.settings.bands.index(self.settings.low_frequency)
        if index == low:
            return frequency
        slack = self.settings.timing_slack_s
        harmonics = self.settings.low_frequency.harmonics[1:]
        tolerance = self.settings.harmonic_tolerance * frequency + self._bin_hz / 2
        onsets = [
            (t.onset_s, t.frequency_hz)
            for t in self.tones[low][-2 * len(group) :]
            if t.duration_s >= shortest_s
            and (
                any(abs(frequency - harmonic * t.frequency_hz) <= tolerance for harmonic in harmonics)
                or (
                    group[0].several_lines
                    and min(harmonics) * t.frequency_hz - tolerance
                    <= frequency
                    <= max(harmonics) * t.frequency_hz + tolerance
                )
            )
        ]
        fundamentals = [
            next((hz for onset_s, hz in onsets if abs(onset_s - tone.onset_s) <= slack), None)
            for tone in group
        ]
        found = [hz for hz in fundamentals if hz is not None]
        return statistics.median(found) if len(found) == len(group) else frequency

    def _cycle(
        self, pattern: TemporalPattern, heard: CycleHeard, before: Tone | None, time_s: float
    ) -> list[AlarmEvent]:
        """A whole cycle of `pattern` was heard (its tones; the pause before it if `before` ends it)."""
        alarm = self._alarms[pattern.label]
        tolerance = self.settings.keep_on_tolerance * heard.frequency_hz + self._bin_hz
        if alarm.active:
            if any(abs(heard.frequency_hz - f) <= tolerance for f in alarm.heard_hz) or (
                self._shared_lines(heard.lines_hz, alarm.lines_hz) >= 2
            ):
                alarm.cycles += 1
                alarm.last_group_s = time_s
            return []
        previous = next(
            (
                g
                for g in reversed(alarm.groups)
                if before is not None
                and g.band == heard.band
                and g.onsets_s[-1] == before.onset_s
                and self._one_alarm(heard.band, g, heard)
                and self._within(heard.onsets_s[0] - g.onsets_s[0], pattern.cycle_s)
                and self._repeats(g, heard)
                and self._alone(pattern, g, heard)
            ),
            None,
        )
        alarm.groups = [*alarm.groups[-5:], heard]
        if previous is None:
            return []
        alarm.active, alarm.frequency_hz, alarm.cycles = True, heard.reported_hz, 2
        alarm.heard_hz = (heard.frequency_hz, alarm.frequency_hz)
        alarm.lines_hz = heard.lines_hz
        alarm.last_group_s, alarm.groups = time_s, []
        return [self._event(pattern.label, True, time_s, alarm)]

    def _repeats(self, previous: CycleHeard, heard: CycleHeard) -> bool:
        """Whether two cycles are one machine's: the same tone lengths and onset intervals, tone by tone."""
        slack = self.settings.repeat_slack_s
        return all(
            abs(a - b) <= slack
            for a, b in zip(previous.durations_s[:-1], heard.durations_s[:-1], strict=True)
        ) and all(
            abs((a1 - a0) - (b1 - b0)) <= slack
            for (a0, a1), (b0, b1) in zip(pairwise(previous.onsets_s), pairwise(heard.onsets_s), strict=True)
        )

    def _alone(self, pattern: TemporalPattern, previous: CycleHeard, heard: CycleHeard) -> bool:
        """Whether the pause between two cycles held no tone of another pitch as long as the pattern's.

        An alarm's pause holds no other notes in its band; a melody's does. Patterns of tones shorter than
        `other_tone_s` (T4's 0.1 s) are not checked: a melody's notes are not like their tones, and their
        5 s pause holds a room's tonal sounds too often.
        """
        if pattern.on_s < self.settings.other_tone_s:
            return True
        start_s, end_s = previous.onsets_s[-1], heard.onsets_s[0]
        return not any(
            start_s <= t.onset_s < end_s
            and t.duration_s >= max(self.settings.other_tone_s, self._shortest(pattern))
            and not self._one_alarm(heard.band, t, heard)
            for t in self.tones[heard.band]
        )

    def _end_alarms(self, now_s: float) -> list[AlarmEvent]:
        events = []
        for pattern in self.patterns:
            alarm = self._alarms[pattern.label]
            end_s = alarm.last_group_s + self.settings.end_after_cycles * pattern.cycle_s
            if alarm.active and now_s >= end_s:
                alarm.active = False
                events.append(self._event(pattern.label, False, end_s, alarm))
        return events

    @staticmethod
    def _event(label: str, active: bool, time_s: float, alarm: _Alarm) -> AlarmEvent:
        return AlarmEvent(label, active, time_s, frequency_hz=alarm.frequency_hz, cycles=alarm.cycles)
