"""Joint fine-tuning (training/joint.py): what it trains is what the engine runs once exported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from custom_components.sound_sentry.engine import temporal as stage  # noqa: E402
from custom_components.sound_sentry.engine.backends import load_backend  # noqa: E402
from training import joint, temporal  # noqa: E402
from training.finetune import FROZEN  # noqa: E402
from training.mobilenet import NUM_BANDS, NUM_FRAMES, export_onnx, random_head  # noqa: E402


def _sequence(rng: np.random.Generator, windows: int) -> tuple[np.ndarray, np.ndarray]:
    features = rng.normal(-1.0, 1.0, (windows, NUM_FRAMES, NUM_BANDS)).astype(np.float32)
    loud = rng.random(windows) > 0.3
    loud[0] = loud[-1] = True
    return features, loud


def test_joint_model_computes_what_the_exported_network_and_stage_compute(tmp_path: Path) -> None:
    """Torch on frozen-layer activations == the exported graphs run by the engine's runtimes, quiet windows included."""
    rng = np.random.default_rng(0)
    net = random_head(seed=4).eval()
    silence = joint.trunk_activations(net.features[:FROZEN], np.zeros((1, NUM_FRAMES, NUM_BANDS), np.float32))
    torch.manual_seed(0)
    model = joint.Joint(net, temporal.Stage(384 + 4, 16, 4), silence).eval()
    # two sequences of different length, time-major as batch_tensors lays them out
    sequences = []
    for windows in (7, 5):
        features, loud = _sequence(rng, windows)
        s = joint.TrunkSequence(
            inputs=np.zeros((0, 388), np.float32),
            ends=np.arange(windows, dtype=np.float64),
            labels=np.zeros(windows, np.int64),
            events=[],
        )
        s.loud, s.activations = loud, joint.trunk_activations(net.features[:FROZEN], features[loud])
        sequences.append((s, features))
    acts, loud, _labels, weight = joint.batch_tensors(
        [s for s, _ in sequences], [np.ones(len(s.labels), np.float32) for s, _ in sequences]
    )
    with torch.no_grad():
        logits, _window_logits = model(acts, loud)
    trained = torch.softmax(logits, dim=2).numpy()

    network = tmp_path / "net.onnx"
    export_onnx(net, network)
    temporal.with_embedding_output(network, network)
    stage_path = tmp_path / "net.temporal.onnx"
    temporal.export_stage(model.stage, stage_path, "test")
    for backend in ("onnxruntime", "numpy"):
        runtime = stage.load_temporal(stage_path, backend)  # type: ignore[arg-type]
        network_runtime = load_backend(network, backend)  # type: ignore[arg-type]
        quiet = stage.temporal_inputs(
            *network_runtime.embed(np.zeros((1, NUM_FRAMES, NUM_BANDS), np.float32))
        )
        for j, (s, features) in enumerate(sequences):
            inputs = np.tile(quiet, (len(s.labels), 1))
            inputs[s.loud] = stage.temporal_inputs(*network_runtime.embed(features[s.loud]))
            engine, _state = runtime.run(inputs, stage.initial_state(runtime))
            np.testing.assert_allclose(
                trained[: len(s.labels), j], engine, atol=1e-4
            )  # float16 activations too
    assert weight[len(sequences[1][0].labels) :, 1].sum() == 0  # padding weighs nothing
    assert trained[:, 0].std(axis=0).max() > 0.01  # outputs vary: the comparison means something


def test_shipped_graphs_read_back_into_torch_compute_what_they_compute(tmp_path: Path) -> None:
    """`soundnet_from_onnx` and `stage_from_onnx` invert the exports: the joint recipe can start from what ships."""
    net = random_head(seed=5).eval()
    path = tmp_path / "net.onnx"
    export_onnx(net, path)
    again = joint.soundnet_from_onnx(path)
    features = torch.from_numpy(
        np.random.default_rng(1).normal(-1.0, 1.0, (3, NUM_FRAMES, NUM_BANDS)).astype(np.float32)
    )
    with torch.no_grad():
        np.testing.assert_allclose(
            torch.softmax(again.head(again.embed(features)), 1).numpy(),
            torch.softmax(net.head(net.embed(features)), 1).numpy(),
            atol=1e-5,
        )
        np.testing.assert_allclose(again.embed(features).numpy(), net.embed(features).numpy(), atol=1e-4)
    torch.manual_seed(1)
    model = temporal.Stage(388, 8, 4)
    with torch.no_grad():
        model.mean.normal_()
        model.scale.uniform_(0.5, 2.0)
    stage_path = tmp_path / "stage.onnx"
    temporal.export_stage(model.eval(), stage_path, "test")
    read = joint.stage_from_onnx(stage_path)
    x = torch.randn(6, 1, 388)
    with torch.no_grad():
        np.testing.assert_allclose(read(x)[0].numpy(), model(x)[0].numpy(), atol=1e-4)


def test_a_sequence_drawn_from_a_later_window_keeps_its_windows_aligned() -> None:
    """A crop (`starts`) drops the first windows of mask, labels, weights and activations alike."""
    rng = np.random.default_rng(2)
    loud = np.array([True, False, True, True, False, True])
    s = joint.TrunkSequence(
        inputs=np.zeros((0, 4), np.float32), ends=np.arange(6.0), labels=np.arange(6) % 4, events=[]
    )
    s.loud, s.activations = loud, rng.normal(size=(4, 2, 1, 1)).astype(np.float16)
    acts, mask, labels, weight = joint.batch_tensors([s], [np.arange(6, dtype=np.float32)], [2])
    assert mask[:, 0].tolist() == loud[2:].tolist()
    assert labels[:, 0].tolist() == (np.arange(6) % 4)[2:].tolist()
    assert weight[:, 0].tolist() == [2.0, 3.0, 4.0, 5.0]
    np.testing.assert_array_equal(
        acts.numpy(), s.activations[1:].astype(np.float32)
    )  # rows of windows 2, 3, 5
