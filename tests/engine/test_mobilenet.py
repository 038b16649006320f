"""The NumPy forward pass of the accurate model's MobileNet: same probabilities as onnxruntime, refuses
other graphs. The fixture is mn04's architecture at a tenth of the width with random weights, written by
`TRAIN_MODULE=training.mobilenet_fixture scripts/train`; its frame count is symbolic.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import importlib.util
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import ModelLoadError, NumpyBackend, OnnxRuntimeBackend
from custom_components.sound_sentry.engine.graph_walk import UnsupportedModelError
from custom_components.sound_sentry.engine.mobilenet import MobileNet
from custom_components.sound_sentry.engine.onnx_proto import decode_model

needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="compares with onnxruntime, not installed"
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RANDOM_MOBILENET = FIXTURES / "mobilenet_random.onnx"
RANDOM_RESNETSE = FIXTURES / "resnetse_random.onnx"
BANDS = 79
FLOAT_ATOL = 1e-4


def _windows(batch: int, frames: int, seed: int = 0) -> npt.NDArray[np.float32]:
    """Random log mel windows, spread like EfficientAT's normalised log mel."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, frames, BANDS)) * 2.0 - 1.0).astype(np.float32)


@needs_onnxruntime
@pytest.mark.parametrize(("batch", "frames"), [(1, 200), (5, 200), (3, 37), (2, 1), (1, 301)])
def test_parity_with_onnxruntime(batch: int, frames: int) -> None:
    """Every batch size and frame count: the frame count of the input, not of the graph, sets the shapes."""
    windows = _windows(batch, frames, seed=frames)
    ours = NumpyBackend(RANDOM_MOBILENET).predict(windows)
    theirs = OnnxRuntimeBackend(RANDOM_MOBILENET).predict(windows)
    assert ours.shape == theirs.shape == (batch, 4)
    assert ours.dtype == np.float32
    np.testing.assert_allclose(ours.sum(axis=1), 1.0, atol=1e-5)
    worst = float(np.abs(ours - theirs).max())
    assert worst <= FLOAT_ATOL, f"max |numpy - onnxruntime| = {worst:.2e}"


@needs_onnxruntime
def test_windows_move_the_output() -> None:
    """The parity is not empty: different windows give outputs much further apart than the tolerance."""
    windows = np.concatenate([_windows(4, 200), _windows(2, 200, seed=1) * 0.1, np.zeros((1, 200, BANDS))])
    probabilities = OnnxRuntimeBackend(RANDOM_MOBILENET).predict(windows.astype(np.float32))
    assert float(np.ptp(probabilities, axis=0).max()) > 10 * FLOAT_ATOL
    np.testing.assert_allclose(
        NumpyBackend(RANDOM_MOBILENET).predict(windows), probabilities, atol=FLOAT_ATOL
    )


def test_batch_equals_single_windows_and_shapes_can_change() -> None:
    runtime = NumpyBackend(RANDOM_MOBILENET)
    windows = _windows(4, 200)
    batch = runtime.predict(windows)
    singles = np.concatenate([runtime.predict(windows[i : i + 1]) for i in range(4)])
    np.testing.assert_allclose(batch, singles, atol=1e-6, rtol=0)
    # A window of another length in between (a new plan), then the first length again: the same result.
    runtime.predict(_windows(1, 50))
    np.testing.assert_array_equal(runtime.predict(windows), batch)
    assert runtime.predict(np.zeros((0, 200, BANDS), np.float32)).shape == (0, 4)


def test_threads_share_one_backend() -> None:
    runtime = NumpyBackend(RANDOM_MOBILENET)
    windows = _windows(6, 200)
    expected = runtime.predict(windows)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: runtime.predict(windows[i % 3 :]), range(24)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 3 :])


def test_each_architecture_refuses_the_other() -> None:
    with pytest.raises(UnsupportedModelError, match="not a MobileNet graph"):
        MobileNet.from_graph(decode_model(RANDOM_RESNETSE.read_bytes()).graph)
    # The ResNetSE fixture still runs on the NumPy runtime, which tries each architecture.
    assert NumpyBackend(RANDOM_RESNETSE).predict(np.zeros((1, 192, 24), np.float32)).shape == (1, 4)


# One operator changed in the fixture's bytes: NodeProto.op_type is field 4 (tag 0x22), then the length.
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (b"\x22\x07Sigmoid", b"\x22\x07Softmax", r"\(Softmax\): expected Sigmoid"),
        (b"\x22\x04Relu", b"\x22\x04Tanh", r"\(Tanh\): expected Relu"),
        (b"\x22\x03Add", b"\x22\x03Sub", r"\(Sub\): expected Conv"),
    ],
)
def test_other_architectures_are_refused(tmp_path: Path, old: bytes, new: bytes, message: str) -> None:
    data = RANDOM_MOBILENET.read_bytes()
    assert old in data
    path = tmp_path / "changed.onnx"
    path.write_bytes(data.replace(old, new, 1))
    if importlib.util.find_spec("onnxruntime") is not None:
        OnnxRuntimeBackend(path)  # a valid ONNX model, just not this architecture
    with pytest.raises(ModelLoadError, match=message) as caught:
        NumpyBackend(path)
    text = str(caught.value)
    assert str(path) in text
    assert "not a MobileNet graph" in text
    assert "not a ResNetSE graph" in text
    assert "runs float32 ResNetSE and MobileNet models only" in text
