"""Tones in 8 kHz PCM: short-time spectra, their tonal peaks per band, cut into tones (onset, length, pitch).

The first half of the smoke / CO alarm detector (`AlarmPatternDetector`); `patterns.PatternMatcher` matches
the tones against the T3 / T4 patterns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import pairwise
import math
import statistics

import numpy as np
import numpy.typing as npt

from .settings import AlarmSettings, ToneBand


@dataclass(slots=True)
class Tone:
    """One tone heard in a band: a run of tonal spectra."""

    onset_s: float
    """Stream time of its first spectrum's centre."""
    offset_s: float
    """Stream time of the centre of the spectrum after its last."""
    frequency_hz: float
    """Its pitch: the median of its spectra's peaks (of several lines: their centre, power-weighted)."""
    sounding_s: float = -1.0
    """How long it sounded: less than its span when pieces of it were joined (default: its span)."""
    several_lines: bool = False
    """A beep of several lines (its frequency is their centre, which moves with the lines' levels)."""
    lines_hz: tuple[float, ...] = ()
    """A beep of several lines: the lines heard in at least `line_presence` of its spectra, in Hz, in
    order (the alarm's: they hold their frequencies while the room and the drive change their levels)."""

    def __post_init__(self) -> None:
        """Default `sounding_s`: the tone's span."""
        if self.sounding_s < 0:
            self.sounding_s = self.offset_s - self.onset_s

    @property
    def duration_s(self) -> float:
        """From onset to offset."""
        return self.offset_s - self.onset_s


@dataclass(slots=True)
class _OpenTone:
    """A tone still sounding at the end of the analysed audio."""

    start: int
    stop: int
    """The frame after its last sounding one."""
    strong: bool
    frequencies: list[float]
    powers: list[float] = field(default_factory=list)
    """Each spectrum's tone power (weights of a beep of several lines' centre)."""
    several_lines: int = 0
    """How many of its spectra were of several lines."""
    ends_several: bool = False
    """Whether its last spectrum was of several lines."""
    line_counts: npt.NDArray[np.int64] | None = None
    """Per bin of the piezo reference band: in how many of its spectra a line peaked there..."""
    line_hz_sums: npt.NDArray[np.float64] | None = None
    """...and the sum of those lines' frequencies (their mean is the line's frequency)."""


_LOBE = np.arange(-2, 3)
"""The bins around a peak that count as its tone (a Hann window's main lobe and a little more)."""


@dataclass(frozen=True, slots=True)
class TonesHeard:
    """What a stretch of analysed audio gave."""

    tones: list[tuple[int, Tone]]
    """(index of its band in `AlarmSettings.bands`, tone) of each tone that ended: the bands in order,
    each band's tones in time order."""
    analysed_s: float | None
    """Stream time up to which the audio has been analysed (None: no spectrum yet)."""


class ToneTracker:
    """Streaming tones of the alarm bands in 8 kHz float32 PCM, in chunks of any length.

    Per short-time spectrum and tone band: the loudest bin in the band (its harmonics too, for the
    square wave; all its lines, for a piezo beep of several), its share of the band's energy, and its
    level. A tone is a run of spectra whose share passes `tonal_share_off` with at least one passing
    `tonal_share_on`, loud enough, and not fallen `release_db` below its recent peak (reverb). Audio is
    analysed a block (`block_s`) at a time. Not thread-safe; `reset()` between streams.
    """

    skip_idle = True
    """Skip the work that cannot make or end a tone (exact; off only to test that it is)."""

    def __init__(self, settings: AlarmSettings) -> None:
        self.settings = settings
        rate = settings.sample_rate_hz
        bands = settings.bands
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
        self._bands = [self._band_bins(band) for band in bands]
        # Searched bins lie inside the spectrum, with a neighbour each side, and their lobes start at bin 0
        # or above (`AlarmSettings.__post_init__`): only Nyquist clips a lobe.
        # The harmonics of all bands as columns: their band, their multiple of its peak, in bins.
        self._harmonic_band = np.asarray([i for i, band in enumerate(bands) for _ in band.harmonics])
        self._harmonic_factor = np.asarray([h / self._bin_hz for band in bands for h in band.harmonics])
        self._harmonic_starts = np.searchsorted(self._harmonic_band, np.arange(len(bands)))
        self._piezo = bands.index(settings.piezo)
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
        """Start over, as for a new stream: no audio, no tones, time 0."""
        self._pending: list[npt.NDArray[np.float32]] = []
        self._pending_size = 0
        self._samples = np.zeros(0, dtype=np.float32)  # from frame `_frames_done`'s first sample
        self._frames_done = 0
        # Per band: its recent tone levels (for the release), the tone still sounding.
        self._history = [np.zeros(0, dtype=np.float64) for _ in self.settings.bands]
        self._open: list[_OpenTone | None] = [None for _ in self.settings.bands]

    def process(self, samples: npt.NDArray[np.float32]) -> TonesHeard | None:
        """Feed float32 PCM at `sample_rate_hz` (any length); return the tones that ended in it.

        Audio is analysed once a block of it has arrived: None until then.
        """
        chunk = samples if type(samples) is np.ndarray else np.asarray(samples)
        if chunk.dtype.kind != "f":
            raise TypeError(f"PCM must be float in [-1, 1], not {chunk.dtype}")
        if chunk.size:  # kept as given: converted once per block
            self._pending.append(chunk if chunk.ndim == 1 else chunk.reshape(-1))
            self._pending_size += chunk.size
        if self._pending_size < self._block:
            return None
        return self._analyse()

    def finish(self) -> TonesHeard:
        """The stream ended (a recording's last sample): the tones of what is left to analyse.

        Analyses the audio still held back for a block and ends the tones still sounding (nothing follows
        them). `reset()` before feeding another stream.
        """
        heard = self._analyse()
        for index, tone_open in enumerate(self._open):
            if tone_open is not None:
                self._open[index] = None
                heard.tones.extend((index, tone) for tone in self._close(tone_open))
        return heard

    def _analyse(self) -> TonesHeard:
        """Analyse the audio received so far: the spectra it completes and the tones they end."""
        self._samples = np.concatenate([self._samples, *self._pending], dtype=np.float32)
        self._pending, self._pending_size = [], 0
        n_fft = self.settings.n_fft
        count = (self._samples.size - n_fft) // self._hop + 1 if self._samples.size >= n_fft else 0
        if count <= 0:
            return TonesHeard([], None)
        samples = self._samples
        stride = samples.strides[0]  # a strided view of the frames (sliding_window_view costs more)
        frames = np.ndarray((count, n_fft), samples.dtype, samples, 0, (self._hop * stride, stride))
        power = np.square(np.abs(np.fft.rfft(frames * self._window, axis=1))) * self._scale
        first = self._frames_done
        self._frames_done += count
        self._samples = self._samples[count * self._hop :].copy()
        tones: list[tuple[int, Tone]] = []
        frequency, tone, share, several, lines = self._features(power)
        settings = self.settings
        loud = tone >= self._gate
        end = -self._bridge_frames - 1
        strong = (loud & (share >= settings.tonal_share_on)).any(axis=0)
        weak_end = (loud[end:] & (share[end:] >= settings.tonal_share_off)).any(axis=0)
        busy = [bool(flag) for flag in np.atleast_1d(strong | weak_end)]
        kept = self._release_frames - 1
        for index in range(len(self._bands)):
            if self.skip_idle and self._open[index] is None and not busy[index]:
                # No strong spectrum and none open at either end: no tone starts or ends here (`_runs`).
                history = np.concatenate([self._history[index], tone[:, index]])
                self._history[index] = history[max(0, history.size - kept) :]
                continue
            ended = self._tones_in(
                index,
                frequency[:, index],
                tone[:, index],
                share[:, index],
                several=several[:, index],
                lines=lines if index == self._piezo else None,
                first=first,
            )
            tones.extend((index, ended_tone) for ended_tone in ended)
        return TonesHeard(tones, self._time(self._frames_done))

    def _time(self, frame: int) -> float:
        """Stream time at the centre of a frame."""
        return (frame * self._hop + self.settings.n_fft / 2) / self.settings.sample_rate_hz

    def _features(
        self, power: npt.NDArray[np.float32]
    ) -> tuple[
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.float64],
        npt.NDArray[np.bool_],
        tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]],
    ]:
        """Per spectrum (rows) and band (columns): the peak's frequency, its tone's power, its share, lines.

        Lines: whether the tone is a beep of several lines, and the piezo band's lines (`_lines`). The
        peak is the loudest bin the band searches, refined between bins by a parabola through the log
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
        several = np.zeros(frequency.shape, dtype=bool)
        several[:, self._piezo], lines = self._lines(power, frequency, tone)
        return frequency, tone, np.minimum(tone / (reference + 1e-20), 1.0), several, lines

    def _lines(
        self,
        power: npt.NDArray[np.float32],
        frequency: npt.NDArray[np.float64],
        tone: npt.NDArray[np.float64],
    ) -> tuple[npt.NDArray[np.bool_], tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]]]:
        """A piezo beep of several spectral lines: its tone is all of them, its frequency their centre.

        Lines are the 5-bin lobes that are the loudest within 4 bins either side, in the piezo band's
        reference band, each at most `line_floor_db` below the loudest and its peak bin at least
        `line_contrast_db` above the band's median bin (narrow, not noise); the `max_lines` loudest
        count. Where two or more are found, and their power-weighted centre or two of them lie in the
        searched band, the piezo column of `frequency` and `tone` (updated in place) is theirs. (Two in
        the band: a beep whose lowest line, below the band, is loudest, as one recorded alarm's at
        2.2 / 2.6 / 3.0 / 3.5 kHz may be; any two anywhere would also join a background's line below the
        band to a single-line alarm's, and cut its tones.) Returns where, and the lines: per spectrum and
        bin of the reference band, whether a line peaks there (to be counted only where several do), and
        its frequency (refined by a parabola).
        """
        settings = self.settings
        _, _, _, ref_low, ref_high = self._bands[self._piezo]
        band = power[:, ref_low:ref_high].astype(np.float64)
        count, size = band.shape
        summed = np.zeros((count, size + 5))
        np.cumsum(np.pad(band, ((0, 0), (2, 2))), axis=1, out=summed[:, 1:])
        lobe = summed[:, 5:] - summed[:, :-5]  # bins b-2..b+2 of each bin b
        nearby = np.lib.stride_tricks.sliding_window_view(
            np.pad(lobe, ((0, 0), (4, 4)), constant_values=-1.0), 9, axis=1
        ).max(axis=2)
        floor = np.median(band, axis=1, keepdims=True) * 10 ** (settings.line_contrast_db / 10)
        line = (lobe >= nearby) & (band > floor)
        line &= lobe >= np.where(line, lobe, 0.0).max(axis=1, keepdims=True) * 10 ** (
            -settings.line_floor_db / 10
        )
        counts = line.sum(axis=1)
        several: npt.NDArray[np.bool_] = counts >= 2
        if not several.any():
            return several, (line, np.zeros(band.shape))
        if (counts > settings.max_lines).any():
            ranked = -np.sort(-np.where(line, lobe, 0.0), axis=1)[
                :, settings.max_lines - 1 : settings.max_lines
            ]
            line &= lobe >= ranked
        logs = np.log(band + 1e-20)
        left, centre, right = logs[:, :-2], logs[:, 1:-1], logs[:, 2:]
        curvature = left - 2 * centre + right
        offset = np.zeros_like(band)
        offset[:, 1:-1] = np.where(
            curvature < 0, 0.5 * (left - right) / np.where(curvature < 0, curvature, -1), 0.0
        )
        hz = ((ref_low + np.arange(size) + np.clip(offset, -0.5, 0.5)) * self._bin_hz).astype(
            np.float64, copy=False
        )
        weights = np.where(line, lobe, 0.0)
        total = weights.sum(axis=1)
        centre_hz = (weights * hz).sum(axis=1) / np.maximum(total, 1e-30)
        band_limits = self.settings.piezo
        outside = several & ((centre_hz < band_limits.low_hz) | (centre_hz > band_limits.high_hz))
        if outside.any():
            _, low, high, _, _ = self._bands[self._piezo]
            several[outside] = line[outside, low - ref_low : high - ref_low].sum(axis=1) >= 2
        frequency[several, self._piezo] = centre_hz[several]
        tone[several, self._piezo] = total[several]
        return several, (line, hz)

    def _tones_in(
        self,
        index: int,
        frequency: npt.NDArray[np.float64],
        tone: npt.NDArray[np.float64],
        share: npt.NDArray[np.float64],
        *,
        several: npt.NDArray[np.bool_],
        lines: tuple[npt.NDArray[np.bool_], npt.NDArray[np.float64]] | None,
        first: int,
    ) -> list[Tone]:
        """Cut this band's spectra into tones; return those that ended here.

        `lines`: the piezo band's (`_lines`), counted per tone; None for the other band.
        """
        band = self.settings.bands[index]
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
        # alarm's): the same pitch within the band's tolerance, plus one bin. The centre of a beep of
        # several lines moves as the room fades one line or another: no jump between two such spectra.
        tolerance = band.frequency_tolerance * frequency + self._bin_hz
        jump = np.zeros(frequency.size, dtype=bool)
        jump[1:] = (np.abs(frequency[1:] - frequency[:-1]) > tolerance[1:]) & ~(several[1:] & several[:-1])
        ended: list[Tone] = []
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
                    and (
                        abs(frequency[start] - tone_open.frequencies[-1]) <= tolerance[start]
                        or (several[start] and tone_open.ends_several)
                    )
                ):
                    ended.extend(self._close(tone_open))
                    tone_open = None
                if tone_open is None:
                    tone_open = _OpenTone(first + int(start), first + int(stop), False, [])
                tone_open.stop = first + int(stop)
                tone_open.strong |= bool(strong[start:stop].any())
                tone_open.frequencies.extend(frequency[start:stop].tolist())
                tone_open.powers.extend(tone[start:stop].tolist())
                tone_open.several_lines += int(several[start:stop].sum())
                tone_open.ends_several = bool(several[stop - 1])
                if lines is not None and several[start:stop].any():
                    line = lines[0][start:stop] & several[start:stop, None]
                    hz = lines[1][start:stop]
                    if tone_open.line_counts is None or tone_open.line_hz_sums is None:
                        tone_open.line_counts = np.zeros(line.shape[1], dtype=np.int64)
                        tone_open.line_hz_sums = np.zeros(line.shape[1])
                    tone_open.line_counts += line.sum(axis=0)
                    tone_open.line_hz_sums += np.where(line, hz, 0.0).sum(axis=0)
                if tone_open.stop - tone_open.start > self._max_tone_frames:
                    ended.extend(self._close(tone_open))  # a continuous sound, not an alarm's tone
                    tone_open = None
        if tone_open is not None and first + weak.size - tone_open.stop > self._bridge_frames:
            ended.extend(self._close(tone_open))
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
        if not self.skip_idle:
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

    def _close(self, tone: _OpenTone) -> list[Tone]:
        """Finish a tone that sounded from frame `tone.start` to just before `tone.stop`."""
        if not tone.strong:
            return []
        several_lines = 2 * tone.several_lines > len(tone.frequencies)
        lines_hz: tuple[float, ...] = ()
        if several_lines:  # their centre, over the whole beep (the room fades one line or another)
            frequency = float(np.average(tone.frequencies, weights=tone.powers))
            lines_hz = self._tone_lines(tone)
        else:
            frequency = statistics.median(tone.frequencies)
        return [
            Tone(
                self._time(tone.start),
                self._time(tone.stop),
                frequency,
                several_lines=several_lines,
                lines_hz=lines_hz,
            )
        ]

    def _tone_lines(self, tone: _OpenTone) -> tuple[float, ...]:
        """The lines of a beep of several lines: those that peaked in `line_presence` of its spectra.

        Counted in its spectra of several lines; a line that falls between two bins peaks in one or the
        other, so counts in neighbouring bins are one line's.
        """
        counts, sums = tone.line_counts, tone.line_hz_sums
        if counts is None or sums is None:
            return ()
        needed = self.settings.line_presence * tone.several_lines
        lines: list[float] = []
        bins = counts.nonzero()[0].tolist()
        runs = np.split(bins, (np.diff(bins) > 1).nonzero()[0] + 1) if bins else []
        for run in runs:
            count = int(counts[run].sum())
            if count >= needed:
                lines.append(float(sums[run].sum()) / count)
        return tuple(lines)
