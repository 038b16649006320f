"""Taught sounds (engine/taught.py): the head, its thresholds from the bank's tail, and what it refuses."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine import taught
from custom_components.sound_sentry.engine.model import load_model, model_path
from custom_components.sound_sentry.engine.taught import (
    BackgroundBank,
    ExampleWindows,
    TaughtSound,
    TeachError,
    check_samples,
    example_windows,
    learn,
)
from tests.audio import write_wav

DIM = 32


def _cluster(rng: np.random.Generator, centre: np.ndarray, count: int, spread: float) -> np.ndarray:
    return (centre + spread * rng.standard_normal((count, DIM))).astype(np.float32)


def _bank(rng: np.random.Generator, count: int = 4000) -> BackgroundBank:
    return BackgroundBank(
        embeddings=taught.normalise(rng.standard_normal((count, DIM)).astype(np.float32)),
        model="m",
        version="1.0.0",
        hop_s=1.0,
    )


def _example(windows: np.ndarray, dbfs: float = -20.0) -> ExampleWindows:
    return ExampleWindows(embeddings=windows, dbfs=np.full(len(windows), dbfs))


def test_a_distinct_sound_is_learnt_and_heard_while_background_stays_below_its_threshold() -> None:
    rng = np.random.default_rng(0)
    bank = _bank(rng)
    centre = np.zeros(DIM)
    centre[0] = 4.0  # far from the isotropic background's directions
    examples = [_example(_cluster(rng, centre, 3, 0.5)) for _ in range(5)]
    sound = learn("chime", examples, bank)
    threshold = sound.thresholds["balanced"]
    fresh = _cluster(rng, centre, 50, 0.5)
    assert np.mean(sound.probabilities(fresh) >= threshold) > 0.9
    background = rng.standard_normal((20000, DIM)).astype(np.float32)
    assert np.mean(sound.probabilities(background) >= threshold) < 1e-3
    assert sound.thresholds["strict"] > threshold > sound.thresholds["eager"]


def test_sounds_the_bank_already_explains_are_refused() -> None:
    rng = np.random.default_rng(1)
    bank = _bank(rng)
    examples = [_example(rng.standard_normal((3, DIM)).astype(np.float32)) for _ in range(5)]
    with pytest.raises(TeachError) as caught:
        learn("hum", examples, bank)
    assert caught.value.reason == "like_background"


def test_too_few_and_silent_examples_are_refused_with_their_reason() -> None:
    rng = np.random.default_rng(2)
    bank = _bank(rng)
    loud = _example(_cluster(rng, np.ones(DIM), 3, 0.1))
    with pytest.raises(TeachError) as caught:
        learn("x", [loud, loud], bank)
    assert (caught.value.reason, caught.value.placeholders["minimum"]) == ("too_few_examples", "3")
    with pytest.raises(TeachError) as caught:
        learn("x", [loud, loud, _example(_cluster(rng, np.ones(DIM), 3, 0.1), dbfs=-90.0)], bank)
    assert (caught.value.reason, caught.value.placeholders["example"]) == ("silent_example", "3")


def test_clipped_audio_is_refused_and_full_but_clean_audio_is_not() -> None:
    tone = np.sin(np.linspace(0, 2000 * np.pi, 16000)).astype(np.float32)
    check_samples(0.9 * tone, "clean")
    with pytest.raises(TeachError) as caught:
        check_samples(np.clip(3 * tone, -1, 1), "loud.wav")
    assert (caught.value.reason, caught.value.placeholders["example"]) == ("clipped_example", "loud.wav")


def test_the_tail_is_extrapolated_to_the_rates_of_each_level() -> None:
    """On logits with an exactly exponential tail, the thresholds fall where the rates are."""
    rng = np.random.default_rng(3)
    logits = rng.exponential(1.0, 200_000)
    thresholds = taught.tail_thresholds(logits, hop_s=1.0)
    for level in taught.SENSITIVITY_LEVELS:
        rate = level.false_alarms_per_day / 86400
        z = np.log(thresholds[level.key] / (1 - thresholds[level.key]))
        assert z == pytest.approx(-np.log(rate), rel=0.05)


def test_a_taught_sound_and_a_bank_survive_their_stored_forms(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    bank = _bank(rng, 100)
    bank.save(tmp_path / "bank.npz")
    loaded = BackgroundBank.load(tmp_path / "bank.npz")
    assert (loaded.model, loaded.version, loaded.hop_s) == ("m", "1.0.0", 1.0)
    np.testing.assert_allclose(loaded.embeddings, bank.embeddings, atol=1e-3)  # float16 on disk
    sound = TaughtSound(
        "bell", "m", "1.0.0", rng.standard_normal(DIM).astype(np.float32), -2.0, {"balanced": 0.9}
    )
    again = TaughtSound.from_json(sound.to_json())
    windows = rng.standard_normal((5, DIM)).astype(np.float32)
    np.testing.assert_allclose(again.probabilities(windows), sound.probabilities(windows), atol=1e-5)
    assert again.thresholds == sound.thresholds


def test_examples_are_windowed_as_a_live_source_sees_them() -> None:
    model = load_model(model_path("accurate"), "numpy")
    rate = model.info.sample_rate_hz
    t = np.arange(int(0.5 * rate)) / rate
    short = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    one = example_windows(model, short)  # shorter than a window: centred in one
    assert one.embeddings.shape == (1, model.backend.embedding_size)
    assert one.dbfs[0] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)) + 10 * np.log10(0.25), abs=0.5)
    longer = example_windows(model, np.tile(short, 10))  # 5 s: windows at 0, 1, 2, 3 s
    assert len(longer.dbfs) == int((5.0 - model.info.window_samples / rate) / model.info.hop_s) + 1


def test_the_accurate_model_ships_its_bank_and_the_compact_model_has_none() -> None:
    accurate = load_model(model_path("accurate"), "numpy").info
    bank = taught.load_bank(accurate)
    assert (bank.model, bank.version, bank.hop_s) == (accurate.name, accurate.version, accurate.hop_s)
    assert 1000 <= len(bank.embeddings) <= 10_000
    np.testing.assert_allclose(np.linalg.norm(bank.embeddings, axis=1), 1.0, atol=1e-2)
    assert taught.teachable(accurate)
    compact = load_model(model_path("compact"), "numpy").info
    assert not taught.teachable(compact)
    with pytest.raises(TeachError) as caught:
        taught.load_bank(compact)
    assert caught.value.reason == "no_bank"


def test_a_bank_of_another_release_is_refused(tmp_path: Path) -> None:
    info = load_model(model_path("accurate"), "numpy").info
    onnx = tmp_path / "copy.onnx"
    BackgroundBank(
        embeddings=np.zeros((2, DIM), np.float32), model=info.name, version="0.0.1", hop_s=1.0
    ).save(taught.bank_path(onnx))
    with pytest.raises(TeachError) as caught:
        taught.load_bank(replace(info, path=onnx))
    assert (caught.value.reason, caught.value.placeholders["version"]) == ("bank_mismatch", info.version)


def test_an_example_file_is_decoded_to_8_khz_mono(tmp_path: Path) -> None:
    rate = 16000
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)).astype(np.float32)
    path = tmp_path / "tone.wav"
    write_wav(path, tone, rate)
    samples = taught.read_example(path)
    assert samples.dtype == np.float32
    assert abs(samples.size - 8000) < 200
    assert float(np.abs(samples).max()) == pytest.approx(0.5, abs=0.05)


def test_the_examples_bound_the_thresholds_between_the_banks_highest_score_and_its_tail() -> None:
    rng = np.random.default_rng(5)
    bank = _bank(rng)
    centre = np.zeros(DIM)
    centre[0] = 3.0  # near enough to the background that the extrapolated tail is out of reach
    examples = [_example(_cluster(rng, centre, 3, 0.5)) for _ in range(5)]
    sound = learn("buzz", examples, bank)
    tail_only = taught.fit_sound("buzz", [e.positives() for e in examples], bank)
    floor = float(sound.probabilities(bank.embeddings[1::2]).max())
    assert floor <= sound.thresholds["balanced"] < tail_only.thresholds["balanced"]
    for key, threshold in sound.thresholds.items():
        assert threshold < tail_only.thresholds[key]
    assert sound.thresholds["strict"] > sound.thresholds["balanced"] > sound.thresholds["eager"]
