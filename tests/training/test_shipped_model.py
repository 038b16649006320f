"""The shipped models: one copy each, a sound ONNX graph, and dev-test metrics as on their cards.

Torch-free: runs in the Home Assistant test environments with onnxruntime, the engine's pipeline and
detector, and the real dev `test` split.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest

from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.onnx_proto import decode_model

REPO = Path(__file__).resolve().parents[2]
SHIPPED = [model_path(name) for name in SHIPPED_MODELS]
FIXTURES = [REPO / "tests" / "fixtures" / "resnetse_random.onnx"]
LABELS = ["background", "babycry", "glassbreak", "gunshot"]


def sidecar(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text())


def test_each_model_file_ships_once() -> None:
    """The models live in the integration only: no second copy anywhere in the repository."""
    for path in SHIPPED:
        copies = [p for p in REPO.rglob(path.name) if ".dev" not in p.parts and "runs" not in p.parts]
        assert copies == [path], copies
        assert sidecar(path)["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("path", [*SHIPPED, *FIXTURES], ids=lambda p: p.name)
def test_graph_honours_the_model_contract(path: Path) -> None:
    model = decode_model(path.read_bytes())
    assert model.opsets[""] >= 17
    assert "BatchNormalization" not in {node.op_type for node in model.graph.nodes}
    info = ModelInfo.load(path)
    frames = FrontEnd(info.front_end).num_frames(info.window_samples)
    bands = FrontEnd(info.front_end).num_bands
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,), (out, *more) = session.get_inputs(), session.get_outputs()
    assert inp.name == "features"
    assert inp.type == "tensor(float)"
    assert [d if isinstance(d, int) else None for d in inp.shape[1:]] in ([frames, bands], [None, bands])
    assert (out.name, out.type, out.shape[1:]) == ("probabilities", "tensor(float)", [4])
    outputs = session.run(
        None, {"features": np.random.default_rng(0).normal(size=(3, frames, bands)).astype(np.float32)}
    )
    assert outputs[0].shape == (3, 4)
    np.testing.assert_allclose(outputs[0].sum(axis=1), 1.0, atol=1e-4)
    if info.temporal is None:
        assert more == []
        return
    # A model with a temporal stage also gives each window's embedding, which its stage reads.
    (embedding,) = more
    assert (embedding.name, embedding.type) == ("embedding", "tensor(float)")
    stage = ort.InferenceSession(str(info.temporal.path), providers=["CPUExecutionProvider"])
    inputs = {i.name: i.shape for i in stage.get_inputs()}
    assert inputs == {"inputs": ["windows", outputs[1].shape[1] + 4], "state": [1, info.temporal.hidden_size]}
    assert [o.name for o in stage.get_outputs()] == ["probabilities", "next_state"]


@pytest.mark.parametrize("path", [*SHIPPED, *FIXTURES], ids=lambda p: p.name)
def test_sidecar_loads_in_the_engine(path: Path) -> None:
    info = ModelInfo.load(path)
    info.verify_sha256()
    assert list(info.labels) == LABELS
    assert info.window_samples == {"resnetse": 15_480, "mobilenet": 16_176}[info.architecture]
    assert set(info.thresholds) == set(LABELS[1:])


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_dev_test_metrics_are_not_below_the_card(path: Path, data_dir: Path) -> None:
    """Re-measure a shipped model on the dev test split's streams, both constructions, at its defaults."""
    from training import evaluate, streams

    info = ModelInfo.load(path)
    recorded = info.metrics
    detection = evaluate.detection_of(info)
    measured = streams.measure(info, detection, best=False)
    for construction in streams.CONSTRUCTIONS:
        now, card = measured["streams"][construction], recorded["streams"][construction]
        assert now["background_hours"] == pytest.approx(card["background_hours"])
        for label in LABELS[1:]:
            # One event or one false alarm of slack: another onnxruntime build may round a window across
            # a threshold.
            one_event, one_alarm = 1 / now["events"][label], 1 / now["background_hours"]
            assert now["recall"][label] >= card["recall"][label] - one_event - 1e-9, (construction, label)
            assert (
                now["false_alarms_per_hour"][label] <= card["false_alarms_per_hour"][label] + one_alarm + 1e-9
            )
    assert measured["clips"]["balanced_accuracy"] >= recorded["clips"]["balanced_accuracy"] - 0.01
