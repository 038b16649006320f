"""Smoke and CO alarms by their pattern: synthetic T3 / T4 alarms in real background, and what must not count."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
import io
import json
from pathlib import Path
import re

import numpy as np
import numpy.typing as npt
import pytest

from benchmarks.alarms import split_beep_alarm, split_beep_signal
from custom_components.sound_sentry.engine import cli
from custom_components.sound_sentry.engine.alarm import (
    CO_ALARM,
    SMOKE_ALARM,
    AlarmPatternDetector,
    AlarmSettings,
)
from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.events import AlarmEvent
from custom_components.sound_sentry.engine.level import level_dbfs
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from tests.audio import (
    RATE_HZ,
    T3_520,
    T3_PIEZO,
    T4_PIEZO,
    AlarmSound,
    alarm_signal,
    background_bed,
    encode_with_pyav,
    manifest,
    mix_at_snr,
    multi_line_alarm,
    read_clip,
    room_reverb,
    varied_alarm,
    warbling_alarm,
    write_wav,
)
from training.audio_paths import extra_data_dir

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "fixtures" / "resnetse_random.onnx"
LEAD_S = 2.0
CYCLES = 3
SOUNDS = {
    "t3_piezo": (T3_PIEZO, SMOKE_ALARM),
    "t4_piezo": (T4_PIEZO, CO_ALARM),
    "t3_520hz": (T3_520, SMOKE_ALARM),
}


def run(
    samples: npt.NDArray[np.float32], chunk: int = 160, settings: AlarmSettings | None = None
) -> list[AlarmEvent]:
    """The detector's events over `samples` fed in chunks of `chunk` samples (20 ms, as a camera)."""
    detector = AlarmPatternDetector(settings)
    events: list[AlarmEvent] = []
    for start in range(0, samples.size, chunk):
        events.extend(detector.process(samples[start : start + chunk]))
    return events


def random_chunks(samples: npt.NDArray[np.float32], seed: int) -> Iterator[npt.NDArray[np.float32]]:
    rng = np.random.default_rng(seed)
    position = 0
    while position < samples.size:
        size = int(rng.integers(1, 5000))
        yield samples[position : position + size]
        position += size


@pytest.fixture(scope="module")
def bed(data_dir: Path) -> npt.NDArray[np.float32]:
    """A minute of real room background (test-split recordings), at its own level."""
    return background_bed(data_dir, 60.0, gain=1.0, clips=20)


def scene(
    bed: npt.NDArray[np.float32], sound: AlarmSound, snr_db: float, *, rt60_s: float | None, seed: int
) -> npt.NDArray[np.float32]:
    """`CYCLES` cycles of `sound` after `LEAD_S` of background, then 3 cycles of background alone."""
    signal = alarm_signal(sound, CYCLES, seed=seed)
    if rt60_s is not None:
        signal = room_reverb(signal, rt60_s=rt60_s, seed=seed)
    return mix_at_snr(signal, bed, snr_db, lead_s=LEAD_S, tail_s=3 * sound.cycle_s)


@pytest.mark.parametrize("name", sorted(SOUNDS))
def test_alarms_in_real_background_turn_on_within_two_cycles_and_off_after(
    name: str, bed: npt.NDArray[np.float32]
) -> None:
    """Each pattern, varied as real alarms vary (frequency, timing within the standards' 10%, jitter,
    harmonics), in real room background at 20, 10 and 5 dB SNR, dry and with room reverb: it starts its
    own alarm (only that one) within two cycles of the first tone (three if one cycle is missed), at the
    tone's frequency, and ends it once the pattern stops. Piezo T3 alarms are all heard, T4 all but at
    most one, the 520 Hz square wave in at least 6 of 9 cases."""
    base, label = SOUNDS[name]
    rng = np.random.default_rng(16)
    misses, late = [], []
    for snr_db in (20, 10, 5):
        for rt60_s in (None, 0.3, 0.5):
            sound = varied_alarm(base, rng)
            events = run(scene(bed, sound, snr_db, rt60_s=rt60_s, seed=snr_db))
            case = (
                f"{snr_db} dB, reverb {rt60_s}: {[(e.label, e.active, round(e.time_s, 2)) for e in events]}"
            )
            if [(e.label, e.active) for e in events] != [(label, True), (label, False)]:
                misses.append(case)
                continue
            start, end = events
            # The tone's frequency; a square wave's may be reported as its 5th or 7th harmonic or their
            # centre (heard in the piezo band, as one line or two, when its fundamental was masked).
            reported = start.frequency_hz
            assert abs(reported - sound.frequency_hz) <= 0.03 * sound.frequency_hz or (
                sound.square and 0.97 * 5 * sound.frequency_hz <= reported <= 1.03 * 7 * sound.frequency_hz
            ), case
            assert start.cycles == 2
            # On at the end of the second cycle's tones (plus a block of analysis), or, when a cycle
            # was missed, the third's.
            second_group_end = LEAD_S + sound.cycle_s + sound.tones * (sound.on_s + sound.off_s)
            assert start.time_s <= second_group_end + sound.cycle_s + 0.5, case
            if start.time_s > second_group_end + 0.5:
                late.append(case)
            # Off once the pattern stopped: within `end_after_cycles` (2) cycles of its last, not before.
            last_cycle_end = LEAD_S + CYCLES * sound.cycle_s
            assert last_cycle_end - sound.pause_s <= end.time_s <= last_cycle_end + 2 * sound.cycle_s, case
    # The 520 Hz square wave is harder (room hum and voices share its band), and so is T4 in a
    # reverberant room (its 0.1 s gaps fill up): see the README's limits and benchmarks/alarms.py.
    allowed = 3 if base.square else 1 if base.tones == 4 else 0
    assert len(misses) <= allowed, misses
    assert len(late) <= 1, late


@pytest.mark.parametrize(
    ("vary", "base", "label", "allowed"),
    [
        pytest.param(multi_line_alarm, T3_PIEZO, SMOKE_ALARM, 1, id="t3-multi-line"),
        pytest.param(multi_line_alarm, T4_PIEZO, CO_ALARM, 4, id="t4-multi-line"),
        pytest.param(warbling_alarm, T3_PIEZO, SMOKE_ALARM, 9, id="t3-warbling"),
    ],
)
def test_piezo_beeps_of_several_lines_and_warbling_beeps_are_heard(
    vary: Callable[[AlarmSound, np.random.Generator], AlarmSound],
    base: AlarmSound,
    label: str,
    allowed: int,
    bed: npt.NDArray[np.float32],
) -> None:
    """Piezos whose beep splits into lines 380-480 Hz apart, the strongest holding only 25-35% of the
    piezo band (as a recorded alarm's at 2.2 / 2.6 / 3.0 / 3.5 kHz), and piezos that warble (+-3-8% at
    5-12 Hz), varied like the others, in real background at 20, 10 and 5 dB SNR, dry and in a room: each
    starts its own alarm only, but for the misses allowed (see benchmarks/alarms.py for the rates)."""
    rng = np.random.default_rng(20)
    misses = []
    for snr_db in (20, 10, 5):
        for rt60_s in (None, 0.3, 0.5):
            sound = vary(base, rng)
            events = run(scene(bed, sound, snr_db, rt60_s=rt60_s, seed=snr_db))
            assert all(e.label == label for e in events), events
            if [e.active for e in events] != [True, False]:
                misses.append(f"{snr_db} dB, reverb {rt60_s}: {events}")
                continue
            # The reported frequency lies among the beep's lines.
            lines = [hz for hz, _ in sound.lines] or [sound.frequency_hz]
            assert min(lines) * 0.95 <= events[0].frequency_hz <= max(lines) * 1.05
    assert len(misses) <= allowed, misses


FIRST_ALERT = replace(
    T3_PIEZO,
    frequency_hz=2200.0,
    jitter=0.03,
    warble=0.005,
    lines=((2200.0, 1.0), (2600.0, 0.4), (3000.0, 0.7), (3500.0, 0.3)),
)
"""A recorded First Alert alarm's beep: lines at 2.2 / 2.6 / 3.0 / 3.5 kHz, irregularly spaced, of
unequal levels (`split_beep_signal` changes them from beep to beep)."""


@pytest.mark.parametrize(("rt60_s", "snr_db"), [(None, 20), (0.8, 10)])
def test_a_beep_split_into_lines_whose_levels_change_from_beep_to_beep_is_heard_in_a_room(
    rt60_s: float | None, snr_db: float, bed: npt.NDArray[np.float32]
) -> None:
    """The recorded alarm's beep structure, its lines' levels changing by up to 6 dB from beep to beep,
    dry and in a reverberant room: their centre and their loudest move by 5-15% from beep to beep, but
    the lines stay put, so it is a smoke alarm (reported among its lines)."""
    signal = split_beep_signal(FIRST_ALERT, CYCLES, seed=7)
    if rt60_s is not None:
        signal = room_reverb(signal, rt60_s=rt60_s, seed=7)
    events = run(mix_at_snr(signal, bed, snr_db, lead_s=LEAD_S, tail_s=3 * FIRST_ALERT.cycle_s))
    assert [(e.label, e.active) for e in events] == [(SMOKE_ALARM, True), (SMOKE_ALARM, False)], events
    assert 2200.0 * 0.95 <= events[0].frequency_hz <= 3500.0 * 1.05


def test_split_beeps_varied_as_the_benchmark_varies_them_are_mostly_heard(
    bed: npt.NDArray[np.float32],
) -> None:
    """`benchmarks.alarms`' split beeps (3-5 lines between 2.0 and 3.6 kHz, irregular spacing, levels
    changing from beep to beep), dry and in rooms of RT60 0.3-0.8 s, at 20 and 10 dB SNR: most start
    the smoke alarm, none the CO alarm (the benchmark gives the rates)."""
    rng = np.random.default_rng(28)
    heard = 0
    for snr_db in (20, 10):
        for rt60_s in (None, 0.3, 0.5, 0.8):
            sound = split_beep_alarm(T3_PIEZO, rng)
            signal = split_beep_signal(sound, CYCLES, seed=int(rng.integers(1 << 30)))
            if rt60_s is not None:
                signal = room_reverb(signal, rt60_s=rt60_s, seed=snr_db)
            events = run(mix_at_snr(signal, bed, snr_db, lead_s=LEAD_S, tail_s=3 * sound.cycle_s))
            assert all(e.label == SMOKE_ALARM for e in events), events
            heard += [e.active for e in events] == [True, False]
    assert heard >= 5, f"{heard} of 8"


def test_at_0_db_snr_most_alarms_are_still_heard(bed: npt.NDArray[np.float32]) -> None:
    """At 0 dB SNR (the alarm as loud as the room) with reverb, nearly every alarm is still heard."""
    rng = np.random.default_rng(0)
    heard = total = 0
    for base, label in SOUNDS.values():
        for seed in range(4):
            events = run(scene(bed, varied_alarm(base, rng), 0, rt60_s=0.4, seed=seed))
            total += 1
            heard += any(e.label == label and e.active for e in events)
            assert all(e.label == label for e in events)
    assert heard >= total - 2, f"{heard} of {total}"


def test_any_chunking_gives_the_same_events(bed: npt.NDArray[np.float32]) -> None:
    samples = scene(bed, T3_PIEZO, 10, rt60_s=0.3, seed=1)
    expected = run(samples, chunk=samples.size)
    assert [e.label for e in expected] == [SMOKE_ALARM, SMOKE_ALARM]
    detector = AlarmPatternDetector()
    for seed in (1, 2):
        detector.reset()
        events = [e for chunk in random_chunks(samples, seed) for e in detector.process(chunk)]
        assert events == expected
    assert run(samples, chunk=1)[:1] == expected[:1]


def test_reset_forgets_a_half_heard_pattern(bed: npt.NDArray[np.float32]) -> None:
    """One cycle before a reset and one after are not two cycles."""
    one_cycle = mix_at_snr(alarm_signal(T3_PIEZO, 1), bed, 20, lead_s=1.0, tail_s=0.0)
    detector = AlarmPatternDetector()
    assert detector.process(one_cycle) == []
    detector.reset()
    assert detector.process(one_cycle) == []
    assert detector.active == {SMOKE_ALARM: False, CO_ALARM: False}


def test_only_the_patterns_asked_for_are_reported(bed: npt.NDArray[np.float32]) -> None:
    samples = scene(bed, T3_PIEZO, 20, rt60_s=None, seed=0)
    assert run(samples, settings=AlarmSettings(labels=(CO_ALARM,))) == []
    assert {e.label for e in run(samples, settings=AlarmSettings(labels=(SMOKE_ALARM,)))} == {SMOKE_ALARM}


def test_a_quiet_alarm_below_the_level_gate_is_ignored(bed: npt.NDArray[np.float32]) -> None:
    settings = AlarmSettings()
    quiet = alarm_signal(T3_PIEZO, CYCLES, level_dbfs=settings.min_tone_dbfs - 6)
    assert run(np.concatenate([np.zeros(RATE_HZ, np.float32), quiet])) == []
    audible = alarm_signal(T3_PIEZO, CYCLES, level_dbfs=settings.min_tone_dbfs + 6)
    silence = np.zeros(10 * RATE_HZ, np.float32)
    assert [e.active for e in run(np.concatenate([silence, audible, silence]))] == [True, False]


# -- What must not count -----------------------------------------------------------------------------


def off_pattern(**changes: float) -> AlarmSound:
    return replace(T3_PIEZO, **changes)


@pytest.mark.parametrize(
    "sound",
    [
        pytest.param(off_pattern(on_s=0.35, off_s=0.35), id="t3-tones-30pct-fast"),
        pytest.param(off_pattern(on_s=0.65, off_s=0.65), id="t3-tones-30pct-slow"),
        pytest.param(off_pattern(pause_s=0.5), id="beeping-every-second"),
        pytest.param(off_pattern(pause_s=2.5), id="t3-pause-a-second-too-long"),
        pytest.param(off_pattern(tones=2, pause_s=2.0), id="two-tones"),
        pytest.param(off_pattern(tones=5, pause_s=1.5), id="five-tones"),
        pytest.param(replace(T4_PIEZO, on_s=0.2, off_s=0.2), id="t4-twice-as-slow"),
        pytest.param(replace(T4_PIEZO, tones=6), id="six-short-tones"),
        pytest.param(replace(T4_PIEZO, pause_s=2.0), id="t4-pause-too-short"),
    ],
)
def test_patterns_outside_the_tolerances_are_not_alarms(
    sound: AlarmSound, bed: npt.NDArray[np.float32]
) -> None:
    assert run(mix_at_snr(alarm_signal(sound, 4), bed, 20, lead_s=1.0, tail_s=2.0)) == []


def beeps(
    frequencies_hz: tuple[float, ...], on_s: float, off_s: float, count: int
) -> npt.NDArray[np.float32]:
    """`count` beeps of `on_s`, `off_s` apart, each of lines at `frequencies_hz` (equal power), at -20 dBFS."""
    return alarm_signal(
        AlarmSound(
            tones=count,
            on_s=on_s,
            off_s=off_s,
            pause_s=off_s,
            frequency_hz=frequencies_hz[0],
            lines=tuple((hz, 1.0) for hz in frequencies_hz) if len(frequencies_hz) > 1 else (),
        ),
        1,
    )


def hum(
    seconds: float, *, mains_hz: float, whine_hz: tuple[float, ...], seed: int
) -> npt.NDArray[np.float32]:
    """A pump or water heater: mains hum with its harmonics up to 1 kHz and tonal lines (a motor's or
    a burner's whine) in the piezo band, their level swaying slowly (0.3-0.9 Hz), at about -25 dBFS."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE_HZ)) / RATE_HZ
    out = np.zeros(t.size)
    lines = [(k * mains_hz, 1.0 / k) for k in range(1, int(1000 / mains_hz) + 1)]
    lines += [(hz, 0.3) for hz in whine_hz]
    for hz, amplitude in lines:
        sway = 1 + 0.5 * np.sin(2 * np.pi * rng.uniform(0.3, 0.9) * t + rng.uniform(0, 2 * np.pi))
        out += amplitude * sway * np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi))
    return (out / np.sqrt(np.mean(out**2)) * 10 ** (-25 / 20)).astype(np.float32)


def at(samples: npt.NDArray[np.float32], seconds: float) -> tuple[float, npt.NDArray[np.float32]]:
    return seconds, samples


def household(
    bed: npt.NDArray[np.float32], length_s: float, sounds: list[tuple[float, npt.NDArray[np.float32]]]
) -> npt.NDArray[np.float32]:
    """`length_s` of real room background (at -40 dBFS-ish, its own level) with `sounds` added at their
    start times."""
    out = np.resize(bed, round(length_s * RATE_HZ)).copy()
    for start_s, sound in sounds:
        start = round(start_s * RATE_HZ)
        out[start : start + sound.size] += sound[: out.size - start]
    return np.clip(out, -1.0, 1.0)


@pytest.mark.parametrize(
    "sounds",
    [
        # A washing machine's "finished": three beeps at 3.3 kHz, T3's tones exactly, once; and again a
        # minute later (not T3's 4 s cycle).
        pytest.param([at(beeps((3300.0,), 0.5, 0.5, 3), 2.0)], id="washer-3-beeps-once"),
        pytest.param(
            [at(beeps((3300.0,), 0.5, 0.5, 3), 2.0), at(beeps((3300.0,), 0.5, 0.5, 3), 62.0)],
            id="washer-3-beeps-a-minute-apart",
        ),
        # The same machine whose beep is several lines (a cheap piezo, like the alarm of item 4).
        pytest.param(
            [at(beeps((2600.0, 3030.0, 3460.0), 0.5, 0.5, 3), 2.0)], id="washer-multi-line-beeps-once"
        ),
        # A microwave's end: 3 to 5 beeps, 0.2-0.3 s, at 2-3 kHz, once, or a reminder a minute later.
        pytest.param([at(beeps((2000.0,), 0.3, 0.2, 3), 2.0)], id="microwave-3-beeps"),
        pytest.param([at(beeps((2700.0,), 0.2, 0.2, 5), 2.0)], id="microwave-5-beeps"),
        pytest.param(
            [
                at(beeps((2750.0, 3200.0), 0.25, 0.25, 4), 2.0),
                at(beeps((2750.0, 3200.0), 0.25, 0.25, 4), 62.0),
            ],
            id="microwave-4-multi-line-beeps-and-a-reminder",
        ),
        # A dishwasher or oven beeping its end over and over: three beeps every 2 s (too fast for T3).
        pytest.param(
            [at(beeps((3300.0,), 0.5, 0.5, 3), 2.0 + 3.0 * k) for k in range(6)], id="three-beeps-every-3-s"
        ),
        # A pump and a water heater: hum with tonal lines in the piezo band, swaying, for a minute.
        pytest.param([at(hum(60.0, mains_hz=50.0, whine_hz=(2900.0,), seed=1), 1.0)], id="pump-50hz-whine"),
        pytest.param(
            [at(hum(60.0, mains_hz=60.0, whine_hz=(2640.0, 3080.0, 3520.0), seed=2), 1.0)],
            id="water-heater-60hz-whine-lines",
        ),
    ],
)
def test_appliance_beeps_and_hums_are_not_alarms(
    sounds: list[tuple[float, npt.NDArray[np.float32]]], bed: npt.NDArray[np.float32]
) -> None:
    """Household sounds that beep at alarm pitches, or hum with lines in the piezo band, but do not repeat
    T3's or T4's cycle: no alarm (in a quiet room, where the beeps are heard best)."""
    assert run(household(bed * np.float32(0.1), 75.0, sounds)) == []


@pytest.mark.parametrize(
    "sound",
    [
        pytest.param(replace(FIRST_ALERT, pause_s=0.5), id="split-beeps-every-second"),
        pytest.param(replace(FIRST_ALERT, pause_s=2.5), id="split-beeps-pause-a-second-too-long"),
        pytest.param(replace(FIRST_ALERT, tones=5), id="five-split-beeps"),
        pytest.param(replace(FIRST_ALERT, on_s=0.3, off_s=0.3, pause_s=0.9), id="split-beeps-40pct-fast"),
    ],
)
def test_split_beeps_whose_levels_change_but_not_in_t3s_cadence_are_not_alarms(
    sound: AlarmSound, bed: npt.NDArray[np.float32]
) -> None:
    """An appliance's chime of several lines whose levels change from beep to beep, in a room: matching
    beeps by their lines, not their centre, does not make a pattern that is not T3 an alarm."""
    signal = room_reverb(split_beep_signal(sound, 4, seed=3), rt60_s=0.5, seed=3)
    assert run(mix_at_snr(signal, bed, 20, lead_s=1.0, tail_s=2.0)) == []


def test_a_split_beep_chime_of_three_beeps_a_minute_apart_is_not_an_alarm(
    bed: npt.NDArray[np.float32],
) -> None:
    """A washing machine's "finished" as three beeps of several lines (T3's tones exactly, levels
    changing from beep to beep), once and again a minute later: not T3's 4 s cycle."""
    chime = split_beep_signal(replace(FIRST_ALERT, pause_s=0.5), 1, seed=5)
    again = split_beep_signal(replace(FIRST_ALERT, pause_s=0.5), 1, seed=6)
    assert run(household(bed * np.float32(0.1), 75.0, [at(chime, 2.0), at(again, 62.0)])) == []


def test_continuous_tones_are_not_alarms(bed: npt.NDArray[np.float32]) -> None:
    t = np.arange(20 * RATE_HZ) / RATE_HZ
    for frequency in (520.0, 3100.0):
        tone = (0.1 * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
        assert run(mix_at_snr(tone, bed, 20, lead_s=1.0, tail_s=1.0)) == []


def test_silence_and_white_noise_are_not_alarms() -> None:
    noise = np.random.default_rng(0).standard_normal(30 * RATE_HZ).astype(np.float32) * 0.1
    assert run(np.zeros(30 * RATE_HZ, np.float32)) == []
    assert run(noise) == []


def esc50_clips(data_dir: Path, target: int) -> list[Path]:
    """Every ESC-50 clip of one category in the data set (the target is the file name's last number)."""
    pattern = re.compile(rf"-{target}\.flac$")
    return [
        data_dir / row["path"]
        for row in manifest(data_dir)
        if row["source"] == "esc50" and pattern.search(row["path"])
    ]


@pytest.mark.parametrize(("target", "category"), [(38, "clock_alarm"), (42, "siren")])
def test_esc50_clock_alarms_and_sirens_are_not_smoke_or_co_alarms(
    data_dir: Path, target: int, category: str
) -> None:
    """All ESC-50 clips of the category, back to back as one stream (then each alone, looped to 20 s)."""
    clips = [read_clip(path) for path in esc50_clips(data_dir, target)]
    assert len(clips) >= 20, category
    assert run(np.concatenate(clips)) == []
    for clip in clips:
        assert run(np.resize(clip, 20 * RATE_HZ)) == [], category


def test_the_built_sets_beeps_alarms_and_sirens_are_not_smoke_or_co_alarms() -> None:
    """The built set's (training/data/build) clips named like beeps, bells, alarms and sirens, each looped."""
    folder = extra_data_dir()
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"the built set is not at {folder} (python -m training.data.build)")
    words = re.compile(r"beep|bell|alarm|siren|ring|buzz|clock|timer|phone", re.IGNORECASE)
    paths = [folder / row["path"] for row in manifest(folder) if words.search(Path(row["path"]).stem)]
    assert paths
    for path in paths:
        clip = read_clip(path)
        if clip.size:
            assert run(np.resize(clip, max(clip.size, 20 * RATE_HZ))) == [], path.name


# -- In the pipeline ----------------------------------------------------------------------------------


def test_the_pipeline_reports_alarms_among_its_events_even_below_its_level_floor(
    bed: npt.NDArray[np.float32],
) -> None:
    """A quiet T3 (tones at -63 dBFS: the windows stay under the model's -60 dBFS floor, so the model never
    runs) fed in 20 ms chunks, most of which complete no window: the pipeline still reports the alarm."""
    info = ModelInfo.load(MODEL)
    pipeline = Pipeline(load_backend(MODEL, "numpy"), info, alarms=AlarmSettings())
    samples = np.concatenate(
        [np.zeros(RATE_HZ, np.float32), alarm_signal(T3_PIEZO, CYCLES, level_dbfs=-63.0)]
    )
    samples = np.concatenate([samples, np.zeros(8 * RATE_HZ, np.float32)])
    assert level_dbfs(samples) < pipeline.min_level_dbfs
    outputs = [pipeline.process(samples[i : i + 160]) for i in range(0, samples.size, 160)]
    windows = [w for o in outputs for w in o.windows]
    events = [e for o in outputs for e in o.events]
    assert windows
    assert not any(w.classified for w in windows)
    assert [(e.label, e.active) for e in events] == [(SMOKE_ALARM, True), (SMOKE_ALARM, False)]
    pipeline.reset()
    assert pipeline.alarms is not None
    assert pipeline.alarms.active == {SMOKE_ALARM: False, CO_ALARM: False}
    plain = Pipeline(load_backend(MODEL, "numpy"), info)
    assert plain.alarms is None
    events = [e for i in range(0, samples.size, 160) for e in plain.process(samples[i : i + 160]).events]
    assert not [e for e in events if e.label in (SMOKE_ALARM, CO_ALARM)]


# -- Bad input ----------------------------------------------------------------------------------------


def test_bad_settings_and_input_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="unknown alarm labels"):
        AlarmSettings(labels=("fire",))
    with pytest.raises(ValueError, match="sample_rate_hz"):
        AlarmSettings(sample_rate_hz=4000)
    with pytest.raises(ValueError, match="hop_s"):
        AlarmSettings(hop_s=0)
    with pytest.raises(ValueError, match="n_fft"):
        AlarmSettings(sample_rate_hz=48000, n_fft=64)
    with pytest.raises(ValueError, match="tonal_share"):
        AlarmSettings(tonal_share_on=0.2, tonal_share_off=0.4)
    with pytest.raises(TypeError, match="float"):
        AlarmPatternDetector().process(np.zeros(10, dtype=np.int16))  # type: ignore[arg-type]
    info = ModelInfo.load(MODEL)
    with pytest.raises(ValueError, match="Hz"):
        Pipeline(load_backend(MODEL, "numpy"), info, alarms=AlarmSettings(sample_rate_hz=16000))


@pytest.fixture(scope="module")
def t3_recordings(tmp_path_factory: pytest.TempPathFactory, bed: npt.NDArray[np.float32]) -> dict[str, Path]:
    """One T3 alarm in real background, as WAV and as FLAC: two cycles after 2 s, the recording cut
    0.1 s after the second cycle's last tone (the tone that decides is in its last second)."""
    signal = alarm_signal(T3_PIEZO, 2)
    last_tone_end_s = T3_PIEZO.cycle_s + 3 * T3_PIEZO.on_s + 2 * T3_PIEZO.off_s
    signal = signal[: round((last_tone_end_s + 0.1) * RATE_HZ)]
    samples = mix_at_snr(signal, bed, 10, lead_s=2.0, tail_s=0.0)
    folder = tmp_path_factory.mktemp("t3")
    flac = folder / "t3.flac"
    encode_with_pyav((np.clip(samples, -1, 1) * 32767).astype(np.int16), flac, "flac", RATE_HZ)
    return {"wav": write_wav(folder / "t3.wav", samples), "flac": flac}


def cli_scan(*args: str) -> list[str]:
    """`scan` with the test model, in process; its output lines (it must succeed)."""
    out = io.StringIO()
    assert cli.main(["scan", "--model", str(MODEL), "--backend", "numpy", *args], out=out) == 0
    return out.getvalue().splitlines()


@pytest.mark.parametrize("hop_s", ["0.25", "0.5", "1.0", "2.0"])
@pytest.mark.parametrize("container", ["wav", "flac"])
def test_cli_scan_prints_the_alarm_of_a_wav_and_a_flac_at_any_hop(
    t3_recordings: dict[str, Path], container: str, hop_s: str
) -> None:
    """The decoder's chunks (their size differs per container) and the hop decide which chunks complete
    a model window; the alarm's start comes in whichever chunk it does, and is printed in the table and
    in --jsonl."""
    path = str(t3_recordings[container])
    rows = [line.split() for line in cli_scan(path, "--hop-s", hop_s)]
    # One row: "  9.73 s  (running)  smoke_alarm 3100 Hz, 2 cycles" (the recording ends while it sounds).
    assert [row[2:] for row in rows if SMOKE_ALARM in row] == [
        ["(running)", SMOKE_ALARM, str(round(T3_PIEZO.frequency_hz)), "Hz,", "2", "cycles"]
    ], rows
    alarms = [
        line for line in map(json.loads, cli_scan(path, "--hop-s", hop_s, "--jsonl")) if "cycles" in line
    ]
    assert [(a["event"], a["state"], a["cycles"]) for a in alarms] == [(SMOKE_ALARM, "on", 2)], alarms
    assert abs(alarms[0]["frequency_hz"] - T3_PIEZO.frequency_hz) < 0.02 * T3_PIEZO.frequency_hz
    assert not any(SMOKE_ALARM in line for line in cli_scan("--no-alarms", "--hop-s", hop_s, path))


def test_detector_finish_analyses_the_audio_held_back_at_the_end_of_a_recording(
    bed: npt.NDArray[np.float32],
) -> None:
    """The detector analyses a second at a time: a recording that ends just after the tone that decides
    gives the alarm only when its end is announced (`finish()`), in any chunking."""
    signal = alarm_signal(T3_PIEZO, 2)[: round((T3_PIEZO.cycle_s + 2.6) * RATE_HZ)]
    samples = mix_at_snr(signal, bed, 10, lead_s=2.0, tail_s=0.0)
    for chunk in (160, 4096):
        detector = AlarmPatternDetector()
        assert [
            e for i in range(0, samples.size, chunk) for e in detector.process(samples[i : i + chunk])
        ] == []
        assert [(e.label, e.active) for e in detector.finish()] == [(SMOKE_ALARM, True)]


def test_cli_listen_prints_the_alarm_of_a_recording(tmp_path: Path, bed: npt.NDArray[np.float32]) -> None:
    from tests.engine.test_cli import NONE_PASS, cli

    samples = mix_at_snr(alarm_signal(T3_PIEZO, CYCLES), bed, 10, lead_s=2.0, tail_s=3.0)
    result = cli("listen", str(write_wav(tmp_path / "t3.wav", samples)), "--model", str(MODEL), *NONE_PASS)
    assert result.returncode == 0, result.stderr
    # "12:00:00      9.76 s  smoke_alarm started  3100 Hz, 2 cycles"
    assert [line.split()[3:] for line in result.stdout.splitlines()] == [
        [SMOKE_ALARM, "started", str(round(T3_PIEZO.frequency_hz)), "Hz,", "2", "cycles"]
    ], result.stdout


def with_tones(
    samples: npt.NDArray[np.float32], tones: list[tuple[float, float, float]]
) -> npt.NDArray[np.float32]:
    """`samples` with sine tones (start s, length s, Hz) at -20 dBFS RMS added."""
    out = samples.copy()
    for start_s, length_s, frequency in tones:
        t = np.arange(round(length_s * RATE_HZ)) / RATE_HZ
        start = round(start_s * RATE_HZ)
        out[start : start + t.size] += (0.1 * np.sqrt(2) * np.sin(2 * np.pi * frequency * t)).astype(
            np.float32
        )
    return out


def test_a_melody_with_other_notes_in_the_pause_is_not_an_alarm(bed: npt.NDArray[np.float32]) -> None:
    """T3's cadence at one pitch, but another note in every pause (music on hold): not an alarm; the
    same without those notes is."""
    samples = mix_at_snr(alarm_signal(T3_PIEZO, 4), bed, 20, lead_s=1.0, tail_s=2.0)
    assert [e.active for e in run(samples)][:1] == [True]
    notes = [(1.0 + cycle * T3_PIEZO.cycle_s + 2.7, 0.4, 2600.0) for cycle in range(4)]
    assert run(with_tones(samples, notes)) == []


def test_a_blip_of_the_same_pitch_just_before_a_tone_does_not_move_its_onset(
    bed: npt.NDArray[np.float32],
) -> None:
    """A 40 ms blip at the alarm's pitch 0.15 s before each cycle (a background sound): still on after
    two cycles, not one later."""
    samples = mix_at_snr(alarm_signal(T3_PIEZO, CYCLES), bed, 20, lead_s=LEAD_S, tail_s=8.0)
    blips = [
        (LEAD_S + cycle * T3_PIEZO.cycle_s - 0.19, 0.04, T3_PIEZO.frequency_hz) for cycle in range(CYCLES)
    ]
    events = run(with_tones(samples, blips))
    assert [e.active for e in events] == [True, False]
    assert events[0].time_s <= LEAD_S + T3_PIEZO.cycle_s + 3 * (T3_PIEZO.on_s + T3_PIEZO.off_s) + 1.0


def test_skipping_idle_spectra_changes_nothing(bed: npt.NDArray[np.float32]) -> None:
    """The detector skips blocks with no strong spectrum and runs of weak spectra that cannot make a
    tone: over real background with alarms (each pattern, 0-20 dB SNR, dry and in a room), it closes the
    same tones and reports the same events as when it analyses everything."""
    rng = np.random.default_rng(3)
    heard = 0
    for index, (base, _) in enumerate(SOUNDS.values()):
        for snr_db in (0, 10, 20):
            sound = varied_alarm(base, rng)
            samples = scene(bed, sound, snr_db, rt60_s=0.4 if snr_db == 10 else None, seed=index)
            detectors = [AlarmPatternDetector(), AlarmPatternDetector()]
            detectors[1].tracker.skip_idle = False
            events = [run_with(detector, samples) for detector in detectors]
            assert events[0] == events[1]
            assert detectors[0].matcher.tones == detectors[1].matcher.tones
            heard += any(e.active for e in events[0])
    assert heard >= 6


def run_with(detector: AlarmPatternDetector, samples: npt.NDArray[np.float32]) -> list[AlarmEvent]:
    return [
        e for start in range(0, samples.size, 160) for e in detector.process(samples[start : start + 160])
    ]
