"""The two model runtimes: same probabilities on real audio, clear errors for bad model files.

The NumPy runtime's tests need no onnxruntime (Home Assistant OS has none); only those comparing it
with onnxruntime do (`needs_onnxruntime`; both test environments install it, so none skips in CI).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
import contextlib
import csv
import importlib.util
import json
import logging
import os
from pathlib import Path
import shutil
import struct
import subprocess
import sys
import textwrap
import threading

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import (
    ModelLoadError,
    NumpyBackend,
    OnnxRuntimeBackend,
    load_backend,
)
from custom_components.sound_sentry.engine.fbank import FbankExtractor, FbankSettings
from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.onnx_proto import decode_model
from tests.audio import read_clip

needs_onnxruntime = pytest.mark.skipif(
    importlib.util.find_spec("onnxruntime") is None, reason="compares with onnxruntime, not installed"
)
BACKENDS = [
    pytest.param(NumpyBackend, id="numpy"),
    pytest.param(OnnxRuntimeBackend, id="onnxruntime", marks=needs_onnxruntime),
]

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
RANDOM_FLOAT = FIXTURES / "resnetse_random.onnx"
# The shipped models, by name, in the one folder they live in (inside the integration).
SHIPPED_NAMES = tuple(SHIPPED_MODELS)
LABELS = ("background", "babycry", "glassbreak", "gunshot")

FLOAT_ATOL = 1e-4


# Helpers: real feature windows.


def model_windows(data_dir: Path, info: ModelInfo) -> npt.NDArray[np.float32]:
    """A model's input windows [N, frames, bands] (its own front end) of real test clips, a few per class."""
    rows = list(csv.DictReader((data_dir / "manifest.csv").open()))
    front_end = FrontEnd(info.front_end)
    window = info.window_samples
    windows = []
    for label in LABELS:
        matching = [row for row in rows if row["label"] == label and row["split"] == "test"]
        for row in matching[:: max(1, len(matching) // 3)][:3]:
            samples = read_clip(data_dir / row["path"])
            if samples.size < window:  # centre a short clip in silence
                missing = window - samples.size
                samples = np.pad(samples, (missing // 2, missing - missing // 2))
            starts = range(0, samples.size - window + 1, window)[:2]
            windows.extend(front_end.features(samples[s : s + window]) for s in starts)
    return np.stack(windows)


@pytest.fixture(scope="module")
def real_windows(data_dir: Path) -> npt.NDArray[np.float32]:
    """Mean-normalised FBANK windows [N, 192, 24] of real test clips (the compact model's front end)."""
    windows = model_windows(data_dir, ModelInfo.load(model_path("compact")))
    assert windows.shape[1:] == (192, 24)
    return windows


# Parity of the two runtimes.


def _assert_parity(model: Path, windows: npt.NDArray[np.float32]) -> None:
    numpy_probs = NumpyBackend(model).predict(windows)
    ort_probs = OnnxRuntimeBackend(model).predict(windows)
    assert numpy_probs.shape == ort_probs.shape == (len(windows), 4)
    assert numpy_probs.dtype == np.float32
    np.testing.assert_allclose(numpy_probs.sum(axis=1), 1.0, atol=1e-5)
    # The windows must move the output by much more than the tolerance, or the comparison is empty.
    assert float(np.ptp(ort_probs, axis=0).max()) > 10 * FLOAT_ATOL
    worst = float(np.abs(numpy_probs - ort_probs).max())
    assert worst <= FLOAT_ATOL, f"{model.name}: max |numpy - onnxruntime| = {worst:.2e}"


@needs_onnxruntime
def test_float32_parity_on_real_windows(real_windows: npt.NDArray[np.float32]) -> None:
    _assert_parity(RANDOM_FLOAT, real_windows)


@needs_onnxruntime
@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_shipped_models_parity(name: str, data_dir: Path) -> None:
    """Each shipped model gives the same probabilities on both runtimes, on real windows of its front end."""
    model = model_path(name)
    assert model.is_file(), f"the shipped model {name} is missing: {model}"
    info = ModelInfo.load(model)
    info.verify_sha256()
    assert info.labels == LABELS
    _assert_parity(model, model_windows(data_dir, info))


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_equals_single_windows(
    backend: type[NumpyBackend | OnnxRuntimeBackend], real_windows: npt.NDArray[np.float32]
) -> None:
    runtime = backend(RANDOM_FLOAT)
    batch = runtime.predict(real_windows[:8])
    singles = np.concatenate([runtime.predict(real_windows[i : i + 1]) for i in range(8)])
    np.testing.assert_allclose(batch, singles, atol=1e-6, rtol=0)
    # Reused work buffers: another batch size in between changes nothing, and a result is the caller's.
    np.testing.assert_array_equal(runtime.predict(real_windows[:8]), batch)
    first = runtime.predict(real_windows[:1])
    runtime.predict(real_windows[1:2])
    np.testing.assert_array_equal(first, singles[:1])


def test_threads_share_one_numpy_backend(real_windows: npt.NDArray[np.float32]) -> None:
    runtime = NumpyBackend(RANDOM_FLOAT)
    expected = runtime.predict(real_windows)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: runtime.predict(real_windows[i % 3 :]), range(24)))
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result, expected[i % 3 :])


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_batch(backend: type[NumpyBackend | OnnxRuntimeBackend]) -> None:
    assert backend(RANDOM_FLOAT).predict(np.zeros((0, 192, 24), np.float32)).shape == (0, 4)


def test_predict_rejects_wrong_rank() -> None:
    with pytest.raises(ValueError, match="batch, frames, mel bins"):
        NumpyBackend(RANDOM_FLOAT).predict(np.zeros((192, 24), np.float32))


# Choosing a runtime.


@needs_onnxruntime
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


@needs_onnxruntime
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


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS runs one thread on one core anyway")
@pytest.mark.parametrize("backend", ["numpy", "onnxruntime"])
def test_the_engine_takes_one_blas_thread_only_while_it_runs(backend: str) -> None:
    """In a fresh interpreter with OpenBLAS's default (a thread per core), as Home Assistant runs: loading a
    model and running it leave the process's NumPy its threads; inside the engine's calls it has one."""
    script = textwrap.dedent(
        """
        import ctypes, os, sys
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        import numpy as np
        from custom_components.sound_sentry.engine.backends import one_blas_thread
        from custom_components.sound_sentry.engine.model import load_model
        from custom_components.sound_sentry.engine.pipeline import Pipeline
        maps = open("/proc/self/maps").read()
        path = sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()})[0]
        library = ctypes.CDLL(path)
        get = next(getattr(library, n) for n in ("scipy_openblas_get_num_threads64_",
                                                 "openblas_get_num_threads64_", "openblas_get_num_threads")
                   if hasattr(library, n))
        before = get()
        model = load_model(sys.argv[1], sys.argv[2])
        loaded = get()
        pipeline = Pipeline.for_model(model)
        pcm = np.random.default_rng(0).standard_normal(4 * model.info.window_samples).astype(np.float32) * 0.1
        windows = sum(len(pipeline.process(pcm[i : i + 1600]).windows) for i in range(0, pcm.size, 1600))
        with one_blas_thread:
            inside = get()
        print("threads", before, loaded, get(), inside, windows)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    result = subprocess.run(
        [sys.executable, "-c", script, str(model_path("compact")), backend],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    before, loaded, after_running, inside, windows = map(int, result.stdout.split()[1:])
    assert before > 1  # OpenBLAS's default: a thread per core
    assert windows > 0  # the model ran
    assert (loaded, after_running) == (before, before)  # other callers keep their threads
    assert inside == 1


def test_one_blas_thread_holds_until_the_last_thread_leaves() -> None:
    """Sources run on threads of their own: one leaving while another is inside keeps the one thread."""
    from custom_components.sound_sentry.engine import backends

    libraries = backends._openblas_libraries()
    if not libraries:
        pytest.skip("no OpenBLAS in this process")
    threads = libraries[0].get_threads
    outside = threads()
    entered, release_first = threading.Event(), threading.Event()
    seen: list[int] = []

    def first() -> None:
        with backends.one_blas_thread:
            entered.set()
            release_first.wait(10)
        seen.append(threads())  # the second is still inside

    worker = threading.Thread(target=first)
    worker.start()
    assert entered.wait(10)
    with backends.one_blas_thread:
        release_first.set()
        worker.join(10)
        seen.append(threads())
    assert seen == [1, 1]
    assert threads() == outside


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
@pytest.mark.parametrize("backend", ["numpy", pytest.param("onnxruntime", marks=needs_onnxruntime)])
def test_bad_model_file_raises_model_load_error(tmp_path: Path, kind: str, backend: str) -> None:
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(ModelLoadError) as caught:
        load_backend(path, backend)  # type: ignore[arg-type]
    assert str(path) in str(caught.value)


def test_every_truncation_is_a_clean_error(tmp_path: Path) -> None:
    """Cutting the file anywhere gives ModelLoadError, never an IndexError or a hang."""
    data = RANDOM_FLOAT.read_bytes()
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


RNG = np.random.default_rng(11)


def _f32(*shape: int) -> npt.NDArray[np.float32]:
    return (RNG.standard_normal(shape) * 0.3).astype(np.float32)


def resnetse_graph(
    blocks: list[tuple[int, int, int, int]],
    *,
    classes: int = 4,
    mutate: str = "",
    input_shape: tuple[int | str, ...] = ("batch", 192, 24),
) -> bytes:
    """A ResNetSE graph as torch.onnx exports it, random weights; blocks: (in, mid, out, stride).

    `mutate` breaks it on purpose: "sigmoid_to_relu", "extra_node", "dilated", "no_se".
    """
    nodes: list[bytes] = []
    inits: list[bytes] = []

    def conv(x: str, name: str, cin: int, cout: int, size: int, *, stride: int = 1) -> str:
        inits.extend([tensor(f"{name}.w", _f32(cout, cin, size, size)), tensor(f"{name}.b", _f32(cout))])
        dilation = 2 if mutate == "dilated" and name == "b0.c2" else 1
        pad = size // 2 * dilation
        nodes.append(
            node(
                "Conv",
                [x, f"{name}.w", f"{name}.b"],
                [name],
                kernel_shape=[size, size],
                pads=[pad] * 4,
                strides=[stride, stride],
                dilations=[dilation, dilation],
                group=1,
            )
        )
        return name

    def gemm(x: str, name: str, cin: int, cout: int) -> str:
        inits.extend([tensor(f"{name}.w", _f32(cout, cin)), tensor(f"{name}.b", _f32(cout))])
        nodes.append(node("Gemm", [x, f"{name}.w", f"{name}.b"], [name], alpha=1.0, beta=1.0, transB=1))
        return name

    def relu(x: str) -> str:
        nodes.append(node("Relu", [x], [x + ".relu"]))
        return x + ".relu"

    def unsqueeze(x: str, axis: int) -> str:
        nodes.append(node("Constant", [], [f"{x}.axes"], value=np.array([axis], np.int64)))
        nodes.append(node("Unsqueeze", [x, f"{x}.axes"], [f"{x}.u"]))
        return f"{x}.u"

    nodes.append(node("Transpose", ["features"], ["t"], perm=[0, 2, 1]))
    nodes.append(node("Constant", [], ["one"], value=np.array([1], np.int64)))
    nodes.append(node("Unsqueeze", ["t", "one"], ["u"]))
    x = relu(conv("u", "stem", 1, blocks[0][0], 3))
    height = 24
    for i, (cin, mid, cout, stride) in enumerate(blocks):
        h = relu(conv(x, f"b{i}.c1", cin, mid, 1))
        h = relu(conv(h, f"b{i}.c2", mid, mid, 3, stride=stride))
        h = conv(h, f"b{i}.c3", mid, cout, 1)
        if mutate != "no_se" or i:
            nodes.append(node("ReduceMean", [h], [f"b{i}.m"], axes=[2, 3], keepdims=0))
            gate = relu(gemm(f"b{i}.m", f"b{i}.se1", cout, max(1, cout // 4)))
            gate = gemm(gate, f"b{i}.se2", max(1, cout // 4), cout)
            nodes.append(node("Relu" if mutate == "sigmoid_to_relu" else "Sigmoid", [gate], [f"b{i}.s"]))
            nodes.append(node("Mul", [h, unsqueeze(unsqueeze(f"b{i}.s", 2) + "", 3)], [f"b{i}.se"]))
            h = f"b{i}.se"
        skip = x if cin == cout and stride == 1 else conv(x, f"b{i}.sc", cin, cout, 1, stride=stride)
        nodes.append(node("Add", [h, skip], [f"b{i}.add"]))
        x = relu(f"b{i}.add")
        height = (height - 1) // stride + 1
    nodes.append(node("ReduceMean", [x], ["pool"], axes=[3], keepdims=0))
    nodes.append(node("Flatten", ["pool"], ["flat"], axis=1))
    if mutate == "extra_node":
        nodes.append(node("Relu", ["flat"], ["unused"]))
    logits = gemm(gemm("flat", "fc1", blocks[-1][2] * height, 16), "fc2", 16, classes)
    nodes.append(node("Softmax", [logits], ["probabilities"], axis=-1))
    return model_bytes(
        nodes,
        inits,
        [value_info("features", list(input_shape))],
        [value_info("probabilities", ["batch", classes])],
    )


@needs_onnxruntime
def test_other_widths_and_depths_match_onnxruntime(
    tmp_path: Path, real_windows: npt.NDArray[np.float32]
) -> None:
    """The structure is read from the graph: a retrained model of other widths or depth runs too."""
    path = tmp_path / "other.onnx"
    path.write_bytes(resnetse_graph([(4, 4, 8, 1), (8, 6, 8, 1), (8, 8, 12, 2), (12, 8, 16, 2)], classes=5))
    ours = NumpyBackend(path).predict(real_windows)
    theirs = OnnxRuntimeBackend(path).predict(real_windows)
    assert ours.shape == (len(real_windows), 5)
    assert float(np.ptp(theirs, axis=0).max()) > 10 * FLOAT_ATOL
    np.testing.assert_allclose(ours, theirs, atol=FLOAT_ATOL, rtol=0)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("sigmoid_to_relu", r"b1\.s' \(Relu\): expected Sigmoid"),
        ("extra_node", "nodes outside the architecture: Relu"),
        ("dilated", "b0.c2.*no dilation"),
        ("no_se", "squeeze-and-excitation Mul"),
    ],
)
def test_other_architectures_are_refused(tmp_path: Path, mutate: str, message: str) -> None:
    path = tmp_path / f"{mutate}.onnx"
    path.write_bytes(resnetse_graph([(4, 4, 8, 1), (8, 8, 8, 1)], mutate=mutate))
    if importlib.util.find_spec("onnxruntime") is not None:
        OnnxRuntimeBackend(path)  # a valid ONNX model, just not this architecture
    with pytest.raises(ModelLoadError, match=message) as caught:
        NumpyBackend(path)
    assert str(path) in str(caught.value)
    assert "cannot run on the NumPy runtime" in str(caught.value)


def test_quantized_models_are_refused(tmp_path: Path) -> None:
    """The product ships float32 only; an int8 (QDQ) export is refused with a clear error."""
    data = model_bytes(
        [
            node("QuantizeLinear", ["features", "s", "z"], ["q"]),
            node("DequantizeLinear", ["q", "s", "z"], ["probabilities"]),
        ],
        [tensor("s", np.array(0.1, np.float32)), tensor("z", np.array(0, np.int8))],
        [value_info("features", ["batch", 192, 24])],
        [value_info("probabilities", ["batch", 192, 24])],
    )
    path = tmp_path / "int8.onnx"
    path.write_bytes(data)
    with pytest.raises(ModelLoadError, match=r"DequantizeLinear\): expected Softmax"):
        NumpyBackend(path)


def test_nan_weights_are_a_load_error(tmp_path: Path) -> None:
    graph = decode_model(RANDOM_FLOAT.read_bytes()).graph
    bias = graph.initializers["net.fc2.bias"].tobytes()
    data = RANDOM_FLOAT.read_bytes()
    assert data.count(bias) == 1
    path = tmp_path / "nan.onnx"
    path.write_bytes(data.replace(bias, np.full(4, np.nan, np.float32).tobytes()))
    with pytest.raises(ModelLoadError, match="NaN"):
        NumpyBackend(path)


def test_implausible_input_shape_is_a_load_error(tmp_path: Path) -> None:
    data = resnetse_graph([(4, 4, 8, 1)], input_shape=(100_000, 100_000, 24))
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
    assert info.architecture == "resnetse"
    assert info.front_end == FbankSettings()
    assert FbankExtractor(FbankSettings()).num_frames(info.window_samples) == 192
    assert dict(info.thresholds) == sidecar["detection"]["thresholds"]
    assert (info.k, info.n, info.hold_s) == (2, 3, 1.0)
    assert info.version == sidecar["version"]
    info.verify_sha256()
    assert info.detector_settings().thresholds == info.thresholds


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
        ("unknown_architecture", "unknown architecture 'transformer'"),
        ("unknown_front_end", "unknown front end 'mfcc'"),
        ("unknown_front_end_setting", r"unknown kaldi-fbank settings \['num_ceps'\]"),
        ("licence_not_text", "licence must be text"),
    ],
)
def test_model_info_bad_sidecar(tmp_path: Path, content: str | None, message: str) -> None:
    model = tmp_path / "m.onnx"
    shutil.copy(RANDOM_FLOAT, model)
    sidecar = json.loads(RANDOM_FLOAT.with_suffix(".json").read_text())
    if content == "thresholds_for_unknown_label":
        sidecar["detection"]["thresholds"]["doorbell"] = 0.5
        content = json.dumps(sidecar)
    elif content == "unknown_architecture":
        content = json.dumps({**sidecar, "architecture": "transformer"})
    elif content == "unknown_front_end":
        content = json.dumps({**sidecar, "front_end": {"type": "mfcc"}})
    elif content == "licence_not_text":
        content = json.dumps({**sidecar, "licence": {"spdx": "CC-BY-NC-3.0"}})
    elif content == "unknown_front_end_setting":
        content = json.dumps({**sidecar, "front_end": {**sidecar["front_end"], "num_ceps": 13}})
    if content is not None:
        (tmp_path / "m.json").write_text(content)
    with pytest.raises(ModelLoadError, match=message) as caught:
        ModelInfo.load(model)
    assert "m.json" in str(caught.value)


@pytest.mark.parametrize("name", SHIPPED_NAMES)
def test_sidecar_round_trips_through_the_contract(name: str, tmp_path: Path) -> None:
    """What training writes (`to_json`) is what the engine reads (`from_json`), for every shipped model."""
    info = ModelInfo.load(model_path(name))
    raw = info.to_json()
    assert ModelInfo.from_json(info.path, json.loads(json.dumps(raw))) == info
    assert raw["architecture"] in ("resnetse", "mobilenet")
    assert info.operating_curve is not None
    assert info.provenance["commit"]  # both record how they were made (training: commit, seed, arguments)
