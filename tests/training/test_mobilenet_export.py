"""The accurate model's export: the ONNX graph computes what the torch network computes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from training.mobilenet import NUM_BANDS, NUM_FRAMES, export_onnx, random_head  # noqa: E402


def test_onnx_export_equals_torch(tmp_path: Path) -> None:
    net = random_head(seed=3)
    path = tmp_path / "mobilenet.onnx"
    export_onnx(net, path)
    features = np.random.default_rng(0).normal(-1.0, 1.0, (3, NUM_FRAMES, NUM_BANDS)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(net.head(net.embed(torch.from_numpy(features))), dim=1).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (got,) = session.run(["probabilities"], {"features": features})
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert expected.std() > 0.01  # the random head spreads its outputs: the comparison means something
