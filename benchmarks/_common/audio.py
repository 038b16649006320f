"""Real and synthetic audio for the benchmarks and the tests: clips of ../shared/data and scenes built from
them, WAV and encoded files, the engine run offline on whole recordings, and synthetic smoke and CO
alarms. tests/audio.py adds what only the tests use (and offers these under its own name)."""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.events import DetectionEvent
from custom_components.sound_sentry.engine.model import load_model
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline

RATE_HZ = 8000


def encode_with_pyav(pcm: np.ndarray, path: Path, codec: str, rate: int, **container_options: str) -> None:
    """Write 8 kHz `pcm` as `codec` at `rate` with PyAV (the container follows the suffix or `format`)."""
    fmt = container_options.pop("format", None)
    with av.open(str(path), "w", format=fmt, options=container_options) as container:
        stream = container.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(
            format=stream.codec_context.format.name, layout="mono", rate=rate, frame_size=960
        )
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE_HZ
        for out in [*resampler.resample(frame), *resampler.resample(None)]:
            container.mux(stream.encode(out))
        container.mux(stream.encode(None))


def read_clip(path: Path) -> npt.NDArray[np.float32]:
    """Decode an 8 kHz mono FLAC of the data set to float32 in [-1, 1]."""
    with av.open(str(path)) as container:
        chunks = [frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)]
    return np.concatenate(chunks).astype(np.float32) / 32768.0


@cache
def manifest(data_dir: Path) -> list[dict[str, str]]:
    """The rows of the data set's manifest.csv."""
    with (data_dir / "manifest.csv").open() as file:
        return list(csv.DictReader(file))


def clip_paths(data_dir: Path, label: str, split: str = "test", source: str | None = None) -> list[Path]:
    """Clips of one class and split, in manifest order."""
    return [
        data_dir / row["path"]
        for row in manifest(data_dir)
        if row["label"] == label and row["split"] == split and (source is None or row["source"] == source)
    ]


def write_wav(path: Path, samples: npt.NDArray[np.float32], rate_hz: int = RATE_HZ) -> Path:
    """Write mono 16-bit WAV with PyAV."""
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=rate_hz, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate_hz
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


# -- What the shipped model detects offline ---------------------------------------------------------
# The end-to-end tests and the latency benchmark choose their event clips at run time by running the
# engine on them offline, so they stay valid whatever model is installed.


def hop_shifts(info: ModelInfo) -> tuple[float, ...]:
    """Where the stream's window grid may fall relative to the sound (codecs add some delay): the engine
    must detect a clip at every one of these offsets (quarter hops of the model's hop) to count as
    detecting it."""
    return tuple(info.hop_s * i / 4 for i in range(4))


def background_bed(
    data_dir: Path, seconds: float, *, gain: float = 0.3, clips: int = 8
) -> npt.NDArray[np.float32]:
    """A quiet room: the first `clips` test-split room recordings (zalmotek_mssnsd) joined and looped."""
    parts = [read_clip(path) for path in clip_paths(data_dir, "background", source="zalmotek_mssnsd")[:clips]]
    return np.resize(np.concatenate(parts), round(seconds * RATE_HZ)) * np.float32(gain)


def event_scene(
    bed: npt.NDArray[np.float32], clip: npt.NDArray[np.float32], *, lead_s: float, tail_s: float
) -> npt.NDArray[np.float32]:
    """`clip` added to the bed after `lead_s`, then `tail_s` of bed alone."""
    start = round(lead_s * RATE_HZ)
    out = np.resize(bed, start + clip.size + round(tail_s * RATE_HZ)).copy()
    out[start : start + clip.size] += clip
    return np.clip(out, -1.0, 1.0)


class OfflineEngine:
    """The engine's own Pipeline and EventDetector on a model file, run on whole recordings."""

    def __init__(self, model_path: Path) -> None:
        self.model = load_model(model_path)
        self.info = self.model.info
        self.labels = list(self.info.labels)
        self.hop_shifts_s = hop_shifts(self.info)

    def _pipeline(self, settings: DetectorSettings | None = None) -> Pipeline:
        return Pipeline.for_model(self.model, detector=settings)

    @staticmethod
    def _shifted(samples: npt.NDArray[np.float32], shift_s: float) -> npt.NDArray[np.float32]:
        """The recording with `shift_s` of its own start repeated in front (the window grid moves)."""
        shift = round(shift_s * RATE_HZ)
        return np.concatenate([samples[:shift], samples]) if shift else samples

    def probabilities(
        self, samples: npt.NDArray[np.float32], shift_s: float = 0.0
    ) -> npt.NDArray[np.float64]:
        """[windows, labels] probabilities of the stream's windows."""
        output = self._pipeline().process(self._shifted(samples, shift_s))
        return np.array([[w.probabilities[label] for label in self.labels] for w in output.windows])

    def events(
        self, samples: npt.NDArray[np.float32], settings: DetectorSettings, shift_s: float = 0.0
    ) -> list[DetectionEvent]:
        """The events (starts and ends) the detector gives for the recording with `settings`."""
        return list(self._pipeline(settings).process(self._shifted(samples, shift_s)).events)

    def vote_strength(self, probs: npt.NDArray[np.float64], label: str) -> float:
        """The highest threshold at which `label` still starts an event: the best k-th highest
        probability over any n consecutive windows (the detector's k-of-n vote)."""
        column = probs[:, self.labels.index(label)]
        k, n = self.info.k, self.info.n
        if column.size < n:
            return 0.0
        return max(float(np.sort(column[i : i + n])[-k]) for i in range(column.size - n + 1))


# -- Smoke and CO alarms: synthetic T3 / T4 patterns with realistic variation -------------------------


@dataclass(frozen=True)
class AlarmSound:
    """How one synthetic alarm sounds: its pattern, tone and timing (seconds, Hz)."""

    tones: int
    on_s: float
    off_s: float
    pause_s: float
    frequency_hz: float
    square: bool = False
    """A 520 Hz-style square wave (odd harmonics up to 4 kHz) instead of a piezo's near-sine."""
    jitter: float = 0.0
    """Each tone's on and off time varies by up to this fraction (a real alarm's timer)."""
    warble: float = 0.0
    """Peak frequency modulation as a fraction of the frequency (a piezo's drift within a tone, or an
    alarm that warbles)."""
    warble_hz: float = 7.0
    """Rate of that modulation."""
    lines: tuple[tuple[float, float], ...] = ()
    """A beep of several spectral lines (a piezo whose beep splits): (frequency Hz, power) of each, the
    powers relative to one another; empty: one line at `frequency_hz`."""

    @property
    def cycle_s(self) -> float:
        return self.tones * self.on_s + (self.tones - 1) * self.off_s + self.pause_s


T3_PIEZO = AlarmSound(tones=3, on_s=0.5, off_s=0.5, pause_s=1.5, frequency_hz=3100.0)
T4_PIEZO = AlarmSound(tones=4, on_s=0.1, off_s=0.1, pause_s=5.0, frequency_hz=3100.0)
T3_520 = AlarmSound(tones=3, on_s=0.5, off_s=0.5, pause_s=1.5, frequency_hz=520.0, square=True)


def varied_alarm(base: AlarmSound, rng: np.random.Generator, *, timing: float = 0.08) -> AlarmSound:
    """`base` as one real alarm might sound: its times off by up to `timing` (the standards allow 10%),
    its frequency anywhere in the band (piezo 2.8-3.5 kHz, square 520 Hz +-8%), tones jittered and warbled."""

    def scaled(value: float) -> float:
        return value * (1 + rng.uniform(-timing, timing))

    frequency = rng.uniform(2800, 3500) if not base.square else 520.0 * rng.uniform(0.92, 1.08)
    return AlarmSound(
        tones=base.tones,
        on_s=scaled(base.on_s),
        off_s=scaled(base.off_s),
        pause_s=scaled(base.pause_s),
        frequency_hz=frequency,
        square=base.square,
        jitter=0.03,
        warble=0.005,
    )


PIEZO_BAND_HZ = (2500.0, 3900.0)
"""Where piezo alarms beep (searched by the detector)."""


def multi_line_alarm(base: AlarmSound, rng: np.random.Generator, *, timing: float = 0.08) -> AlarmSound:
    """`base` (a piezo pattern) as an alarm whose beep splits into several lines, like a recorded one
    at about 2.2 / 2.6 / 3.0 / 3.5 kHz: lines `spacing` apart (380-480 Hz) around 2.8-3.2 kHz, up to
    3.95 kHz, their powers random but the strongest holding only 25-35% of the 2.5-3.9 kHz band."""
    sound = varied_alarm(base, rng, timing=timing)
    while True:  # the strongest can hold at most a third of three lines: at least three in the band
        centre, spacing = rng.uniform(2800, 3200), rng.uniform(380, 480)
        frequencies = [centre + k * spacing for k in range(-2, 3) if centre + k * spacing < 3950]
        in_band = np.array([PIEZO_BAND_HZ[0] <= f <= PIEZO_BAND_HZ[1] for f in frequencies])
        if in_band.sum() >= 3:
            break
    while True:
        powers = rng.uniform(0.3, 1.0, len(frequencies))
        if 0.25 <= powers[in_band].max() / powers[in_band].sum() <= 0.35:
            break
    strongest = frequencies[int(np.argmax(np.where(in_band, powers, 0)))]
    return replace(
        sound,
        frequency_hz=strongest,
        lines=tuple((f, float(p)) for f, p in zip(frequencies, powers, strict=True)),
    )


def warbling_alarm(base: AlarmSound, rng: np.random.Generator, *, timing: float = 0.08) -> AlarmSound:
    """`base` (a piezo pattern) as an alarm whose beep warbles: its frequency (2.9-3.4 kHz) swept
    +-3-8% at 5-12 Hz within each beep."""
    sound = varied_alarm(base, rng, timing=timing)
    return replace(
        sound,
        frequency_hz=rng.uniform(2900, 3400),
        warble=rng.uniform(0.03, 0.08),
        warble_hz=rng.uniform(5.0, 12.0),
    )


def alarm_signal(
    sound: AlarmSound, cycles: int, *, level_dbfs: float = -20.0, seed: int = 0
) -> npt.NDArray[np.float32]:
    """`cycles` cycles of `sound` at 8 kHz, its tones at `level_dbfs` RMS, ending after the last pause."""
    rng = np.random.default_rng(seed)
    parts: list[npt.NDArray[np.float64]] = []
    for _ in range(cycles):
        for tone in range(sound.tones):
            on = sound.on_s * (1 + rng.uniform(-sound.jitter, sound.jitter))
            n = round(on * RATE_HZ)
            t = np.arange(n) / RATE_HZ
            # A warble of the frequency, as a piezo drifts (or as an alarm that warbles).
            rate = sound.warble_hz
            sweep = t + sound.warble * np.sin(2 * np.pi * rate * t) / (2 * np.pi * rate)
            phase = 2 * np.pi * sound.frequency_hz * sweep
            if sound.lines:  # several lines, each with its own phase
                wave = sum(
                    np.sqrt(power) * np.sin(2 * np.pi * hz * sweep + 1.7 * k)
                    for k, (hz, power) in enumerate(sound.lines)
                )
            elif sound.square:  # band-limited square wave: odd harmonics below 4 kHz
                wave = sum(
                    np.sin(k * phase) / k
                    for k in range(1, 40, 2)
                    if k * sound.frequency_hz < 0.95 * RATE_HZ / 2
                )
            else:  # a piezo: near-sine with a little second-harmonic distortion folded in band
                wave = np.sin(phase) + 0.05 * np.sin(2 * phase + 0.3) * (2 * sound.frequency_hz < RATE_HZ / 2)
            wave = np.asarray(wave, dtype=np.float64)
            wave /= np.sqrt(np.mean(wave**2))
            ramp = min(n // 2, round(0.004 * RATE_HZ))  # 4 ms attack and release
            envelope = np.ones(n)
            envelope[:ramp] = np.linspace(0, 1, ramp)
            envelope[n - ramp :] = np.linspace(1, 0, ramp)
            parts.append(wave * envelope * 10 ** (level_dbfs / 20))
            last = tone == sound.tones - 1
            gap = (sound.pause_s if last else sound.off_s) * (1 + rng.uniform(-sound.jitter, sound.jitter))
            parts.append(np.zeros(round(gap * RATE_HZ)))
    return np.concatenate(parts).astype(np.float32)


def room_reverb(
    samples: npt.NDArray[np.float32], *, rt60_s: float, direct_db: float = 0.0, seed: int = 0
) -> npt.NDArray[np.float32]:
    """`samples` in a room: a direct path plus an exponentially decaying diffuse tail (RT60 `rt60_s`),
    the tail's energy `direct_db` below the direct sound's (the direct-to-reverberant ratio)."""
    rng = np.random.default_rng(seed)
    n = round(rt60_s * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    tail = rng.standard_normal(n) * 10 ** (-3 * t / rt60_s)  # -60 dB at rt60_s
    tail[: round(0.003 * RATE_HZ)] = 0  # the first reflections arrive after a few ms
    tail *= 10 ** (-direct_db / 20) / np.sqrt(np.sum(tail**2))
    response = np.concatenate([[1.0], tail[1:]])
    size = samples.size + n - 1
    fft = 1 << (size - 1).bit_length()
    wet = np.fft.irfft(np.fft.rfft(samples, fft) * np.fft.rfft(response, fft), fft)[: samples.size]
    return wet.astype(np.float32)


def mix_at_snr(
    signal: npt.NDArray[np.float32],
    background: npt.NDArray[np.float32],
    snr_db: float,
    *,
    lead_s: float,
    tail_s: float,
    signal_rms: float | None = None,
) -> npt.NDArray[np.float32]:
    """`signal` added to `background` (looped as needed) after `lead_s`, then `tail_s` of background.

    The background is scaled so that the signal's RMS while it sounds (`signal_rms`, default: over its
    samples louder than -30 dB of its peak) is `snr_db` above the background's RMS. Clipped to [-1, 1].
    """
    if signal_rms is None:
        loud = np.abs(signal) > np.abs(signal).max() * 10 ** (-30 / 20)
        signal_rms = float(np.sqrt(np.mean(np.square(signal[loud], dtype=np.float64))))
    start = round(lead_s * RATE_HZ)
    total = start + signal.size + round(tail_s * RATE_HZ)
    bed = np.resize(background, total).astype(np.float64)
    bed_rms = float(np.sqrt(np.mean(bed**2))) or 1.0
    out = bed * (signal_rms / bed_rms) * 10 ** (-snr_db / 20)
    out[start : start + signal.size] += signal
    return np.clip(out, -1.0, 1.0).astype(np.float32)
