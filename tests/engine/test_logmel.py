"""The native 8 kHz log mel front end: streaming equals one-shot, and its frames are where they should be."""

from __future__ import annotations

import numpy as np

from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.logmel import LogMelExtractor, LogMelSettings


def test_streaming_in_any_chunks_equals_one_shot() -> None:
    samples = np.random.default_rng(0).standard_normal(8000 * 3).astype(np.float32) * 0.1
    extractor = LogMelExtractor()
    whole = extractor.compute(samples)
    for chunk in (1, 80, 160, 333, 4000):
        extractor.reset()
        pieces = [extractor.process_streaming(samples[i : i + chunk]) for i in range(0, samples.size, chunk)]
        np.testing.assert_allclose(np.concatenate(pieces), whole, rtol=0, atol=1e-5)
    assert whole.shape == (extractor.num_frames(samples.size), 79)


def test_a_tone_lights_its_band_and_silence_sits_at_the_floor() -> None:
    settings = LogMelSettings()
    extractor = LogMelExtractor(settings)
    t = np.arange(16000) / 8000
    tone = extractor.compute((0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    silence = extractor.compute(np.zeros(16000, np.float32))
    floor = (np.log(settings.log_offset) + settings.shift) / settings.scale
    np.testing.assert_allclose(silence, floor, atol=1e-6)
    loudest = int(np.argmax(tone.mean(axis=0)))
    # EfficientAT's 128 Kaldi mel bands span 0-15 kHz: band b is centred at (b + 1) / 129 of mel(15 kHz).
    mel = 1127 * np.log1p(np.array([1000.0, 15000.0]) / 700)
    assert loudest == round(mel[0] / mel[1] * 129) - 1, loudest
    assert tone[:, loudest].mean() > floor + 2


def test_the_front_end_hands_log_mel_windows_to_the_model_unnormalised() -> None:
    front_end = FrontEnd(LogMelSettings())
    samples = np.random.default_rng(1).standard_normal(16176).astype(np.float32) * 0.05
    frames = front_end.compute(samples)
    assert frames.shape == (200, 79)
    np.testing.assert_array_equal(front_end.features(samples), frames)
