"""A freshly exported model's sidecar: the engine's contract with the placeholder detection and a licence."""

from __future__ import annotations

from pathlib import Path
import shutil

from custom_components.sound_sentry.engine.detector import DEFAULT_HOLD_S
from custom_components.sound_sentry.engine.fbank import FbankSettings
from custom_components.sound_sentry.engine.model_info import ModelInfo
from training.labels import EVENT_LABELS, LABELS
from training.ship import NON_COMMERCIAL, write_info

RANDOM_MODEL = Path(__file__).resolve().parents[1] / "fixtures" / "resnetse_random.onnx"


def test_an_exported_sidecar_states_its_licence_and_the_engine_fallback_hold(tmp_path: Path) -> None:
    path = tmp_path / "exported.onnx"
    shutil.copy(RANDOM_MODEL, path)
    write_info(
        path,
        name="exported",
        version="0.0.1",
        architecture="resnetse",
        front_end=FbankSettings(),
        window_samples=15_480,
    )
    info = ModelInfo.load(path)
    assert info.licence == NON_COMMERCIAL  # the training audio's terms travel with the weights
    assert "CC BY-NC 3.0" in info.licence
    assert info.hold_s == DEFAULT_HOLD_S  # the hold an untuned model gets is the engine's own fallback
    assert info.labels == LABELS
    assert info.events == EVENT_LABELS
    info.verify_sha256()
