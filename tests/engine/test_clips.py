"""Clips of detections: a bounded ring of recent audio, and each event's clip from pre-roll to post-roll."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
import threading

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.alarm import SMOKE_ALARM, AlarmSettings
from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.clips import AudioRing, Clip, ClipRecorder
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.events import AlarmEvent, DetectionEvent, SoundEvent
from custom_components.sound_sentry.engine.listener import Listener
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline, PipelineOutput
from custom_components.sound_sentry.engine.sources import Backoff, FileSource
from tests.audio import T3_PIEZO, alarm_signal, scene, write_wav

MODEL = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "resnetse_random.onnx"
RATE = 8000
WINDOW_S = 15_480 / RATE


def ramp(seconds: float) -> npt.NDArray[np.int16]:
    """A signal whose every sample tells where it is (modulo 2**16)."""
    return (np.arange(round(seconds * RATE)) % 65536 - 32768).astype(np.int16)


def chunks(samples: npt.NDArray[np.int16], seed: int = 0) -> Iterator[tuple[int, npt.NDArray[np.int16]]]:
    """(end index, chunk) in random sizes from 1 sample to 0.5 s."""
    rng = np.random.default_rng(seed)
    position = 0
    while position < samples.size:
        size = int(rng.integers(1, RATE // 2))
        chunk = samples[position : position + size]
        position += chunk.size
        yield position, chunk


class Collector:
    """A recorder whose clips land in a list; keys name the event's label and start time."""

    def __init__(self, **settings: float) -> None:
        self.clips: list[Clip] = []
        self.recorder = ClipRecorder(
            RATE, WINDOW_S, key_for=lambda e: f"{e.label}@{e.time_s}", on_clip=self.clips.append, **settings
        )

    def play(self, samples: npt.NDArray[np.int16], events: dict[float, list[SoundEvent]]) -> None:
        """Feed `samples` in random chunks; each event comes with the chunk that holds its time."""
        pending = sorted(events.items())
        for end, chunk in chunks(samples):
            due = [e for time_s, group in pending if time_s * RATE <= end for e in group]
            pending = [(t, g) for t, g in pending if t * RATE > end]
            self.recorder.process(chunk, due)


def on(label: str, time_s: float, peak: float = 0.9) -> SoundEvent:
    return SoundEvent(label, True, time_s, peak)


def off(label: str, time_s: float, peak: float = 0.95) -> SoundEvent:
    return SoundEvent(label, False, time_s, peak)


def test_ring_keeps_the_last_samples_in_fixed_memory() -> None:
    ring = AudioRing(1000)
    signal = ramp(3.0)
    for _, chunk in chunks(signal, seed=1):
        ring.write(chunk)
        assert ring.nbytes == 2000
    assert ring.end == signal.size
    assert np.array_equal(ring.read(0), signal[-1000:])  # older than held: from the oldest held
    assert np.array_equal(ring.read(signal.size - 10), signal[-10:])
    ring.write(ramp(1.0))  # one write larger than the ring
    assert np.array_equal(ring.read(0), ramp(1.0)[-1000:])
    ring.reset()
    assert ring.read(0).size == 0


def test_a_clip_runs_from_pre_roll_before_the_onset_window_to_post_roll_after_the_end() -> None:
    collector = Collector(pre_roll_s=5.0, post_roll_s=1.0)
    signal = ramp(30.0)
    collector.play(signal, {12.0: [on("glassbreak", 12.0, 0.91)], 15.5: [off("glassbreak", 15.5, 0.97)]})
    [clip] = collector.clips
    start = round((12.0 - WINDOW_S - 5.0) * RATE)
    stop = round((15.5 + 1.0) * RATE)
    assert np.array_equal(clip.pcm, signal[start:stop])
    assert clip.key == "glassbreak@12.0"
    assert clip.label == "glassbreak"
    assert clip.end == "ended"
    assert clip.peak_probability == 0.97
    assert clip.detected_at_s == pytest.approx(WINDOW_S + 5.0, abs=1 / RATE)
    assert clip.duration_s == pytest.approx(15.5 + 1.0 - 12.0 + WINDOW_S + 5.0, abs=1 / RATE)
    assert collector.recorder.open_clips == 0


def test_a_long_event_is_cut_at_the_cap_and_not_recorded_twice() -> None:
    collector = Collector(max_clip_s=10.0)
    signal = ramp(40.0)
    collector.play(signal, {8.0: [on("babycry", 8.0)], 35.0: [off("babycry", 35.0)]})
    [clip] = collector.clips
    start = round((8.0 - WINDOW_S - 5.0) * RATE)
    assert np.array_equal(clip.pcm, signal[start : start + 10 * RATE])
    assert clip.end == "capped"
    assert clip.peak_probability == 0.9  # the end (and its peak) came after the clip was closed


def test_the_pre_roll_is_what_the_stream_has_at_its_start() -> None:
    collector = Collector()
    signal = ramp(10.0)
    collector.play(signal, {2.5: [on("gunshot", 2.5)], 4.0: [off("gunshot", 4.0)]})
    [clip] = collector.clips
    assert np.array_equal(clip.pcm, signal[: 5 * RATE])
    assert clip.detected_at_s == 2.5


def test_overlapping_events_of_two_labels_get_a_clip_each() -> None:
    collector = Collector(pre_roll_s=1.0, post_roll_s=0.5)
    signal = ramp(30.0)
    collector.play(
        signal,
        {
            10.0: [on("babycry", 10.0)],
            11.0: [on("smoke_alarm", 11.0)],
            14.0: [off("babycry", 14.0)],
            20.0: [off("smoke_alarm", 20.0)],
        },
    )
    assert [(clip.label, clip.duration_s) for clip in collector.clips] == [
        ("babycry", pytest.approx(14.5 - 10.0 + WINDOW_S + 1.0, abs=1 / RATE)),
        ("smoke_alarm", pytest.approx(20.5 - 11.0 + WINDOW_S + 1.0, abs=1 / RATE)),
    ]


def test_the_same_label_again_during_the_post_roll_gets_its_own_clip() -> None:
    collector = Collector(pre_roll_s=1.0, post_roll_s=2.0)
    collector.play(
        ramp(30.0), {5.0: [on("gunshot", 5.0)], 6.0: [off("gunshot", 6.0)], 7.0: [on("gunshot", 7.0)]}
    )
    collector.recorder.flush()
    assert [(clip.key, clip.end) for clip in collector.clips] == [
        ("gunshot@5.0", "ended"),
        ("gunshot@7.0", "interrupted"),
    ]
    assert collector.clips[0].duration_s == pytest.approx(8.0 - 5.0 + WINDOW_S + 1.0, abs=1 / RATE)


def test_reset_hands_over_an_unfinished_clip_and_starts_a_new_stream() -> None:
    collector = Collector(pre_roll_s=1.0)
    signal = ramp(20.0)
    collector.play(signal, {10.0: [on("babycry", 10.0)]})
    assert collector.clips == []
    collector.recorder.reset()
    [clip] = collector.clips
    start = round((10.0 - WINDOW_S - 1.0) * RATE)
    assert np.array_equal(clip.pcm, signal[start:])
    assert clip.end == "interrupted"
    # A new stream: time 0 again, nothing of the old one in the pre-roll.
    second = ramp(6.0) // 2
    collector.play(second, {3.0: [on("babycry", 3.0)], 4.0: [off("babycry", 4.0)]})
    start = round((3.0 - WINDOW_S - 1.0) * RATE)
    assert np.array_equal(collector.clips[1].pcm, second[start : 5 * RATE])


def test_memory_stays_bounded_on_a_long_stream() -> None:
    """An hour of audio with an event every minute: the ring never grows and every clip is handed over."""
    collector = Collector()
    events = {
        60.0 * minute + offset: [event]
        for minute in range(1, 60)
        for offset, event in ((0.0, on("babycry", 60.0 * minute)), (3.0, off("babycry", 60.0 * minute + 3)))
    }
    collector.play(ramp(3600.0), events)
    assert len(collector.clips) == 59
    assert collector.recorder.open_clips == 0
    assert collector.recorder.ring_bytes == round((5.0 + WINDOW_S + 2.0) * RATE) * 2
    assert {clip.pcm.size for clip in collector.clips} == {round((3.0 + 1.0 + WINDOW_S + 5.0) * RATE)}


def test_settings_that_make_no_sense_are_refused() -> None:
    with pytest.raises(ValueError, match="pre_roll_s"):
        ClipRecorder(RATE, WINDOW_S, key_for=str, on_clip=print, pre_roll_s=-1)
    with pytest.raises(ValueError, match="max_clip_s"):
        ClipRecorder(RATE, WINDOW_S, key_for=str, on_clip=print, max_clip_s=0)
    with pytest.raises(ValueError, match="capacity"):
        AudioRing(0)


def test_real_detections_through_the_listener_each_get_their_clip(tmp_path: Path, data_dir: Path) -> None:
    """A recording through a real source thread and pipeline: every event that starts gets exactly one
    clip, of the recording's own samples, and reaches `on_output` carrying its clip's key; a clip still
    open when the listener stops is handed over."""
    audio = scene(data_dir, "babycry", lead_s=8.0, tail_s=4.0)
    path = write_wav(tmp_path / "scene.wav", audio)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    info = ModelInfo.load(MODEL)
    # The random test model: a threshold that its probabilities on this recording cross now and then.
    settings = DetectorSettings(thresholds=dict.fromkeys(info.labels[1:], 0.3), k=1, n=1, hold_s=0.5)
    starts: list[SoundEvent] = []
    clips: list[Clip] = []
    outputs: list[PipelineOutput] = []
    done = threading.Event()

    def key_for(event: DetectionEvent) -> str:
        assert isinstance(event, SoundEvent)
        starts.append(event)
        return f"{event.label}@{event.time_s}"

    def on_status(connected: bool, error: object) -> None:
        if not connected:
            done.set()  # the recording ended: stop after one pass

    listener = Listener(
        "clips",
        lambda: FileSource(str(path)),
        Pipeline(load_backend(MODEL, "numpy"), info, detector=settings, min_level_dbfs=None),
        on_output=outputs.append,
        on_status=on_status,
        backoff=Backoff(30.0, 30.0),
        recorder=ClipRecorder(RATE, WINDOW_S, key_for=key_for, on_clip=clips.append),
    )
    listener.start()
    try:
        assert done.wait(30)
    finally:
        listener.stop(10)
    events = [event for output in outputs for event in output.events]
    assert [replace(event, clip_key=f"{event.label}@{event.time_s}") for event in starts] == [
        event for event in events if event.active
    ]
    assert all(event.clip_key is None for event in events if not event.active)
    assert starts, "the random model crossed no threshold: pick another one"
    assert sorted(clip.key for clip in clips) == sorted(f"{e.label}@{e.time_s}" for e in starts)
    for clip in clips:
        onset = next(e for e in starts if clip.key == f"{e.label}@{e.time_s}")
        first = max(0, round((onset.time_s - WINDOW_S - 5.0) * RATE))
        assert np.array_equal(clip.pcm, pcm[first : first + clip.pcm.size])


def test_an_alarm_pattern_from_the_pipeline_gets_its_clip_too() -> None:
    """Every label the pipeline emits is recorded, not only the model's: a smoke alarm (T3) heard by the
    alarm pattern detector, whose events come in outputs that may hold no window, gets one clip."""
    info = ModelInfo.load(MODEL)
    no_model_sounds = DetectorSettings(thresholds={})  # the random test model may "hear" anything
    pipeline = Pipeline(load_backend(MODEL, "numpy"), info, detector=no_model_sounds, alarms=AlarmSettings())
    samples = np.concatenate(
        [np.zeros(RATE, np.float32), alarm_signal(T3_PIEZO, 3), np.zeros(8 * RATE, np.float32)]
    )
    pcm = (samples * 32767).astype(np.int16)
    starts: list[DetectionEvent] = []
    clips: list[Clip] = []
    events: list[DetectionEvent] = []

    def key_for(event: DetectionEvent) -> str:
        starts.append(event)
        return event.label

    recorder = ClipRecorder(RATE, WINDOW_S, key_for=key_for, on_clip=clips.append)
    for i in range(0, pcm.size, 160):
        chunk = pcm[i : i + 160]
        events += recorder.process(chunk, pipeline.process(chunk).events)
    assert [event.label for event in starts] == [SMOKE_ALARM]
    assert [(type(e), e.active, e.clip_key) for e in events] == [
        (AlarmEvent, True, SMOKE_ALARM),
        (AlarmEvent, False, None),
    ]
    [clip] = clips
    assert (clip.label, clip.end, clip.peak_probability) == (SMOKE_ALARM, "ended", None)  # no probability
    first = max(0, round((starts[0].time_s - WINDOW_S - 5.0) * RATE))
    assert np.array_equal(clip.pcm, pcm[first : first + clip.pcm.size])
