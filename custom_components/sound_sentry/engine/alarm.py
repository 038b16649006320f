"""Smoke and CO alarms heard by their temporal pattern (T3 / T4 tone cadence), without a neural network.

Smoke alarms sound the temporal-three pattern (ISO 8201, NFPA 72: three 0.5 s tones 0.5 s apart, then
1.5 s of silence, repeating); CO alarms the temporal-four pattern (four 0.1 s tones 0.1 s apart, then
about 5 s of silence). The tone is a piezo at about 2.8-3.5 kHz, or, in low-frequency alarms for sleeping
rooms, a 520 Hz square wave. `AlarmPatternDetector` finds such tones in short-time spectra of 8 kHz PCM,
cuts them into tones (onset, duration, frequency) and matches the onsets against the patterns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
import math
import statistics

import numpy as np
import numpy.typing as npt

from .events import AlarmEvent

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

BANDS = (LOW_FREQUENCY, PIEZO)


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
    max_tone_s: float = 1.5
    """A tone longer than this is a continuous sound, not a pattern's tone."""
    end_after_cycles: float = 2.0
    """An alarm ends when no whole cycle of its tones has been heard for this many cycles (one cycle
    missed, e.g. under a loud noise, does not end it)."""

    def __post_init__(self) -> None:
        """Reject settings that cannot work."""
        unknown = set(self.labels) - {pattern.label for pattern in PATTERNS}
        if unknown:
            raise ValueError(f"unknown alarm labels {sorted(unknown)}; known: {SMOKE_ALARM}, {CO_ALARM}")
        if self.sample_rate_hz < 2 * PIEZO.reference_high_hz:
            raise ValueError(f"sample_rate_hz must be at least 8000, not {self.sample_rate_hz}")
        for name in ("hop_s", "block_s", "release_window_s", "max_tone_s", "end_after_cycles"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, not {value}")
        if not 0 < self.tonal_share_off <= self.tonal_share_on <= 1:
            raise ValueError("need 0 < tonal_share_off <= tonal_share_on <= 1")
        if self.n_fft < 64 or self.hop_s * self.sample_rate_hz < 1:
            raise ValueError("n_fft must be at least 64 and hop_s at least one sample")
        if self.sample_rate_hz / self.n_fft > LOW_FREQUENCY.low_hz / 3:
            raise ValueError(f"n_fft must be at least {3 * self.sample_rate_hz / LOW_FREQUENCY.low_hz:.0f}")


@dataclass(slots=True)
class _Tone:
    onset_s: float
    offset_s: float
    frequency_hz: float
    sounding_s: float = -1.0
    """How long it sounded: less than its span when pieces of it were joined (default: its span)."""

    def __post_init__(self) -> None:
        if self.sounding_s < 0:
            self.sounding_s = self.offset_s - self.onset_s

    @property
    def duration_s(self) -> float:
        return self.offset_s - self.onset_s


@dataclass(slots=True)
class _Group:
    """One cycle's tones, as heard."""

    band: int
    """Index in BANDS of the band it was heard in."""
    onsets_s: tuple[float, ...]
    durations_s: tuple[float, ...]
    frequency_hz: float
    reported_hz: float
    """What to report: `frequency_hz`, or the fundamental of a square wave heard in the piezo band."""


@dataclass(slots=True)
class _Alarm:
    """Per pattern: groups heard lately and whether the alarm is on."""

    groups: list[_Group] = field(default_factory=list)
    active: bool = False
    frequency_hz: float = 0.0
    """The alarm's tone (a square wave's fundamental)."""
    heard_hz: tuple[float, ...] = ()
    """The frequencies whose cycles keep it on (a square wave's fundamental and a harmonic)."""
    cycles: int = 0
    last_group_s: float = 0.0


@dataclass(slots=True)
class _OpenTone:
    """A tone still sounding at the end of the analysed audio."""

    start: int
    stop: int
    """The frame after its last sounding one."""
    strong: bool
    frequencies: list[float]


_LOBE = np.arange(-2, 3)
"""The bins around a peak that count as its tone (a Hann window's main lobe and a little more)."""


def _joined(tones: list[_Tone], within_s: float, gap_s: float) -> list[_Tone]:
    """`tones` with pieces of one tone joined.

    A tone is joined to the one before when it starts less than `within_s` after it, and at most `gap_s`
    after its end (a notch, not a sound of its own before the tone).
    """
    joined: list[_Tone] = []
    for tone in tones:
        if (
            joined
            and tone.onset_s - joined[-1].onset_s < within_s
            and tone.onset_s - joined[-1].offset_s <= gap_s
        ):
            last = joined[-1]
            joined[-1] = _Tone(
                last.onset_s,
                max(last.offset_s, tone.offset_s),
                last.frequency_hz,
                last.sounding_s + tone.sounding_s,
            )
        else:
            joined.append(tone)
    return joined


class AlarmPatternDetector:
    """Streaming T3 / T4 detector over 8 kHz float32 PCM in chunks of any length.

    Per short-time spectrum and tone band: the loudest bin in the band (its harmonics too, for the
    square wave), its share of the band's energy, and its level. A tone is a run of spectra whose share
    passes `tonal_share_off` with at least one passing `tonal_share_on`, loud enough, and not fallen
    `release_db` below its recent peak (reverb). A pattern's cycle is heard when its tones' onsets come at
    the pattern's interval (within the standards' tolerance), at one frequency, with no such tone just
    before; the alarm turns on after two cycles one cycle apart with nothing of that frequency between
    them, and ends when no cycle has come for `end_after_cycles` cycles.

    `process()` returns `AlarmEvent`s (labels `smoke_alarm`, `co_alarm`) with the tone's `frequency_hz` and
    the `cycles` heard.
    Not thread-safe; `reset()` between streams.
    """

    _skip_idle = True
    """Skip the work that cannot make or end a tone (exact; off only to test that it is)."""

    def __init__(self, settings: AlarmSettings | None = None) -> None:
        self.settings = settings = settings or AlarmSettings()
        rate = settings.sample_rate_hz
        self.patterns = [pattern for pattern in PATTERNS if pattern.label in settings.labels]
        self._hop = max(1, round(settings.hop_s * rate))
        self.hop_s = self._hop / rate
        """The hop actually used, in whole samples."""
        self._block = max(settings.n_fft, round(settings.block_s * rate))
        self._window = np.hanning(settings.n_fft).astype(np.float32)
        # Power of one-sided bins as the signal's mean power (a sine of amplitude A gives A^2 / 2).
        self._scale = 2.0 / (settings.n_fft * float(np.sum(np.square(self._window, dtype=np.float64))))
        self._bin_hz = rate / settings.n_fft
        self._release_frames = max(1, round(settings.release_window_s / self.hop_s))
        self._max_tone_frames = max(1, round(settings.max_tone_s / self.hop_s))
        self._bridge_frames = round(settings.bridge_s / self.hop_s)
        self._gate = 10 ** (settings.min_tone_dbfs / 10)
        self._bands = [self._band_bins(band) for band in BANDS]
        # Searched bins lie inside the spectrum, with a neighbour each side, and their lobes start at bin 0
        # or above (`AlarmSettings.__post_init__`): only Nyquist clips a lobe.
        # The harmonics of all bands as columns: their band, their multiple of its peak, in bins.
        self._harmonic_band = np.asarray([i for i, band in enumerate(BANDS) for _ in band.harmonics])
        self._harmonic_factor = np.asarray([h / self._bin_hz for band in BANDS for h in band.harmonics])
        self._harmonic_starts = np.searchsorted(self._harmonic_band, np.arange(len(BANDS)))
        self.reset()

    def _band_bins(self, band: ToneBand) -> tuple[ToneBand, int, int, int, int]:
        """The band's bins: searched (whole bins inside its limits), and its reference band."""
        last = self.settings.n_fft // 2
        return (
            band,
            min(last, math.ceil(band.low_hz / self._bin_hz)),
            min(last, math.floor(band.high_hz / self._bin_hz)) + 1,
            min(last, round(band.reference_low_hz / self._bin_hz)),
            min(last, round(band.reference_high_hz / self._bin_hz)) + 1,
        )

    def reset(self) -> None:
        """Start over, as for a new stream: no audio, no tones, no alarms, time 0."""
        self._pending: list[npt.NDArray[np.float32]] = []
        self._pending_size = 0
        self._samples = np.zeros(0, dtype=np.float32)  # from frame `_frames_done`'s first sample
        self._frames_done = 0
        # Per band: its recent tone levels (for the release), the tone still sounding, finished tones.
        self._history = [np.zeros(0, dtype=np.float64) for _ in BANDS]
        self._open: list[_OpenTone | None] = [None for _ in BANDS]
        self._tones: list[list[_Tone]] = [[] for _ in BANDS]
        self._alarms = {pattern.label: _Alarm() for pattern in self.patterns}

    @property
    def active(self) -> dict[str, bool]:
        """Whether each reported alarm is sounding now."""
        return {label: alarm.active for label, alarm in self._alarms.items()}

    def process(self, samples: npt.NDArray[np.float32]) -> list[AlarmEvent]:
        """Feed float32 PCM at `sample_rate_hz` (any length); return the alarm starts and ends, in order."""
        chunk = samples if type(samples) is np.ndarray else np.asarray(samples)
        if chunk.dtype.kind != "f":
            raise TypeError(f"PCM must be float in [-1, 1], not {chunk.dtype}")
        if chunk.size:  # kept as given: converted once per block
            self._pending.append(chunk if chunk.ndim == 1 else chunk.reshape(-1))
            self._pending_size += chunk.size
        if self._pending_size < self._block:
            return []
        return self._analyse()

    def finish(self) -> list[AlarmEvent]:
        """The stream ended (a recording's last sample): return the events of what is left to analyse.

        Analyses the audio still held back for a block and ends the tones still sounding (nothing follows
        them). Alarms still on are not ended. `reset()` before feeding another stream.
        """
        events = self._analyse()
        for index, tone_open in enumerate(self._open):
            if tone_open is not None:
                self._open[index] = None
                for heard in self._close(index, tone_open):
                    events.extend(self._match(index, heard))
        events.sort(key=lambda event: event.time_s)
        return events

    def _analyse(self) -> list[AlarmEvent]:
        """Analyse the audio received so far: the spectra it completes, the tones they end, the alarms."""
        self._samples = np.concatenate([self._samples, *self._pending], dtype=np.float32)
        self._pending, self._pending_size = [], 0
        n_fft = self.settings.n_fft
        count = (self._samples.size - n_fft) // self._hop + 1 if self._samples.size >= n_fft else 0
        if count <= 0:
            return []
        samples = self._samples
        stride = samples.strides[0]  # a strided view of the frames (sliding_window_view costs more)
        frames = np.ndarray((count, n_fft), samples.dtype, samples, 0, (self._hop * stride, stride))
        power = np.square(np.abs(np.fft.rfft(frames * self._window, axis=1))) * self._scale
        first = self._frames_done
        self._frames_done += count
        self._samples = self._samples[count * self._hop :].copy()
        events: list[AlarmEvent] = []
        frequency, tone, share = self._features(power)
        settings = self.settings
        loud = tone >= self._gate
        end = -self._bridge_frames - 1
        strong = (loud & (share >= settings.tonal_share_on)).any(axis=0)
        weak_end = (loud[end:] & (share[end:] >= settings.tonal_share_off)).any(axis=0)
        busy = [bool(flag) for flag in np.atleast_1d(strong | weak_end)]
        kept = self._release_frames - 1
        for index in range(len(self._bands)):
            if self._skip_idle and self._open[index] is None and not busy[index]:
                # No strong spectrum and none open at either end: no tone starts or ends here (`_runs`).
                history = np.concatenate([self._history[index], tone[:, index]])
                self._history[index] = history[max(0, history.size - kept) :]
                continue
            ended = self._tones_in(index, frequency[:, index], tone[:, index], share[:, index], first)
            for heard in ended:
                events.extend(self._match(index, heard))
        events.extend(self._end_alarms(self._time(self._frames_done)))
        events.sort(key=lambda event: event.time_s)
        return events

    def _time(self, frame: int) -> float:
        """Stream time at the centre of a frame."""
        return (frame * self._hop + self.settings.n_fft / 2) / self.settings.sample_rate_hz

    def _features(
        self, power: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Per spectrum (rows) and band (columns): the peak's frequency, its tone's power, its share.

        The peak is the loudest bin the band searches, refined between bins by a parabola through the log
        powers; its tone is the power of each harmonic's 5-bin lobe (clipped at Nyquist; a harmonic above
        it adds nothing); its share is the tone over the band's reference power (at most 1). Both bands
        at once: per-call overhead, not arithmetic, is most of the cost.
        """
        count = power.shape[0]
        rows = np.arange(count)[:, None, None]
        peak = np.empty((count, len(self._bands)), dtype=np.intp)
        reference = np.empty((count, len(self._bands)), dtype=np.float64)
        for index, (_, low, high, ref_low, ref_high) in enumerate(self._bands):
            peak[:, index] = power[:, low:high].argmax(axis=1)
            peak[:, index] += low
            reference[:, index] = power[:, ref_low:ref_high].sum(axis=1, dtype=np.float64)
        # Searched bins are never the first or last (`AlarmSettings.__post_init__`): no clipping.
        around = np.log(power[rows, peak[:, :, None] + _LOBE[1:4]].astype(np.float64) + 1e-20)
        left, centre, right = around[:, :, 0], around[:, :, 1], around[:, :, 2]
        curvature = left - 2 * centre + right
        offset = np.where(curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1), 0.0)
        frequency = (peak + np.minimum(np.maximum(offset, -0.5), 0.5)) * self._bin_hz
        top = power.shape[1] - 1
        bins = np.rint(frequency[:, self._harmonic_band] * self._harmonic_factor).astype(np.intp)
        lobes = np.where(bins <= top, power[rows, np.minimum(bins[:, :, None] + _LOBE, top)].sum(axis=2), 0.0)
        tone = np.add.reduceat(lobes.astype(np.float64), self._harmonic_starts, axis=1)
        return frequency, tone, np.minimum(tone / (reference + 1e-20), 1.0)

    def _tones_in(
        self,
        index: int,
        frequency: npt.NDArray[np.float64],
        tone: npt.NDArray[np.float64],
        share: npt.NDArray[np.float64],
        first: int,
    ) -> list[_Tone]:
        """Cut this band's spectra into tones; return those that ended here."""
        band = BANDS[index]
        settings = self.settings
        kept = self._release_frames - 1
        tone_open = self._open[index]
        # Release against reverb: fallen `release_db` below the loudest of the last frames.
        history = np.concatenate([np.zeros(kept - self._history[index].size), self._history[index], tone])
        step = history.strides[0]
        windows = np.ndarray((tone.size, self._release_frames), history.dtype, history, 0, (step, step))
        recent = windows.max(axis=1)
        self._history[index] = history[history.size - kept :]
        sounding = (tone >= self._gate) & (tone >= recent * 10 ** (-settings.release_db / 10))
        weak = sounding & (share >= settings.tonal_share_off)
        strong = sounding & (share >= settings.tonal_share_on)

        # A tone also ends where the peak jumps to another pitch (a background's tone giving way to the
        # alarm's): the same pitch within the band's tolerance, plus one bin.
        tolerance = band.frequency_tolerance * frequency + self._bin_hz
        jump = np.zeros(frequency.size, dtype=bool)
        jump[1:] = np.abs(frequency[1:] - frequency[:-1]) > tolerance[1:]
        ended: list[_Tone] = []
        padded = np.zeros(weak.size + 2, dtype=np.int8)
        padded[1:-1] = weak
        edges = (padded[1:] != padded[:-1]).nonzero()[0]
        for run_start, run_stop in self._runs(
            edges[::2], edges[1::2], strong, weak.size, tone_open is not None
        ):
            cuts = [run_start, *(run_start + 1 + jump[run_start + 1 : run_stop].nonzero()[0]), run_stop]
            for start, stop in pairwise(cuts):
                if tone_open is not None and not (
                    first + start - tone_open.stop <= self._bridge_frames
                    and abs(frequency[start] - tone_open.frequencies[-1]) <= tolerance[start]
                ):
                    ended.extend(self._close(index, tone_open))
                    tone_open = None
                if tone_open is None:
                    tone_open = _OpenTone(first + int(start), first + int(stop), False, [])
                tone_open.stop = first + int(stop)
                tone_open.strong |= bool(strong[start:stop].any())
                tone_open.frequencies.extend(frequency[start:stop].tolist())
                if tone_open.stop - tone_open.start > self._max_tone_frames:
                    ended.extend(self._close(index, tone_open))  # a continuous sound, not an alarm's tone
                    tone_open = None
        if tone_open is not None and first + weak.size - tone_open.stop > self._bridge_frames:
            ended.extend(self._close(index, tone_open))
            tone_open = None
        self._open[index] = tone_open
        return ended

    def _runs(
        self,
        starts: npt.NDArray[np.intp],
        stops: npt.NDArray[np.intp],
        strong: npt.NDArray[np.bool_],
        size: int,
        tone_open: bool,
    ) -> list[tuple[int, int]]:
        """The runs of weak spectra (`starts`, `stops`) that can make or end a tone, in order.

        Runs less than `bridge_s` apart can be one tone; a cluster of such runs with no strong spectrum
        makes no tone, and leaves none open, unless it continues a tone open before the block (the first)
        or may go on in the next block (one that ends within `bridge_s` of the block's end). The others
        are left out: in a noisy room they are most runs, and each costs several NumPy calls.
        """
        if not self._skip_idle:
            return list(zip(starts.tolist(), stops.tolist(), strict=True))
        if not starts.size:
            return []
        bridge = self._bridge_frames
        breaks = (starts[1:] - stops[:-1] > bridge).nonzero()[0] + 1
        firsts = np.concatenate([[0], breaks])
        lasts = np.concatenate([breaks, [starts.size]])
        counts = np.cumsum(np.concatenate([[0], strong]))
        keep = counts[stops[lasts - 1]] > counts[starts[firsts]]
        keep[0] |= tone_open
        keep[-1] |= bool(size - stops[-1] <= bridge)
        return [
            (int(starts[i]), int(stops[i]))
            for first, last in zip(firsts[keep].tolist(), lasts[keep].tolist(), strict=True)
            for i in range(first, last)
        ]

    def _close(self, index: int, tone: _OpenTone) -> list[_Tone]:
        """Finish a tone that sounded from frame `tone.start` to just before `tone.stop`."""
        if not tone.strong:
            return []
        finished = _Tone(self._time(tone.start), self._time(tone.stop), statistics.median(tone.frequencies))
        self._tones[index].append(finished)
        return [finished]

    def _shortest(self, pattern: TemporalPattern) -> float:
        """The shortest a pattern's tone may be heard (its tolerance, the spectra's resolution twice)."""
        settings = self.settings
        return max(
            pattern.on_s / 2, pattern.on_s * (1 - settings.timing_tolerance) - 2 * settings.timing_slack_s
        )

    def _same_pitch(self, index: int, frequency_hz: float) -> float:
        """How far (Hz) tones of one alarm heard in band `index` may differ from `frequency_hz`."""
        return BANDS[index].match_tolerance * frequency_hz + self._bin_hz / 8

    def _within(self, actual: float, nominal: float) -> bool:
        settings = self.settings
        return abs(actual - nominal) <= settings.timing_tolerance * nominal + settings.timing_slack_s

    def _match(self, index: int, tone: _Tone) -> list[AlarmEvent]:
        """Match the tone that just ended: does it complete a cycle, and do two cycles start an alarm."""
        settings = self.settings
        tolerance = self._same_pitch(index, tone.frequency_hz)
        heard = self._tones[index]
        # Keep what two cycles of the slowest pattern, and the tone before them, can still need.
        horizon = tone.offset_s - 3 * max(pattern.cycle_s for pattern in PATTERNS)
        while heard and heard[0].offset_s < horizon:
            heard.pop(0)
        # The tones up to this one (a long chunk closes several tones before they are matched).
        heard = heard[: max(i for i, t in enumerate(heard) if t is tone) + 1]
        same = [t for t in heard if abs(t.frequency_hz - tone.frequency_hz) <= tolerance]
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
                    _Group(
                        index,
                        tuple(t.onset_s for t in group),
                        tuple(t.duration_s for t in group),
                        frequency,
                        reported,
                    ),
                    before,
                    decided_s,
                )
            )
        return events

    def _fundamental(self, index: int, group: list[_Tone], frequency: float, shortest_s: float) -> float:
        """The frequency to report: a square wave's fundamental for its harmonics.

        Piezo-band tones that start with low-frequency tones at a fraction of their frequency are a
        520 Hz square wave's odd harmonics.
        """
        low = BANDS.index(LOW_FREQUENCY)
        if index == low:
            return frequency
        slack = self.settings.timing_slack_s
        onsets = [
            (t.onset_s, t.frequency_hz)
            for t in self._tones[low][-2 * len(group) :]
            if t.duration_s >= shortest_s
            and any(
                abs(frequency - harmonic * t.frequency_hz) <= 0.01 * frequency + self._bin_hz / 2
                for harmonic in LOW_FREQUENCY.harmonics[1:]
            )
        ]
        fundamentals = [
            next((hz for onset_s, hz in onsets if abs(onset_s - tone.onset_s) <= slack), None)
            for tone in group
        ]
        found = [hz for hz in fundamentals if hz is not None]
        return statistics.median(found) if len(found) == len(group) else frequency

    def _cycle(
        self, pattern: TemporalPattern, heard: _Group, before: _Tone | None, time_s: float
    ) -> list[AlarmEvent]:
        """A whole cycle of `pattern` was heard (its tones; the pause before it if `before` ends it)."""
        alarm = self._alarms[pattern.label]
        tolerance = 0.05 * heard.frequency_hz + self._bin_hz
        same_pitch = self._same_pitch(heard.band, heard.frequency_hz)
        if alarm.active:
            if any(abs(heard.frequency_hz - f) <= tolerance for f in alarm.heard_hz):
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
                and abs(g.frequency_hz - heard.frequency_hz) <= same_pitch
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
        alarm.last_group_s, alarm.groups = time_s, []
        return [self._event(pattern.label, True, time_s, alarm)]

    def _repeats(self, previous: _Group, heard: _Group) -> bool:
        """Whether two cycles are one machine's: the same tone lengths and onset intervals, tone by tone."""
        slack = self.settings.repeat_slack_s
        return all(
            abs(a - b) <= slack
            for a, b in zip(previous.durations_s[:-1], heard.durations_s[:-1], strict=True)
        ) and all(
            abs((a1 - a0) - (b1 - b0)) <= slack
            for (a0, a1), (b0, b1) in zip(pairwise(previous.onsets_s), pairwise(heard.onsets_s), strict=True)
        )

    def _alone(self, pattern: TemporalPattern, previous: _Group, heard: _Group) -> bool:
        """Whether the pause between two cycles held no tone of another pitch as long as the pattern's.

        An alarm's pause holds no other notes in its band; a melody's does. Patterns of tones shorter than
        `other_tone_s` (T4's 0.1 s) are not checked: a melody's notes are not like their tones, and their
        5 s pause holds a room's tonal sounds too often.
        """
        if pattern.on_s < self.settings.other_tone_s:
            return True
        start_s, end_s = previous.onsets_s[-1], heard.onsets_s[0]
        same_pitch = self._same_pitch(heard.band, heard.frequency_hz)
        return not any(
            start_s <= t.onset_s < end_s
            and t.duration_s >= max(self.settings.other_tone_s, self._shortest(pattern))
            and abs(t.frequency_hz - heard.frequency_hz) > same_pitch
            for t in self._tones[heard.band]
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
