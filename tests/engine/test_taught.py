"""Taught sounds (engine/taught.py): the head, its thresholds from the bank's tail, what it refuses, and
the network it reads (the pretrained mn04 embedding, shipped beside the accurate model)."""

from __future__ import annotations

from dataclasses import replace
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine import taught
from custom_components.sound_sentry.engine.backends import NumpyBackend, OnnxRuntimeBackend
from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.model import TaughtNetwork, load_model, model_path
from custom_components.sound_sentry.engine.model_info import ModelLoadError, file_sha256
from custom_components.sound_sentry.engine.taught import (
    BackgroundBank,
    ExampleWindows,
    TaughtSound,
    TeachError,
    check_samples,
    example_windows,
    learn,
)
from tests.audio import manifest, read_clip, write_wav

DIM = 32
FLOAT_ATOL = 1e-4
needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="compares with onnxruntime, not installed"
)


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
    assert loaded.id == bank.id  # the id is of the float16 content, so it survives the round trip
    sound = TaughtSound(
        "bell", "m", "1.0.0", rng.standard_normal(DIM).astype(np.float32), -2.0, {"balanced": 0.9}, bank.id
    )
    again = TaughtSound.from_json(sound.to_json())
    windows = rng.standard_normal((5, DIM)).astype(np.float32)
    np.testing.assert_allclose(again.probabilities(windows), sound.probabilities(windows), atol=1e-5)
    assert (again.thresholds, again.bank) == (sound.thresholds, bank.id)
    # A record from before banks had ids reads as learnt on none: it is learnt again at setup.
    old = {k: v for k, v in sound.to_json().items() if k != "bank"}
    assert TaughtSound.from_json(old).bank == ""


def test_a_banks_id_follows_its_content_and_a_learnt_sound_records_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    bank = _bank(rng, 200)
    changed = np.array(bank.embeddings)
    changed[0] = -changed[0]
    ids = {
        bank.id,
        replace(bank, embeddings=changed).id,
        replace(bank, network="other").id,
        replace(bank, version="1.0.1").id,
    }
    assert len(ids) == 4
    assert replace(bank).id == bank.id
    centre = np.zeros(DIM)
    centre[0] = 4.0
    sound = learn("chime", [_example(_cluster(rng, centre, 3, 0.5)) for _ in range(5)], bank)
    assert sound.bank == bank.id
    # A bank file whose content is not its stored id's is refused as unreadable.
    path = tmp_path / "bank.npz"
    bank.save(path)
    with np.load(path) as data:
        fields = dict(data)
    fields["embeddings"] = changed.astype(np.float16)
    np.savez_compressed(path, **fields)
    with pytest.raises(ValueError, match="corrupt"):
        BackgroundBank.load(path)


def test_examples_are_windowed_as_a_live_source_sees_them() -> None:
    model = load_model(model_path("accurate"), "numpy")
    rate = model.info.sample_rate_hz
    t = np.arange(int(0.5 * rate)) / rate
    short = (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    one = example_windows(model, short)  # shorter than a window: centred in one
    assert one.embeddings.shape == (1, 384)  # the taught network's embedding
    assert one.dbfs[0] == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)) + 10 * np.log10(0.25), abs=0.5)
    longer = example_windows(model, np.tile(short, 10))  # 5 s: windows at 0, 1, 2, 3 s
    assert len(longer.dbfs) == int((5.0 - model.info.window_samples / rate) / model.info.hop_s) + 1


def test_the_accurate_model_ships_its_bank_and_the_compact_model_has_none() -> None:
    accurate = load_model(model_path("accurate"), "numpy").info
    bank = taught.load_bank(accurate)
    assert (bank.model, bank.version, bank.hop_s) == (accurate.name, accurate.version, accurate.hop_s)
    assert accurate.taught is not None
    assert bank.network == accurate.taught.sha256 == file_sha256(accurate.taught.path)
    assert taught.bank_id(accurate) == bank.id
    assert 1000 <= len(bank.embeddings) <= 10_000
    assert bank.embeddings.shape[1] == 384
    assert taught.bank_path(accurate.path).stat().st_size < 10e6  # float16: a few MB
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
    # The same release, but embeddings of another network (the fine-tuned one, say): refused too.
    BackgroundBank(
        embeddings=np.zeros((2, DIM), np.float32),
        model=info.name,
        version=info.version,
        hop_s=1.0,
        network="0" * 64,
    ).save(taught.bank_path(onnx))
    with pytest.raises(TeachError) as caught:
        taught.load_bank(replace(info, path=onnx))
    assert caught.value.reason == "bank_mismatch"
    assert taught.bank_id(replace(info, path=tmp_path / "none.onnx")) is None


def _real_windows(data_dir: Path, count: int = 12) -> np.ndarray:
    """The accurate model's input windows of real test clips of every label."""
    info = load_model(model_path("accurate"), "numpy").info
    front_end = FrontEnd(info.front_end)
    rows = [r for r in manifest(data_dir) if r["split"] == "test"]
    windows = []
    for row in rows[:: max(1, len(rows) // count)][:count]:
        samples = read_clip(data_dir / row["path"])
        samples = np.pad(samples, (0, max(0, info.window_samples - samples.size)))
        windows.append(front_end.features(samples[: info.window_samples]))
    return np.stack(windows)


@needs_onnxruntime
def test_the_taught_network_gives_the_same_embedding_on_both_runtimes(data_dir: Path) -> None:
    info = load_model(model_path("accurate"), "numpy").info
    assert info.taught is not None
    windows = _real_windows(data_dir)
    ours = NumpyBackend(info.taught.path)
    theirs = OnnxRuntimeBackend(info.taught.path)
    assert ours.embedding_size == theirs.embedding_size == 384
    mine, reference = (taught.taught_embeddings(b, windows) for b in (ours, theirs))
    # The windows move the embedding by much more than the tolerance, or the comparison is empty.
    assert float(np.ptp(reference, axis=0).max()) > 100 * FLOAT_ATOL
    worst = float(np.abs(mine - reference).max())
    assert worst <= FLOAT_ATOL, f"max |numpy - onnxruntime| = {worst:.2e}"


def test_taught_sounds_read_the_pretrained_network_loaded_only_when_needed(data_dir: Path) -> None:
    model = load_model(model_path("accurate"), "numpy")
    assert model.taught is not None
    assert not model.taught.loaded  # a source without taught sounds never loads it
    windows = _real_windows(data_dir, 4)
    network = model.taught_backend()
    assert model.taught.loaded
    assert model.taught_backend() is network  # loaded once, shared
    assert network.name == model.backend.name == "numpy"  # the model's own runtime
    pretrained = taught.taught_embeddings(network, windows)
    fine_tuned = model.backend.embed(windows)[1]
    assert pretrained.shape == fine_tuned.shape == (4, 384)
    assert float(np.abs(pretrained - fine_tuned).max()) > 0.1  # not the fine-tuned embedding
    compact = load_model(model_path("compact"), "numpy")
    assert compact.taught is None
    with pytest.raises(ModelLoadError, match="no network for taught sounds"):
        compact.taught_backend()


def test_a_taught_network_that_is_not_its_sidecars_is_refused(tmp_path: Path) -> None:
    model = load_model(model_path("accurate"), "numpy")
    assert model.info.taught is not None
    copy = tmp_path / model.info.taught.path.name
    copy.write_bytes(model.info.taught.path.read_bytes()[:-1] + b"\0")
    broken = replace(model.info.taught, path=copy)
    with pytest.raises(ModelLoadError, match="does not match its sidecar"):
        TaughtNetwork(broken, "numpy").get()


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
