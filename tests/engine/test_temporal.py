"""The temporal stage: both runtimes agree, its state carries across chunks and resets, bad files are refused.

Every shipped model decides through its temporal stage (a GRU over the window embeddings, a second ONNX
graph named in the sidecar); these tests run the shipped stages on real audio.
"""

from __future__ import annotations

from dataclasses import replace
import importlib.util
import json
from pathlib import Path
import shutil

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine import temporal as stage
from custom_components.sound_sentry.engine.backends import NumpyBackend
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, load_model, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo, ModelLoadError
from custom_components.sound_sentry.engine.pipeline import Pipeline
from tests.audio import background_bed, clip_paths, event_scene, read_clip

needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="compares with onnxruntime, not installed"
)
ATOL = 1e-4


@pytest.fixture(scope="module")
def scene(data_dir: Path) -> npt.NDArray[np.float32]:
    """30 s of a quiet room with a cry, a glass break and a gunshot from the test split."""
    bed = background_bed(data_dir, 30.0)
    out = bed.copy()
    for offset, label in zip((3.0, 13.0, 22.0), ("babycry", "glassbreak", "gunshot"), strict=True):
        clip = read_clip(clip_paths(data_dir, label)[0])[: 6 * 8000]
        start = int(offset * 8000)
        out[start : start + clip.size] += clip
    return np.clip(out, -1, 1)


def _probabilities(pipeline: Pipeline, chunks: list[npt.NDArray[np.float32]]) -> npt.NDArray[np.float64]:
    labels = pipeline.info.labels
    rows = []
    for chunk in chunks:
        rows += [[w.probabilities[label] for label in labels] for w in pipeline.process(chunk).windows]
    return np.array(rows)


@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_every_shipped_model_has_a_temporal_stage(name: str) -> None:
    model = load_model(model_path(name), "numpy")
    assert model.info.temporal is not None
    assert model.temporal is not None
    assert model.temporal.input_size == model.backend.embedding_size + len(model.info.labels)
    assert model.info.hop_s == pytest.approx(1.0)


@needs_onnxruntime
@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_runtimes_agree_on_real_audio(name: str, scene: npt.NDArray[np.float32]) -> None:
    """The whole path, network and stage, on NumPy and on onnxruntime: the same probabilities."""
    path = model_path(name)
    numpy_probs = _probabilities(Pipeline.for_model(load_model(path, "numpy")), [scene])
    ort_probs = _probabilities(Pipeline.for_model(load_model(path, "onnxruntime")), [scene])
    assert numpy_probs.shape == ort_probs.shape
    assert len(numpy_probs) > 20
    np.testing.assert_allclose(numpy_probs, ort_probs, atol=ATOL)


@needs_onnxruntime
@pytest.mark.parametrize("name", list(SHIPPED_MODELS))
def test_stage_runtimes_agree_on_extreme_inputs(name: str) -> None:
    info = ModelInfo.load(model_path(name))
    assert info.temporal is not None
    import onnxruntime

    numpy_stage = stage.NumpyTemporal(info.temporal.path)
    ort_stage = stage.OnnxTemporal(info.temporal.path, onnxruntime)
    rng = np.random.default_rng(7)
    inputs = (rng.standard_normal((40, numpy_stage.input_size)) * 20).astype(np.float32)
    state = (rng.uniform(-1, 1, (1, numpy_stage.hidden_size))).astype(np.float32)
    for a, b in zip(numpy_stage.run(inputs, state), ort_stage.run(inputs, state), strict=True):
        np.testing.assert_allclose(a, b, atol=ATOL)


def test_state_carries_across_chunks_and_resets(scene: npt.NDArray[np.float32]) -> None:
    """Any chunking gives the windows of one pass; `reset()` starts the stage from zero again."""
    pipeline = Pipeline.for_model(load_model(model_path("accurate"), "numpy"))
    whole = _probabilities(pipeline, [scene])
    pipeline.reset()
    rng = np.random.default_rng(3)
    cuts = np.sort(rng.choice(scene.size, 25, replace=False))
    chunked = _probabilities(pipeline, np.split(scene, cuts))
    np.testing.assert_allclose(chunked, whole, atol=1e-5)
    pipeline.reset()
    again = _probabilities(pipeline, [scene[: scene.size // 2]])
    np.testing.assert_allclose(again, whole[: len(again)], atol=1e-5)


def test_context_changes_the_decision(scene: npt.NDArray[np.float32]) -> None:
    """The stage is not a per-window function: the same window scores differently after other audio."""
    model = load_model(model_path("accurate"), "numpy")
    fresh = _probabilities(Pipeline.for_model(model), [scene[-10 * 8000 :]])
    after = _probabilities(Pipeline.for_model(model), [scene])[-len(fresh) :]
    assert np.abs(fresh - after).max() > 1e-3


def test_quiet_windows_skip_the_network(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below the level floor the network does not run; the stage still steps (silence as its input)."""
    model = load_model(model_path("accurate"), "numpy")
    calls = []
    embed = model.backend.embed

    def counting(
        features: npt.NDArray[np.float32],
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        calls.append(len(features))
        return embed(features)

    monkeypatch.setattr(model.backend, "embed", counting)
    pipeline = Pipeline.for_model(model)
    out = pipeline.process(np.zeros(20 * 8000, np.float32))
    assert len(out.windows) == 18  # 20 s: windows of 2.02 s, one a second
    assert not any(w.classified for w in out.windows)
    assert calls == [1]  # the network's view of silence, once
    cry = event_scene(
        background_bed(data_dir, 10.0), read_clip(clip_paths(data_dir, "babycry")[0]), lead_s=2, tail_s=2
    )
    assert any(w.classified for w in pipeline.process(cry).windows)
    assert sum(calls) > 1


def test_a_model_without_its_stage_is_refused(tmp_path: Path) -> None:
    source = model_path("accurate")
    info = ModelInfo.load(source)
    assert info.temporal is not None
    shutil.copy(source, tmp_path / source.name)
    shutil.copy(source.with_suffix(".json"), tmp_path / source.with_suffix(".json").name)
    with pytest.raises(ModelLoadError, match="temporal"):
        load_model(tmp_path / source.name, "numpy")
    shutil.copy(info.temporal.path, tmp_path / info.temporal.path.name)
    load_model(tmp_path / source.name, "numpy")
    (tmp_path / info.temporal.path.name).write_bytes(b"\x00" * 100)
    with pytest.raises(ModelLoadError, match="does not match its sidecar"):
        load_model(tmp_path / source.name, "numpy")


def test_a_stage_for_another_network_is_refused(tmp_path: Path) -> None:
    """The compact model's stage next to the accurate network: a clear error, not a crash."""
    accurate, compact = ModelInfo.load(model_path("accurate")), ModelInfo.load(model_path("compact"))
    assert accurate.temporal is not None
    assert compact.temporal is not None
    shutil.copy(accurate.path, tmp_path / accurate.path.name)
    shutil.copy(compact.temporal.path, tmp_path / "other.temporal.onnx")
    raw = json.loads(accurate.path.with_suffix(".json").read_text())
    raw["temporal"]["file"] = "other.temporal.onnx"
    raw["temporal"]["sha256"] = compact.temporal.sha256
    (tmp_path / accurate.path.with_suffix(".json").name).write_text(json.dumps(raw))
    with pytest.raises(ModelLoadError, match="different versions"):
        load_model(tmp_path / accurate.path.name, "numpy")


def test_a_graph_that_is_not_the_stage_is_refused() -> None:
    """The network's own graph is no temporal stage: the NumPy runtime says so."""
    with pytest.raises(ModelLoadError, match="temporal stage"):
        stage.NumpyTemporal(model_path("compact"))


def test_pipeline_needs_the_stage_of_a_model_that_has_one() -> None:
    model = load_model(model_path("compact"), "numpy")
    with pytest.raises(ValueError, match="for_model"):
        Pipeline(model.backend, model.info)
    bare = replace(model.info, temporal=None)
    with pytest.raises(ValueError, match="has no temporal stage"):
        Pipeline(model.backend, bare, temporal=model.temporal)


def test_old_model_files_have_no_embedding(tmp_path: Path) -> None:
    """A model file without the embedding output runs per window, and says so when asked to embed."""
    fixture = Path(__file__).resolve().parents[1] / "fixtures" / "resnetse_random.onnx"
    backend = NumpyBackend(fixture)
    assert backend.embedding_size == 0
    with pytest.raises(ModelLoadError, match="embedding"):
        backend.embed(np.zeros((1, 192, 24), np.float32))
