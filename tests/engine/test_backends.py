"""The two model runtimes: same probabilities on real audio, clear errors for bad model files."""

from __future__ import annotations

import contextlib
import csv
import json
import logging
from pathlib import Path
import shutil
import struct
import subprocess
import sys
import textwrap

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import (
    ModelLoadError,
    NumpyBackend,
    OnnxRuntimeBackend,
    load_backend,
)
from custom_components.sound_sentry.engine.fbank import FbankExtractor, FbankSettings, normalise
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.onnx_numpy import NumpyGraph
from custom_components.sound_sentry.engine.onnx_proto import decode_model
from tests.audio import read_clip

ort = pytest.importorskip("onnxruntime")

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
RANDOM_FLOAT = FIXTURES / "resnetse_random.onnx"
RANDOM_INT8 = FIXTURES / "resnetse_random.int8.onnx"
# The trained models: where the integration loads them from, and the repository's models/ folder.
MODEL_DIRS = (REPO / "custom_components" / "sound_sentry" / "models", REPO / "models")
SHIPPED_NAMES = ("sound_sentry_resnetse.onnx", "sound_sentry_resnetse.int8.onnx")
LABELS = ("background", "babycry", "glassbreak", "gunshot")

FLOAT_ATOL = 1e-4
# An int8 QDQ graph rounds every activation to its int8 grid. A one-ulp float32 difference in a conv sum
# (BLAS and onnxruntime's MLAS add in different orders) can tip a value across a rounding boundary, one
# quantisation step, which then propagates. Measured on 514 real test windows with the trained model:
# float32 max 6e-7; int8 max 0.037 (p99 0.012, 13 windows over 1e-4; the same against onnxruntime's
# unoptimised reference kernels), top class always equal. Such flips are rare, so most windows must
# still agree to the float tolerance.
INT8_ATOL = 5e-2
INT8_MIN_EXACT_FRACTION = 0.9


# Helpers: real feature windows.


@pytest.fixture(scope="module")
def real_windows(data_dir: Path) -> npt.NDArray[np.float32]:
    """Mean-normalised FBANK windows [N, 192, 24] of real test clips, a few per class."""
    rows = list(csv.DictReader((data_dir / "manifest.csv").open()))
    extractor = FbankExtractor()
    window = 15_480
    windows = []
    for label in LABELS:
        matching = [row for row in rows if row["label"] == label and row["split"] == "test"]
        for row in matching[:: max(1, len(matching) // 3)][:3]:
            samples = read_clip(data_dir / row["path"])
            if samples.size < window:  # centre a short clip in silence
                missing = window - samples.size
                samples = np.pad(samples, (missing // 2, missing - missing // 2))
            starts = range(0, samples.size - window + 1, window)[:2]
            windows.extend(normalise(extractor.compute(samples[s : s + window])) for s in starts)
    stacked = np.stack(windows)
    assert stacked.shape[1:] == (192, 24)
    return stacked


# Parity of the two runtimes.


def _assert_parity(model: Path, windows: npt.NDArray[np.float32], *, int8: bool) -> None:
    numpy_probs = NumpyBackend(model).predict(windows)
    ort_probs = OnnxRuntimeBackend(model).predict(windows)
    assert numpy_probs.shape == ort_probs.shape == (len(windows), 4)
    assert numpy_probs.dtype == np.float32
    np.testing.assert_allclose(numpy_probs.sum(axis=1), 1.0, atol=1e-5)
    # The windows must move the output by much more than the tolerance, or the comparison is empty.
    assert float(np.ptp(ort_probs, axis=0).max()) > 10 * FLOAT_ATOL
    per_window = np.abs(numpy_probs - ort_probs).max(axis=1)
    atol = INT8_ATOL if int8 else FLOAT_ATOL
    assert per_window.max() <= atol, f"{model.name}: max |numpy - onnxruntime| = {per_window.max():.2e}"
    if int8:
        exact = float(np.mean(per_window <= FLOAT_ATOL))
        assert exact >= INT8_MIN_EXACT_FRACTION, f"{model.name}: only {exact:.0%} of windows within 1e-4"
        top_two = np.sort(ort_probs, axis=1)[:, -2:]
        clear = top_two[:, 1] - top_two[:, 0] > 2 * INT8_ATOL
        assert (numpy_probs.argmax(axis=1) == ort_probs.argmax(axis=1))[clear].all()


def test_float32_parity_on_real_windows(real_windows: npt.NDArray[np.float32]) -> None:
    _assert_parity(RANDOM_FLOAT, real_windows, int8=False)


def test_int8_runs_in_both_runtimes(real_windows: npt.NDArray[np.float32]) -> None:
    _assert_parity(RANDOM_INT8, real_windows, int8=True)


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_models_parity(name: str, real_windows: npt.NDArray[np.float32]) -> None:
    models = [folder / name for folder in MODEL_DIRS if (folder / name).is_file()]
    if not models:
        pytest.skip(f"{name} is not committed yet")
    for model in models:
        _assert_parity(model, real_windows, int8=".int8." in name)
        info = ModelInfo.load(model)
        info.verify_sha256()
        assert info.labels == LABELS


@pytest.mark.parametrize("model", [RANDOM_FLOAT, RANDOM_INT8], ids=["float32", "int8"])
@pytest.mark.parametrize("backend", [NumpyBackend, OnnxRuntimeBackend], ids=["numpy", "onnxruntime"])
def test_batch_equals_single_windows(
    model: Path, backend: type[NumpyBackend | OnnxRuntimeBackend], real_windows: npt.NDArray[np.float32]
) -> None:
    runtime = backend(model)
    batch = runtime.predict(real_windows[:8])
    singles = np.concatenate([runtime.predict(real_windows[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(batch, singles, atol=1e-6, rtol=0)


@pytest.mark.parametrize("backend", [NumpyBackend, OnnxRuntimeBackend], ids=["numpy", "onnxruntime"])
def test_empty_batch(backend: type[NumpyBackend | OnnxRuntimeBackend]) -> None:
    assert backend(RANDOM_FLOAT).predict(np.zeros((0, 192, 24), np.float32)).shape == (0, 4)


def test_predict_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="batch, frames, mel bins"):
        NumpyBackend(RANDOM_FLOAT).predict(np.zeros((192, 24), np.float32))


# Choosing a runtime.


def test_auto_prefers_onnxruntime_and_logs(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="custom_components.sound_sentry.engine.backends"):
        backend = load_backend(RANDOM_FLOAT)
    assert backend.name == "onnxruntime"
    assert "onnxruntime backend" in caplog.text


def test_auto_falls_back_to_numpy(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # makes `import onnxruntime` raise ImportError
    with caplog.at_level(logging.INFO, logger="custom_components.sound_sentry.engine.backends"):
        backend = load_backend(RANDOM_FLOAT, "auto")
    assert backend.name == "numpy"
    assert "onnxruntime is not installed" in caplog.text
    with pytest.raises(ModelLoadError, match="onnxruntime is not installed"):
        load_backend(RANDOM_FLOAT, "onnxruntime")


def test_numpy_path_without_onnxruntime_or_onnx(
    tmp_path: Path, real_windows: npt.NDArray[np.float32]
) -> None:
    """A fresh interpreter where neither onnxruntime nor onnx can be imported (as on HA OS)."""
    np.save(tmp_path / "windows.npy", real_windows)
    script = textwrap.dedent(
        """
        import sys
        sys.modules["onnxruntime"] = None
        sys.modules["onnx"] = None
        import numpy as np
        from custom_components.sound_sentry.engine.backends import load_backend

        backend = load_backend(sys.argv[1])
        assert backend.name == "numpy", backend.name
        np.save(sys.argv[3], backend.predict(np.load(sys.argv[2])))
        print("imported:", sorted(m for m in ("onnxruntime", "onnx") if sys.modules.get(m) is not None))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(RANDOM_FLOAT), tmp_path / "windows.npy", tmp_path / "probs.npy"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "imported: []" in result.stdout
    expected = OnnxRuntimeBackend(RANDOM_FLOAT).predict(real_windows)
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), expected, atol=FLOAT_ATOL, rtol=0)


def test_unknown_backend_name() -> None:
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend(RANDOM_FLOAT, "tflite")  # type: ignore[arg-type]


# Bad model files.


def _bad_files(tmp_path: Path) -> dict[str, Path]:
    data = RANDOM_FLOAT.read_bytes()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(3).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    text = tmp_path / "text.onnx"
    text.write_text("<html>404 Not Found</html>\n")
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    return {
        "missing": tmp_path / "missing.onnx",
        "truncated": truncated,
        "garbage": garbage,
        "text": text,
        "empty": empty,
    }


@pytest.mark.parametrize("kind", ["missing", "truncated", "garbage", "text", "empty"])
@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_bad_model_file_raises_model_load_error(tmp_path: Path, kind: str, backend: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ModelLoadError) as caught:
        load_backend(path, backend)  # type: ignore[arg-type]
    assert str(path) in str(caught.value)


def test_every_truncation_is_a_clean_error(tmp_path: Path) -> None:
    """Cutting the file anywhere gives ModelLoadError, never an IndexError or a hang."""
    data = RANDOM_INT8.read_bytes()
    path = tmp_path / "cut.onnx"
    for length in np.linspace(1, len(data) - 1, 40).astype(int):
        path.write_bytes(data[:length])
        with pytest.raises(ModelLoadError):
            NumpyBackend(path)


def test_bit_flips_never_crash(tmp_path: Path) -> None:
    """Corrupted bytes either still decode to a runnable model or raise ModelLoadError."""
    data = bytearray(RANDOM_FLOAT.read_bytes())
    rng = np.random.default_rng(7)
    path = tmp_path / "flipped.onnx"
    for _ in range(30):
        corrupt = data.copy()
        for index in rng.integers(0, len(corrupt), 8):
            corrupt[index] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(corrupt))
        with contextlib.suppress(ModelLoadError):
            NumpyBackend(path)


# Hand-built graphs: a minimal protobuf writer, so these tests need no `onnx` package either.


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _bytes(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _key(number, 2) + _varint(len(data)) + data


def _int(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


_ONNX_TYPES = {np.dtype(np.float32): 1, np.dtype(np.uint8): 2, np.dtype(np.int8): 3, np.dtype(np.int32): 6}
_ONNX_TYPES[np.dtype(np.int64)] = 7


def tensor(name: str, array: npt.ArrayLike, *, typed: bool = False) -> bytes:
    """TensorProto with raw_data, or with the typed float_data/int32_data/int64_data fields."""
    values = np.asarray(array)
    data_type = _ONNX_TYPES[values.dtype]
    out = _bytes(1, b"".join(_varint(d) for d in values.shape)) if values.ndim else b""
    out += _int(2, data_type) + _bytes(8, name)
    if not typed:
        return out + _bytes(9, values.astype(values.dtype.newbyteorder("<")).tobytes())
    flat = values.reshape(-1)
    if data_type == 1:
        return out + _bytes(4, flat.astype("<f4").tobytes())
    number = 7 if data_type == 7 else 5
    return out + _bytes(number, b"".join(_varint(int(v)) for v in flat))


def attr(name: str, value: object) -> bytes:
    """AttributeProto of an int, float, string, tensor or list of ints."""
    if isinstance(value, bool | int):
        return _bytes(1, name) + _int(3, int(value)) + _int(20, 2)
    if isinstance(value, float):
        return _bytes(1, name) + _key(2, 5) + struct.pack("<f", value) + _int(20, 1)
    if isinstance(value, str):
        return _bytes(1, name) + _bytes(4, value) + _int(20, 3)
    if isinstance(value, np.ndarray):
        return _bytes(1, name) + _bytes(5, tensor("", value)) + _int(20, 4)
    assert isinstance(value, list)
    return _bytes(1, name) + _bytes(8, b"".join(_varint(v) for v in value)) + _int(20, 7)


def node(op: str, inputs: list[str], outputs: list[str], domain: str = "", **attrs: object) -> bytes:
    out = b"".join(_bytes(1, name) for name in inputs) + b"".join(_bytes(2, name) for name in outputs)
    out += _bytes(4, op) + b"".join(_bytes(5, attr(key, value)) for key, value in attrs.items())
    return out + (_bytes(7, domain) if domain else b"")


def value_info(name: str, shape: list[int | str], elem_type: int = 1) -> bytes:
    dims = b"".join(
        _bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d)) for d in shape
    )  # TensorShapeProto.dim
    tensor_type = _int(1, elem_type) + _bytes(2, dims)
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))


def model_bytes(
    nodes: list[bytes],
    initializers: list[bytes],
    inputs: list[bytes],
    outputs: list[bytes],
    opset: int = 17,
) -> bytes:
    graph = b"".join(_bytes(1, n) for n in nodes) + _bytes(2, "test")
    graph += b"".join(_bytes(5, t) for t in initializers)
    graph += b"".join(_bytes(11, v) for v in inputs) + b"".join(_bytes(12, v) for v in outputs)
    return _int(1, 8) + _bytes(8, _int(2, opset)) + _bytes(7, graph)


def _run_both(
    data: bytes, feeds: dict[str, npt.NDArray[np.float32]]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    ours = NumpyGraph(decode_model(data)).run(feeds)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    # onnxruntime's reference kernels: with optimisations on, it would run Q/DQ pairs as integer kernels.
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    theirs = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"]).run(None, feeds)
    return ours, theirs


RNG = np.random.default_rng(11)


def _f32(*shape: int) -> npt.NDArray[np.float32]:
    return RNG.standard_normal(shape).astype(np.float32)


CASES: dict[str, tuple[list[bytes], list[bytes], list[int], list[int]]] = {
    "conv_group_dilation_stride": (
        [node("Conv", ["x", "w", "b"], ["y"], group=2, dilations=[2, 1], strides=[2, 3], pads=[2, 1, 1, 0])],
        [tensor("w", _f32(6, 2, 3, 2)), tensor("b", _f32(6), typed=True)],
        [2, 4, 11, 13],
        [2, 6, 5, 5],
    ),
    "conv_stride1_pad_asymmetric": (
        [node("Conv", ["x", "w"], ["y"], pads=[0, 2, 1, 1]), node("Relu", ["y"], ["z"])],
        [tensor("w", _f32(3, 2, 3, 3), typed=True)],
        [3, 2, 7, 9],
        [3, 3, 6, 10],
    ),
    "conv1d_valid": (
        [node("Conv", ["x", "w"], ["y"], auto_pad="VALID", strides=[2])],
        [tensor("w", _f32(4, 3, 5))],
        [2, 3, 20],
        [2, 4, 8],
    ),
    "qdq_per_axis_typed_fields": (
        [
            node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
            node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
            node("DequantizeLinear", ["wq", "ws", "wz"], ["w"], axis=0),
            node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1]),
            node("QuantizeLinear", ["y", "ys", "yz"], ["yq"]),
            node("DequantizeLinear", ["yq", "ys", "yz"], ["z"]),
        ],
        [
            tensor("xs", np.array(0.02, np.float32), typed=True),
            tensor("xz", np.array(3, np.uint8), typed=True),
            tensor("wq", RNG.integers(-127, 128, (5, 3, 3, 3)).astype(np.int8), typed=True),
            tensor("ws", np.array([0.01, 0.02, 0.005, 0.03, 0.015], np.float32), typed=True),
            tensor("wz", np.zeros(5, np.int8)),
            tensor("ys", np.array(0.05, np.float32)),
            tensor("yz", np.array(-2, np.int8)),
        ],
        [2, 3, 6, 8],
        [2, 5, 6, 8],
    ),
    "qdq_relu_chains": (
        [
            node("QuantizeLinear", ["x", "s", "z"], ["q0"]),
            node("DequantizeLinear", ["q0", "s", "z"], ["d0"]),
            node("Conv", ["d0", "w"], ["c"], pads=[1, 1, 1, 1]),
            node("QuantizeLinear", ["c", "s", "z"], ["q1"]),
            node("DequantizeLinear", ["q1", "s", "z"], ["d1"]),
            node("Relu", ["d1"], ["r1"]),
            node("QuantizeLinear", ["r1", "s", "z"], ["q2"]),
            node("DequantizeLinear", ["q2", "s", "z"], ["d2"]),
            node("Add", ["d2", "d0"], ["a"]),
            node("Relu", ["a"], ["r2"]),
            node("QuantizeLinear", ["r2", "s2", "z2"], ["q3"]),
            node("DequantizeLinear", ["q3", "s2", "z2"], ["d3"]),
            node("QuantizeLinear", ["d3", "s2", "z2"], ["q4"]),
            node("DequantizeLinear", ["q4", "s2", "z2"], ["y"]),
        ],
        [
            tensor("w", _f32(3, 3, 3, 3) * 0.3),
            tensor("s", np.array(0.03, np.float32)),
            tensor("z", np.array(0, np.int8)),
            tensor("s2", np.array(0.02, np.float32)),
            tensor("z2", np.array(-100, np.int8)),
        ],
        [2, 3, 5, 7],
        [2, 3, 5, 7],
    ),
    "se_head_ops": (
        [
            node("GlobalAveragePool", ["x"], ["g"]),
            node("Flatten", ["g"], ["f"]),
            node("Gemm", ["f", "w", "c"], ["h"], transB=1, alpha=0.5, beta=2.0),
            node("Sigmoid", ["h"], ["s"]),
            node("Unsqueeze", ["s", "axes"], ["u"]),
            node("Mul", ["x", "u"], ["m"]),
            node("ReduceMean", ["m"], ["r"], axes=[1, 3], keepdims=0),
            node("MatMul", ["r", "k"], ["mm"]),
            node("Softmax", ["mm"], ["y"], axis=0),
        ],
        [
            tensor("w", _f32(4, 4)),
            tensor("c", _f32(4)),
            tensor("axes", np.array([2, 3], np.int64), typed=True),
            tensor("k", _f32(5, 3)),
        ],
        [2, 4, 5, 6],
        [2, 3],
    ),
    "shape_arithmetic": (
        [
            node("Shape", ["x"], ["shape"]),
            node("Gather", ["shape", "zero"], ["batch"], axis=0),
            node("Slice", ["shape", "one", "three"], ["middle"]),
            node("Unsqueeze", ["batch", "zero1"], ["batch1"]),
            node("Concat", ["batch1", "minus1"], ["target"], axis=0),
            node("Reshape", ["x", "target"], ["flat"]),
            node("Transpose", ["flat"], ["t"], perm=[1, 0]),
            node("Squeeze", ["t3", "sq"], ["y"]),
            node("Unsqueeze", ["t", "sq"], ["t3"]),
            node("Constant", [], ["unused"], value=np.array([1.0], np.float32)),
        ],
        [
            tensor("zero", np.array(0, np.int64)),
            tensor("zero1", np.array([0], np.int64)),
            tensor("one", np.array([1], np.int64)),
            tensor("three", np.array([3], np.int64)),
            tensor("minus1", np.array([-1], np.int64)),
            tensor("sq", np.array([-1], np.int64)),
        ],
        [3, 2, 4],
        [8, 3],
    ),
    "batchnorm_add_clip": (
        [
            node("BatchNormalization", ["x", "g", "b", "m", "v"], ["n"], epsilon=1e-3),
            node("Add", ["n", "x"], ["a"]),
            node("Clip", ["a", "lo", "hi"], ["y"]),
        ],
        [
            tensor("g", _f32(3)),
            tensor("b", _f32(3)),
            tensor("m", _f32(3)),
            tensor("v", np.abs(_f32(3)) + 0.5),
            tensor("lo", np.array(-0.5, np.float32)),
            tensor("hi", np.array(1.0, np.float32)),
        ],
        [2, 3, 4, 5],
        [2, 3, 4, 5],
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_ops_match_onnxruntime(case: str) -> None:
    nodes, initializers, input_shape, output_shape = CASES[case]
    data = model_bytes(nodes, initializers, [value_info("x", input_shape)], [value_info("y", output_shape)])
    x = _f32(*input_shape) * 2
    (ours,), (theirs,) = _run_both(data, {"x": x})
    assert ours.shape == theirs.shape == tuple(output_shape)
    np.testing.assert_allclose(ours, theirs, atol=1e-5, rtol=1e-5)


def test_unsupported_op_is_named(tmp_path: Path) -> None:
    data = model_bytes(
        [
            node("Relu", ["x"], ["r"]),
            node("Erf", ["r"], ["e"]),
            node("Inverse", ["e"], ["y"], domain="com.example"),
        ],
        [],
        [value_info("x", ["batch", 192, 24])],
        [value_info("y", ["batch", 192, 24])],
    )
    path = tmp_path / "exotic.onnx"
    path.write_bytes(data)
    with pytest.raises(
        ModelLoadError, match=r"unsupported operator\(s\): Erf, com\.example\.Inverse"
    ) as caught:
        NumpyBackend(path)
    assert str(path) in str(caught.value)


def test_dangling_input_is_a_load_error(tmp_path: Path) -> None:
    data = model_bytes(
        [node("Add", ["x", "nowhere"], ["y"])],
        [],
        [value_info("x", ["batch", 4])],
        [value_info("y", ["batch", 4])],
    )
    path = tmp_path / "dangling.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="'nowhere', which nothing produces"):
        NumpyBackend(path)


def test_load_time_test_inference_catches_shape_errors(tmp_path: Path) -> None:
    data = model_bytes(
        [node("MatMul", ["x", "w"], ["y"])],
        [tensor("w", _f32(5, 4))],
        [value_info("x", ["batch", 2, 3])],
        [value_info("y", ["batch", 2, 4])],
    )
    path = tmp_path / "mismatch.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=r"test inference .*\(ValueError: matmul"):
        NumpyBackend(path)


def test_nan_weights_are_a_load_error(tmp_path: Path) -> None:
    weights = _f32(3, 4)
    weights[1, 2] = np.nan
    data = model_bytes(
        [node("MatMul", ["x", "w"], ["m"]), node("ReduceMean", ["m"], ["y"], axes=[1], keepdims=0)],
        [tensor("w", weights)],
        [value_info("x", ["batch", 2, 3])],
        [value_info("y", ["batch", 4])],
    )
    path = tmp_path / "nan.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="NaN"):
        NumpyBackend(path)


def test_implausible_input_shape_is_a_load_error(tmp_path: Path) -> None:
    data = model_bytes(
        [node("Relu", ["x"], ["y"])], [], [value_info("x", [100_000, 100_000])], [value_info("y", ["b", 4])]
    )
    path = tmp_path / "huge.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match="implausible input shape"):
        NumpyBackend(path)


# The JSON sidecar.


def test_model_info_of_fixture() -> None:
    info = ModelInfo.load(RANDOM_FLOAT)
    sidecar = json.loads(RANDOM_FLOAT.with_suffix(".json").read_text())
    assert info.labels == LABELS
    assert info.sample_rate_hz == 8000
    assert info.window_samples == 15_480
    assert info.fbank == FbankSettings()
    assert FbankExtractor(info.fbank).num_frames(info.window_samples) == 192
    assert dict(info.thresholds) == sidecar["detection"]["thresholds"]
    assert (info.k, info.n, info.hold_s) == (2, 3, 1.0)
    assert info.version == sidecar["version"]
    info.verify_sha256()
    assert info.detector_settings().thresholds == info.thresholds
    assert ModelInfo.load(RANDOM_INT8).sha256 != info.sha256


def test_model_info_catches_a_changed_model(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(RANDOM_FLOAT, model)
    shutil.copy(RANDOM_FLOAT.with_suffix(".json"), tmp_path / "m.json")
    ModelInfo.load(model).verify_sha256()
    model.write_bytes(RANDOM_FLOAT.read_bytes()[:-1] + b"\0")
    with pytest.raises(ModelLoadError, match="does not match its sidecar"):
        ModelInfo.load(model).verify_sha256()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("{not json", "unreadable"),
        ("[1, 2]", "malformed"),
        (json.dumps({"name": "x"}), "missing key"),
        ("thresholds_for_unknown_label", "unknown labels"),
    ],
)
def test_model_info_bad_sidecar(tmp_path: Path, content: str | None, message: str) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(RANDOM_FLOAT, model)
    if content == "thresholds_for_unknown_label":
        sidecar = json.loads(RANDOM_FLOAT.with_suffix(".json").read_text())
        sidecar["detection"]["thresholds"]["doorbell"] = 0.5
        content = json.dumps(sidecar)
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    with pytest.raises(ModelLoadError, match=message) as caught:
        ModelInfo.load(model)
    assert "m.json" in str(caught.value)
