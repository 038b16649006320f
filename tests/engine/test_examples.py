"""Examples cut from one recording (engine/examples.py): each time the sound was made is one example."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from custom_components.sound_sentry.engine.examples import cut_examples, example_spans
from tests.audio import RATE_HZ, background_bed, clip_paths, read_clip

WINDOW_S = 1.935


def test_each_sound_made_in_a_recording_is_one_example(data_dir: Path) -> None:
    """Four gunshots in a room's noise, 4 s apart: four examples, each holding its shot, a window long."""
    shots = [read_clip(path)[: 2 * RATE_HZ] for path in clip_paths(data_dir, "gunshot")[:4]]
    recording = background_bed(data_dir, 24.0, gain=0.1).copy()
    onsets = [2 + 5 * i for i in range(4)]
    for onset, shot in zip(onsets, shots, strict=True):
        start = onset * RATE_HZ
        recording[start : start + shot.size] += shot
    spans = example_spans(recording, RATE_HZ, WINDOW_S)
    assert len(spans) == 4
    for onset, shot, (start, end) in zip(onsets, shots, spans, strict=True):
        assert end - start >= round(WINDOW_S * RATE_HZ)
        loudest = onset * RATE_HZ + int(np.argmax(np.abs(shot)))
        assert start <= loudest < end
        assert end - start < 5 * RATE_HZ  # not merged with the next one
    examples = cut_examples(recording, RATE_HZ, min_length_s=WINDOW_S)
    assert [e.size for e in examples] == [end - start for start, end in spans]
    assert np.array_equal(examples[0], recording[spans[0][0] : spans[0][1]])


def test_a_quiet_room_or_silence_gives_no_examples(data_dir: Path) -> None:
    assert cut_examples(np.zeros(10 * RATE_HZ, np.float32), RATE_HZ, min_length_s=WINDOW_S) == []
    assert cut_examples(np.zeros(10, np.float32), RATE_HZ, min_length_s=WINDOW_S) == []
    # Below the level floor every window is left out live, so nothing there can teach.
    faint = background_bed(data_dir, 10.0, gain=0.0005)
    assert cut_examples(faint, RATE_HZ, min_length_s=WINDOW_S) == []


def test_a_sound_at_the_very_start_is_widened_within_the_recording() -> None:
    rng = np.random.default_rng(0)
    recording = (0.001 * rng.standard_normal(6 * RATE_HZ)).astype(np.float32)
    recording[: RATE_HZ // 5] += 0.5 * np.sin(np.arange(RATE_HZ // 5) * 0.3).astype(np.float32)
    (example,) = cut_examples(recording, RATE_HZ, min_length_s=WINDOW_S)
    assert example.size == round(WINDOW_S * RATE_HZ)
    assert np.array_equal(example, recording[: example.size])


def test_a_blip_too_short_to_lift_its_window_over_the_floor_is_no_example() -> None:
    """The end of a sound cut off by the recording's start: loud for 0.15 s, its window below -60 dBFS."""
    recording = np.zeros(6 * RATE_HZ, np.float32)
    recording[: round(0.15 * RATE_HZ)] = 0.002  # -54 dBFS for 0.15 s: about -65 dBFS over a window
    assert cut_examples(recording, RATE_HZ, min_length_s=WINDOW_S) == []
