"""The identities feature-domain training rests on, checked on real clips (NumPy + PyAV, no torch).

- A window that starts on a frame boundary is a slice of the clip's frames (so frames are cached once).
- Mixing two sounds is logaddexp of their log mel power (so mixing needs no waveform and no FBANK).
- The codec variants are the same audio, time-aligned, through a camera codec.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise
from training.audio import WINDOW_SAMPLES, load_audio, read_manifest
from training.frames import ClipFrames, codec_round_trip


def _clips(label: str, count: int, min_samples: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    paths = [c.path for c in read_manifest() if c.label == label and c.duration_s * 8000 >= min_samples]
    return [load_audio(paths[i]) for i in rng.choice(len(paths), size=count, replace=False)]


def test_a_window_on_a_frame_boundary_is_a_slice_of_the_clip_frames(data_dir: Path) -> None:
    extractor = FbankExtractor()
    samples = _clips("babycry", 1, 3 * WINDOW_SAMPLES)[0]
    frames = extractor.compute(samples)
    for start_frame in (0, 1, 37, 100):
        window = samples[start_frame * 80 : start_frame * 80 + WINDOW_SAMPLES]
        np.testing.assert_allclose(
            frames[start_frame : start_frame + 192], extractor.compute(window), atol=1e-5
        )


def test_mixing_is_logaddexp_of_log_mel_power(data_dir: Path) -> None:
    extractor = FbankExtractor()
    rng = np.random.default_rng(1)
    events = _clips("glassbreak", 10, 4000) + _clips("gunshot", 10, 4000)
    backgrounds = _clips("background", 20, WINDOW_SAMPLES)
    errors, louder_only = [], []
    for event, background in zip(events, backgrounds, strict=True):
        size = min(event.size, WINDOW_SAMPLES)
        a, b = event[:size], background[:size] * np.float32(rng.uniform(0.1, 3.0))
        mixed = normalise(extractor.compute(a + b))
        fa, fb = extractor.compute(a), extractor.compute(b)
        errors.append(np.mean(np.abs(mixed - normalise(np.logaddexp(fa, fb)))))
        louder_only.append(np.mean(np.abs(mixed - normalise(fa if np.sum(a**2) > np.sum(b**2) else fb))))
    # Mean |error| of the normalised features, in nats; the features' own spread is about 1.7.
    assert np.median(errors) < 0.2
    assert np.median(errors) < 0.5 * np.median(louder_only)  # the mix is heard: the test can fail


@pytest.mark.parametrize(
    ("variant", "max_error_db"), [("pcmu", -30.0), ("pcma", -30.0), ("aac", -12.0), ("opus", -10.0)]
)
def test_codec_variants_are_the_same_audio_time_aligned(
    data_dir: Path, variant: str, max_error_db: float
) -> None:
    samples = _clips("babycry", 1, 3 * WINDOW_SAMPLES)[0]
    out = codec_round_trip(samples, variant)
    assert out.shape == samples.shape
    error_db = 10 * np.log10(np.mean((out - samples) ** 2) / np.mean(samples**2))
    assert error_db < max_error_db
    shifted = 10 * np.log10(np.mean((out[80:] - samples[:-80]) ** 2) / np.mean(samples**2))
    assert shifted > error_db + 3  # 10 ms off is clearly worse: the alignment is real


def test_clip_frames_subset_and_join() -> None:
    frames = ClipFrames(np.arange(20, dtype=np.float16).reshape(10, 2), np.array([0, 3, 7, 10]))
    subset = frames.subset([2, 0])
    assert subset.of(0).tolist() == frames.of(2).tolist()
    assert subset.of(1).tolist() == frames.of(0).tolist()
    joined = ClipFrames.join([frames, subset])
    assert joined.of(4).tolist() == frames.of(0).tolist()
    assert joined.offsets.tolist() == [0, 3, 7, 10, 13, 16]
