"""Smoke and CO alarms by their pattern: detection rate per SNR, time to ON, false alarms, CPU.

    scripts/run python -m benchmarks.alarms [--per-cell 20] [--runs 5] [--kind "T3 multi-line" ...]
        [--skip-cpu] [--skip-detection] [--skip-false-alarms]

1. Detection: synthetic alarms (tests/audio.py: T3 piezo, T4 piezo, T3 520 Hz square wave; frequency,
   timing within the standards' 10%, jitter and warble varied per alarm; and piezos whose beep splits into
   several lines, T3 and T4, the strongest holding 25-35% of the band, T3 piezos that warble +-3-8% at
   5-12 Hz, and *split beeps*: T3 piezos whose beep is 3-5 lines between 2.0 and 3.6 kHz, irregularly
   spaced, their levels changing from beep to beep, as a recorded First Alert alarm's, `split_beep_alarm`,
   in rooms of RT60 0.3-0.8 s on the reverb path), three cycles in real background
   (test-split background clips of ../shared/data, every source, back to back) at 0..20 dB SNR; each
   plain, in a room (reverb RT60 0.2-0.6 s), and through a PCMU (G.711, band-limited at 3.4 kHz as
   cameras do) or AAC (16 kHz) round trip with PyAV. Detected = its own alarm turns on (and no other);
   time to ON = from the first tone's onset to the ON event (stream time).
2. False alarms: every clip of ../shared/data (all labels: none is a smoke or CO alarm) and of the built
   set (~/.cache/sound-sentry/data-extra, when built), back to back in manifest order as one stream.
3. CPU: process CPU time of the detector alone vs the model pipeline (no alarms) on the same audio in
   20 ms chunks, median of --runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
import statistics
import tempfile
import time

import av
import numpy as np
import numpy.typing as npt

from benchmarks._common import DATA, load_average, model_note, model_path, percentile
from benchmarks._common.audio import (
    RATE_HZ,
    T3_520,
    T3_PIEZO,
    T4_PIEZO,
    AlarmSound,
    alarm_signal,
    encode_with_pyav,
    manifest,
    mix_at_snr,
    multi_line_alarm,
    read_clip,
    room_reverb,
    varied_alarm,
    warbling_alarm,
)
from custom_components.sound_sentry.engine.alarm import (
    CO_ALARM,
    SMOKE_ALARM,
    AlarmPatternDetector,
    AlarmSettings,
    PatternMatcher,
    ToneTracker,
)
from custom_components.sound_sentry.engine.model import load_model
from custom_components.sound_sentry.engine.pipeline import Pipeline
from training.audio_paths import extra_data_dir


def split_beep_alarm(base: AlarmSound, rng: np.random.Generator) -> AlarmSound:
    """`base` (a piezo pattern) as a recorded First Alert alarm sounds: its beep split into 3-5 lines
    between 2.0 and 3.6 kHz (that one's at about 2.2 / 2.6 / 3.0 / 3.5 kHz), irregularly spaced (300-550 Hz
    apart), of unequal levels (up to 10 dB apart); `split_beep_signal` changes the levels from beep to
    beep. Timing as `varied_alarm`'s; its `frequency_hz` is the strongest line."""
    sound = varied_alarm(base, rng)
    while True:
        frequencies = [rng.uniform(2000.0, 2400.0)]
        while frequencies[-1] < 3600.0:
            frequencies.append(frequencies[-1] + rng.uniform(300.0, 550.0))
        frequencies = [hz for hz in frequencies if hz <= 3600.0]
        if 3 <= len(frequencies) <= 5:
            break
    powers = 10 ** (rng.uniform(-10.0, 0.0, len(frequencies)) / 10)
    return replace(
        sound,
        frequency_hz=frequencies[int(np.argmax(powers))],
        lines=tuple((hz, float(p)) for hz, p in zip(frequencies, powers, strict=True)),
    )


SPLIT_BEEP_SWAY_DB = 6.0
"""Each line of a split beep is up to this much louder or quieter from one beep to the next."""


def split_beep_signal(sound: AlarmSound, cycles: int, *, seed: int = 0) -> npt.NDArray[np.float32]:
    """`alarm_signal` of `sound` (a `split_beep_alarm`), each beep's lines `SPLIT_BEEP_SWAY_DB` louder or
    quieter at random, as the recorded alarm's change from beep to beep."""
    rng = np.random.default_rng(seed)
    beeps = []
    for _ in range(cycles):
        for tone in range(sound.tones):
            gap_s = sound.pause_s if tone == sound.tones - 1 else sound.off_s
            sway = 10 ** (rng.uniform(-SPLIT_BEEP_SWAY_DB, SPLIT_BEEP_SWAY_DB, len(sound.lines)) / 10)
            lines = tuple((hz, power * float(s)) for (hz, power), s in zip(sound.lines, sway, strict=True))
            beep = replace(sound, tones=1, pause_s=gap_s, lines=lines)
            beeps.append(alarm_signal(beep, 1, seed=int(rng.integers(1 << 30))))
    return np.concatenate(beeps)


@dataclass(frozen=True)
class AlarmFamily:
    """One kind of synthetic alarm the detection tables measure."""

    base: AlarmSound
    label: str
    """The alarm it must turn on."""
    vary: Callable[[AlarmSound, np.random.Generator], AlarmSound]
    """`base` as one real alarm of the kind sounds."""
    signal: Callable[..., npt.NDArray[np.float32]] = alarm_signal
    """(sound, cycles, seed=...) -> its PCM."""
    rt60_s: tuple[float, float] = (0.2, 0.6)
    """The room's reverb time on the `reverb` path, drawn from this range."""


SNRS_DB = (0, 5, 10, 15, 20)
SOUNDS = {
    "T3 piezo": AlarmFamily(T3_PIEZO, SMOKE_ALARM, varied_alarm),
    "T4 piezo": AlarmFamily(T4_PIEZO, CO_ALARM, varied_alarm),
    "T3 520 Hz": AlarmFamily(T3_520, SMOKE_ALARM, varied_alarm),
    "T3 multi-line": AlarmFamily(T3_PIEZO, SMOKE_ALARM, multi_line_alarm),
    "T4 multi-line": AlarmFamily(T4_PIEZO, CO_ALARM, multi_line_alarm),
    "T3 warbling": AlarmFamily(T3_PIEZO, SMOKE_ALARM, warbling_alarm),
    "T3 split beep": AlarmFamily(
        T3_PIEZO, SMOKE_ALARM, split_beep_alarm, signal=split_beep_signal, rt60_s=(0.3, 0.8)
    ),
}
PATHS = ("plain", "reverb", "PCMU", "AAC")
CYCLES = 3
CHUNK = 160  # 20 ms, as cameras send


def run_detector(
    samples: npt.NDArray[np.float32], tones: list[tuple[int, float, float, float]] | None = None
) -> list[tuple[str, bool, float]]:
    """The detector's events; with `tones`, every tone it heard is added there (band, onset, length, Hz).

    The detector's two halves, as `AlarmPatternDetector` joins them: the tones pass from one to the other.
    """
    settings = AlarmSettings()
    tracker, matcher = ToneTracker(settings), PatternMatcher(settings)
    events = []
    for start in range(0, samples.size, CHUNK):
        heard = tracker.process(samples[start : start + CHUNK])
        if heard is None:
            continue
        if tones is not None:
            tones.extend((index, t.onset_s, t.duration_s, t.frequency_hz) for index, t in heard.tones)
        events += [(e.label, e.active, e.time_s) for e in matcher.process(heard)]
    return events


def decode_8k(path: Path) -> npt.NDArray[np.float32]:
    """Decode any file to 8 kHz mono float32 with PyAV, as the sources do."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE_HZ)
    parts = []
    with av.open(str(path)) as container:
        for frame in container.decode(audio=0):
            parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
        parts += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return np.concatenate(parts).astype(np.float32) / 32768.0


def band_limit(samples: npt.NDArray[np.float32], corner_hz: float = 3400.0) -> npt.NDArray[np.float32]:
    """A camera's G.711 low-pass: flat to `corner_hz`, then -30 dB by 3.8 kHz (linear in dB)."""
    spectrum = np.fft.rfft(samples)
    freqs = np.fft.rfftfreq(samples.size, 1 / RATE_HZ)
    gain_db = np.clip((freqs - corner_hz) / (3800.0 - corner_hz), 0, 1) * -30.0
    return np.fft.irfft(spectrum * 10 ** (gain_db / 20), samples.size).astype(np.float32)


def codec_round_trip(samples: npt.NDArray[np.float32], codec: str) -> npt.NDArray[np.float32]:
    pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
    with tempfile.TemporaryDirectory() as folder:
        if codec == "PCMU":
            path = Path(folder) / "a.wav"
            pcm = (np.clip(band_limit(samples), -1, 1) * 32767).astype(np.int16)
            encode_with_pyav(pcm, path, "pcm_mulaw", RATE_HZ)
        else:
            path = Path(folder) / "a.aac"
            encode_with_pyav(pcm, path, "aac", 16000, format="adts")
        out = decode_8k(path)
    return np.resize(out, samples.size) if out.size < samples.size else out[: samples.size]


def background_stream(data_dir: Path, seconds: float, rng: np.random.Generator) -> npt.NDArray[np.float32]:
    """Test-split background clips of every source, shuffled, back to back, at least `seconds` long."""
    rows = [r for r in manifest(data_dir) if r["label"] == "background" and r["split"] == "test"]
    rng.shuffle(rows)  # type: ignore[arg-type]
    parts, total = [], 0
    for row in rows:
        clip = read_clip(data_dir / row["path"])
        parts.append(clip)
        total += clip.size
        if total >= seconds * RATE_HZ:
            break
    return np.concatenate(parts)


@dataclass
class Cell:
    detected: int = 0
    total: int = 0
    wrong: int = 0


def detection(per_cell: int, seed: int, explain: bool = False, kinds: list[str] | None = None) -> None:
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str, int], Cell] = {}
    delays: dict[str, list[float]] = {name: [] for name in kinds or SOUNDS}
    lead_s = 2.0
    sounds = {name: SOUNDS[name] for name in kinds or SOUNDS}
    for name, family in sounds.items():
        label = family.label
        for path in PATHS:
            for snr in SNRS_DB:
                cell = cells.setdefault((name, path, snr), Cell())
                for _ in range(per_cell):
                    sound = family.vary(family.base, rng)
                    signal = family.signal(sound, CYCLES, seed=int(rng.integers(1 << 30)))
                    if path == "reverb":
                        signal = room_reverb(
                            signal, rt60_s=float(rng.uniform(*family.rt60_s)), seed=int(rng.integers(1 << 30))
                        )
                    bed = background_stream(DATA, 40.0, rng)
                    offset = int(rng.integers(0, max(1, bed.size - 30 * RATE_HZ)))
                    samples = mix_at_snr(signal, bed[offset:], snr, lead_s=lead_s, tail_s=2 * sound.cycle_s)
                    if path in ("PCMU", "AAC"):
                        samples = codec_round_trip(samples, path)
                    tones: list[tuple[int, float, float, float]] = []
                    events = run_detector(samples, tones if explain else None)
                    starts = [(lab, t) for lab, active, t in events if active]
                    on_s = next((t for lab, t in starts if lab == label), None)
                    if explain and (on_s is None or on_s - lead_s > 2 * sound.cycle_s + 1.0):
                        # Which tones it heard near the alarm's pitch (times from the first tone's onset).
                        band = 0 if sound.square else 1
                        lines = [hz for hz, _ in sound.lines] or [sound.frequency_hz]
                        heard = [
                            f"{onset - lead_s:.2f}+{length:.2f}@{hz:.0f}"
                            for index, onset, length, hz in tones
                            if index == band and 0.94 * min(lines) < hz < 1.06 * max(lines)
                        ]
                        print(
                            f"  {'late %.1f s' % (on_s - lead_s) if on_s else 'missed'}: {name}, {path}, {snr} dB, "
                            f"{sound.frequency_hz:.0f} Hz, on {sound.on_s:.2f} off {sound.off_s:.2f} pause "
                            f"{sound.pause_s:.2f} s; heard {' '.join(heard)}"
                        )
                    cell.total += 1
                    cell.wrong += any(lab != label for lab, _ in starts)
                    mine = [t for lab, t in starts if lab == label]
                    if mine:
                        cell.detected += 1
                        delays[name].append(mine[0] - lead_s)
    print(f"\n## Detection rate (3 cycles per alarm, {per_cell} alarms per cell)\n")
    print("| alarm | path | " + " | ".join(f"{snr} dB" for snr in SNRS_DB) + " | all |")
    print("|---|---|" + "---:|" * (len(SNRS_DB) + 1))
    for name in delays:
        for path in PATHS:
            row = [cells[name, path, snr] for snr in SNRS_DB]
            hit, total = sum(c.detected for c in row), sum(c.total for c in row)
            shown = " | ".join(f"{100 * c.detected / c.total:.0f}%" for c in row)
            print(f"| {name} | {path} | {shown} | {100 * hit / total:.0f}% ({hit}/{total}) |")
    wrong = sum(c.wrong for c in cells.values())
    print(f"\nAlarms that started the other alarm's sensor: {wrong}")
    print("\n## Time from the first tone to ON (detected alarms, all SNRs and paths)\n")
    print("| alarm | cycle s | detected | median s | p95 s | max s |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, d in delays.items():
        base = SOUNDS[name].base
        if not d:
            print(f"| {name} | {base.cycle_s:.1f} | 0 | | | |")
            continue
        print(
            f"| {name} | {base.cycle_s:.1f} | {len(d)} | {statistics.median(d):.2f} | "
            f"{percentile(d, 95):.2f} | {max(d):.2f} |"
        )


def false_alarms() -> None:
    sets = [("../shared/data", DATA)]
    if (extra_data_dir() / "manifest.csv").is_file():
        sets.append(("built set", extra_data_dir()))
    else:
        print("\n(the built set is not there: only ../shared/data scored)")
    print("\n## False alarms (every clip back to back, manifest order)\n")
    print("| set | clips | hours | smoke ONs | CO ONs | per hour |")
    print("|---|---:|---:|---:|---:|---:|")
    total_h = total_on = 0.0
    for name, folder in sets:
        detector = AlarmPatternDetector()
        ons = {SMOKE_ALARM: 0, CO_ALARM: 0}
        samples = 0
        rows = manifest(folder)
        for row in rows:
            clip = read_clip(folder / row["path"])
            samples += clip.size
            for start in range(0, clip.size, 8000):
                for event in detector.process(clip[start : start + 8000]):
                    if event.active:
                        ons[event.label] += 1
                        print(f"  false alarm: {event.label} in {row['path']}")
        hours = samples / RATE_HZ / 3600
        count = sum(ons.values())
        total_h += hours
        total_on += count
        print(
            f"| {name} | {len(rows)} | {hours:.2f} | {ons[SMOKE_ALARM]} | {ons[CO_ALARM]} | {count / hours:.2f} |"
        )
    print(f"| **all** | | {total_h:.2f} | | {int(total_on)} | {total_on / total_h:.2f} |")


def cpu(runs: int, seconds: float) -> None:
    rng = np.random.default_rng(0)
    bed = background_stream(DATA, seconds, rng)[: int(seconds * RATE_HZ)]
    alarm = alarm_signal(T3_PIEZO, 5)
    samples = mix_at_snr(alarm, bed, 10, lead_s=2.0, tail_s=max(0.0, seconds - 2.0 - alarm.size / RATE_HZ))
    chunks = [samples[i : i + CHUNK] for i in range(0, samples.size, CHUNK)]
    path = model_path()

    def timed(feed: object) -> float:
        start = time.process_time()
        for chunk in chunks:
            feed(chunk)  # type: ignore[operator]
        return (time.process_time() - start) / (samples.size / RATE_HZ) * 1000

    print(
        f"\n## CPU ({samples.size / RATE_HZ:.0f} s of background with a T3 alarm, 20 ms chunks, median of {runs})\n"
    )
    print("| what | CPU ms per audio s | detector / model |")
    print("|---|---:|---:|")
    detector_ms = statistics.median(timed(AlarmPatternDetector().process) for _ in range(runs))
    print(f"| alarm pattern detector | {detector_ms:.3f} | |")
    for backend_name in ("numpy", "onnxruntime"):
        try:
            loaded = load_model(path, backend_name)  # type: ignore[arg-type]
        except Exception as err:  # noqa: BLE001 - onnxruntime may not be installed
            print(f"| model pipeline ({backend_name}) | not measured: {err} | |")
            continue
        model_ms = statistics.median(timed(Pipeline.for_model(loaded).process) for _ in range(runs))
        print(f"| model pipeline ({backend_name}) | {model_ms:.3f} | {100 * detector_ms / model_ms:.1f}% |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--per-cell", type=int, default=20, help="alarms per (alarm, path, SNR) cell")
    parser.add_argument("--runs", type=int, default=5, help="CPU runs (median)")
    parser.add_argument("--cpu-audio-s", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--skip-detection", action="store_true")
    parser.add_argument(
        "--explain", action="store_true", help="print the tones heard for each missed or late alarm"
    )
    parser.add_argument("--skip-false-alarms", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument(
        "--kind", action="append", choices=list(SOUNDS), help="only these alarms (repeat; default: all)"
    )
    args = parser.parse_args()
    print(f"# Smoke and CO alarm patterns\n\nModel (CPU comparison): {model_note(model_path())}")
    print(f"Load average at start: {load_average()}")
    if not args.skip_cpu:
        cpu(args.runs, args.cpu_audio_s)
    if not args.skip_detection:
        detection(args.per_cell, args.seed, args.explain, args.kind)
    if not args.skip_false_alarms:
        false_alarms()
    print(f"\nLoad average at end: {load_average()}")


if __name__ == "__main__":
    main()
