"""Two runtimes of one .onnx model: onnxruntime when it is installed, else a pure-NumPy forward pass.

onnxruntime has no musl (Alpine) wheels, so Home Assistant OS, Container and Supervised cannot install
it; `NumpyBackend` reads the same file with a built-in protobuf decoder, checks that its graph is one of
the architectures it knows (the compact ResNetSE, `resnetse.py`; the accurate MobileNet, `mobilenet.py`)
and runs it with NumPy only.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
import functools
import logging
import math
from pathlib import Path
import threading
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeAlias

import numpy as np
import numpy.typing as npt

from .graph_walk import UnsupportedModelError
from .mobilenet import MobileNet
from .model_info import ModelLoadError
from .onnx_proto import Graph, Model, decode_model
from .resnetse import ResNetSE

if TYPE_CHECKING:
    from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

__all__ = [
    "EMBEDDING_OUTPUT",
    "ModelBackend",
    "ModelLoadError",
    "NumpyBackend",
    "OnnxRuntimeBackend",
    "import_onnxruntime",
    "load_backend",
    "one_blas_thread",
    "onnxruntime_available",
]

BackendChoice: TypeAlias = Literal["auto", "numpy", "onnxruntime"]

_MAX_PROBE_ELEMENTS = 1 << 24  # the real inputs are 192 x 24 and 200 x 79 per window


class ModelBackend(Protocol):
    """Runs the classifier: mean-normalised FBANK windows in, class probabilities out."""

    name: str
    """Short runtime name for logs and diagnostics ("numpy" or "onnxruntime")."""
    model_path: Path

    embedding_size: int
    """Features of a window's embedding (0: the model file has no embedding output)."""

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities [B, classes] for a batch of windows [B, frames, mel bins]."""
        ...

    def embed(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Probabilities [B, classes] and embeddings [B, embedding_size] for windows [B, frames, mel bins]."""
        ...


EMBEDDING_OUTPUT = "embedding"
"""The model file's optional second output: each window's embedding, what its softmax head's linear layer
reads. A model with a temporal stage (`temporal.py`) has it."""


# OpenBLAS's thread count: NumPy's wheels bundle it with a scipy_ prefix and 64-bit integers.
_OPENBLAS_SUFFIXES = ("64_", "")
_OPENBLAS_PREFIXES = ("scipy_openblas", "openblas")


@dataclass(frozen=True, slots=True)
class _OpenBlas:
    """One OpenBLAS library loaded in this process, and its (process-wide) thread count."""

    path: str
    get_threads: Callable[[], int]
    set_threads: Callable[[int], None]


@functools.cache
def _openblas_libraries() -> tuple[_OpenBlas, ...]:
    """The OpenBLAS libraries loaded in this process (NumPy's), found once.

    Linux only (reads /proc/self/maps); elsewhere none, and `one_blas_thread` does nothing.
    """
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    found = []
    for path in sorted({line.split()[-1] for line in maps.splitlines() if "openblas" in line.lower()}):
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        names = [
            (f"{p}_get_num_threads{s}", f"{p}_set_num_threads{s}")
            for p in _OPENBLAS_PREFIXES
            for s in _OPENBLAS_SUFFIXES
        ]
        for get_name, set_name in names:
            if hasattr(library, get_name) and hasattr(library, set_name):
                found.append(_OpenBlas(path, getattr(library, get_name), getattr(library, set_name)))
                break
    return tuple(found)


class _OneBlasThread:
    """NumPy's OpenBLAS on one thread while any thread is inside; after the last leaves, as before.

    OpenBLAS starts a thread per core and spreads every large matrix product over them: on a busy
    2-core machine that cost 4x the CPU for the same work (issue #15). Sound Sentry runs each source's
    inference on that source's own thread, so one BLAS thread per call is the deliberate choice. But
    OpenBLAS has one setting per process (its `_local` setter too, in the pthreads builds NumPy ships),
    and in Home Assistant that process is everyone's: the engine takes one thread only while its own
    calls run (counted across the sources' threads) and gives the setting back after, so that other
    callers' NumPy keeps its threads (issue #28); only while a call of the engine runs does theirs get one
    thread too. Entering and leaving cost about a microsecond.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._saved: list[int] = []

    def __enter__(self) -> None:
        with self._lock:
            if not self._inside:
                libraries = _openblas_libraries()
                self._saved = [library.get_threads() for library in libraries]
                for library in libraries:
                    library.set_threads(1)
            self._inside += 1

    def __exit__(self, *_exc: object) -> None:
        with self._lock:
            self._inside -= 1
            if not self._inside:
                for library, threads in zip(_openblas_libraries(), self._saved, strict=True):
                    library.set_threads(threads)


one_blas_thread = _OneBlasThread()
"""`with one_blas_thread:` around the engine's own NumPy work (forward passes, the pipeline's front end)."""


def _read_model_bytes(path: Path) -> bytes:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"model file {path} not found: reinstall Sound Sentry or fix the path") from None
    except OSError as err:
        raise ModelLoadError(f"model file {path} is unreadable ({err.strerror or err})") from err
    if not data:
        raise ModelLoadError(f"model file {path} is empty: reinstall Sound Sentry or re-download the model")
    return data


def _check_batch(features: npt.ArrayLike) -> npt.NDArray[np.float32]:
    array = np.ascontiguousarray(features, dtype=np.float32)
    if array.ndim != 3:
        raise ValueError(f"features must be [batch, frames, mel bins], got shape {array.shape}")
    return array


class _Network(Protocol):
    num_classes: int

    def __call__(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...

    def forward(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...


_ARCHITECTURES: tuple[Callable[[Graph], _Network], ...] = (ResNetSE.from_graph, MobileNet.from_graph)
"""The NumPy forward passes: each checks that a graph is its architecture, or raises UnsupportedModelError."""


def _network(graph: Graph) -> _Network:
    """The forward pass whose architecture the graph is; else UnsupportedModelError with each one's reason."""
    reasons = []
    for from_graph in _ARCHITECTURES:
        try:
            return from_graph(graph)
        except UnsupportedModelError as err:
            reasons.append(str(err))
    raise UnsupportedModelError("; ".join(reasons))


def _probe_shape(shape: tuple[int | str, ...] | None) -> tuple[int, ...]:
    """A concrete input shape for a load-time test run: symbolic dimensions (the batch) become 1."""
    if not shape:
        raise ModelLoadError("the model's input has no declared shape")
    return tuple(d if isinstance(d, int) and d > 0 else 1 for d in shape)


class NumpyBackend:
    """Runs a ResNetSE or MobileNet .onnx file with NumPy only (no onnxruntime, no `onnx` package).

    Several threads may share one instance: each thread gets its own work buffers. Each forward pass
    runs NumPy's BLAS on one thread (`one_blas_thread`): one inference thread per source.
    """

    name = "numpy"

    def __init__(self, model_path: Path | str) -> None:
        """Decode the model and take its weights, then run one test window; raise ModelLoadError on any problem."""
        self.model_path = path = Path(model_path)
        data = _read_model_bytes(path)
        try:
            model: Model = decode_model(data)
        except ModelLoadError as err:
            raise ModelLoadError(
                f"model file {path} is not a valid ONNX model ({err}): it may be truncated or corrupt; "
                "reinstall Sound Sentry or re-download the model"
            ) from err
        try:
            self._net = _network(model.graph)
        except Exception as err:  # a corrupt graph can fail in many ways; all mean the same to the user
            raise ModelLoadError(
                f"model file {path} cannot run on the NumPy runtime ({err}): it runs float32 ResNetSE "
                "and MobileNet models only; install onnxruntime (glibc systems only) to run other models"
            ) from err
        declared = model.graph.inputs[0]
        self.input_shape = declared.shape
        probe_shape = _probe_shape(declared.shape)
        if len(probe_shape) != 3 or math.prod(probe_shape) > _MAX_PROBE_ELEMENTS:
            raise ModelLoadError(f"model file {path} declares an implausible input shape {declared.shape}")
        try:
            with np.errstate(all="ignore"):  # a broken model is reported below, not as warnings
                probe = self.predict(np.random.default_rng(0).standard_normal(probe_shape, dtype=np.float32))
        except Exception as err:  # any failure of the test run means the model cannot run
            raise ModelLoadError(
                f"model file {path} failed a test inference on the NumPy runtime "
                f"({type(err).__name__}: {err}): the file is corrupt or not a Sound Sentry model"
            ) from err
        if not np.isfinite(probe).all():
            raise ModelLoadError(f"model file {path} computes NaN or infinity: it is corrupt; reinstall it")
        self.num_classes = probe.shape[1]
        outputs = model.graph.outputs
        self.embedding_size = (
            self._net.forward(np.zeros(probe_shape, np.float32))[1].shape[1]
            if len(outputs) > 1 and outputs[1].name == EMBEDDING_OUTPUT
            else 0
        )

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities [B, classes] for windows [B, frames, mel bins]."""
        batch = _check_batch(features)
        if not batch.shape[0]:
            return np.zeros((0, self._net.num_classes), dtype=np.float32)
        with one_blas_thread:
            return self._net(batch)

    def embed(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Probabilities [B, classes] and embeddings [B, embedding_size] for windows [B, frames, mel bins]."""
        _require_embedding(self)
        batch = _check_batch(features)
        if not batch.shape[0]:
            return np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.embedding_size), np.float32)
        with one_blas_thread:
            return self._net.forward(batch)


def _require_embedding(backend: ModelBackend) -> None:
    if not backend.embedding_size:
        raise ModelLoadError(
            f"model file {backend.model_path} has no {EMBEDDING_OUTPUT!r} output: it predates the temporal "
            "stage; reinstall Sound Sentry"
        )


def import_onnxruntime() -> Any:
    """The onnxruntime module, or None where it is not installed (musl systems such as HA OS)."""
    try:
        import onnxruntime  # noqa: PLC0415
    except ImportError:
        return None
    return onnxruntime


def onnxruntime_available() -> bool:
    """Whether onnxruntime can be imported here (it cannot on musl systems such as HA OS)."""
    return import_onnxruntime() is not None


class OnnxRuntimeBackend:
    """Runs an .onnx file with onnxruntime on the CPU, one intra-op thread by default.

    onnxruntime runs on the calling thread (one intra-op, one inter-op thread: no pool, no spinning);
    the pipeline's front end runs NumPy's BLAS on one thread (`one_blas_thread`).
    """

    name = "onnxruntime"

    def __init__(self, model_path: Path | str, intra_op_threads: int = 1) -> None:
        """Open an inference session; raise ModelLoadError if onnxruntime or the model is unusable."""
        self.model_path = path = Path(model_path)
        ort = import_onnxruntime()
        if ort is None:
            raise ModelLoadError(
                "the onnxruntime backend was requested but onnxruntime is not installed (it has no musl "
                "wheels, so HA OS cannot install it): choose the numpy backend or 'auto'"
            )
        data = _read_model_bytes(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers etc. are noise to users
        try:
            self._session = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped Fail/InvalidGraph errors
            raise ModelLoadError(
                f"model file {path} could not be loaded by onnxruntime ({str(err).strip()[:300]}): it may be "
                "truncated or corrupt; reinstall Sound Sentry or re-download the model"
            ) from err
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or not outputs:
            raise ModelLoadError(f"model file {path} must have exactly one input and an output")
        self._input_name: str = inputs[0].name
        self._output_name: str = outputs[0].name
        self.input_shape = tuple(inputs[0].shape)
        classes = outputs[0].shape[-1] if outputs[0].shape else None
        self.num_classes: int = classes if isinstance(classes, int) else 0
        embedding = next((o for o in outputs[1:] if o.name == EMBEDDING_OUTPUT), None)
        size = embedding.shape[-1] if embedding is not None and embedding.shape else 0
        self.embedding_size: int = size if isinstance(size, int) else 0

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Probabilities [B, classes] for windows [B, frames, mel bins]."""
        batch = _check_batch(features)
        if not batch.shape[0]:
            return np.zeros((0, self.num_classes), dtype=np.float32)
        (output,) = self._session.run([self._output_name], {self._input_name: batch})
        return np.asarray(output, dtype=np.float32)

    def embed(
        self, features: npt.NDArray[np.float32]
    ) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Probabilities [B, classes] and embeddings [B, embedding_size] for windows [B, frames, mel bins]."""
        _require_embedding(self)
        batch = _check_batch(features)
        if not batch.shape[0]:
            return np.zeros((0, self.num_classes), np.float32), np.zeros((0, self.embedding_size), np.float32)
        probs, embeddings = self._session.run(
            [self._output_name, EMBEDDING_OUTPUT], {self._input_name: batch}
        )
        return np.asarray(probs, dtype=np.float32), np.asarray(embeddings, dtype=np.float32)


_FACTORIES: dict[str, Callable[[Path], ModelBackend]] = {
    "numpy": NumpyBackend,
    "onnxruntime": OnnxRuntimeBackend,
}


def load_backend(model_path: Path | str, backend: BackendChoice = "auto") -> ModelBackend:
    """Load the model on the requested runtime; "auto" prefers onnxruntime when it imports."""
    path = Path(model_path)
    if backend == "auto":
        backend = "onnxruntime" if onnxruntime_available() else "numpy"
        reason = "onnxruntime is installed" if backend == "onnxruntime" else "onnxruntime is not installed"
        _LOGGER.info("Running %s on the %s backend (%s)", path.name, backend, reason)
    elif backend in _FACTORIES:
        _LOGGER.info("Running %s on the %s backend (as configured)", path.name, backend)
    else:
        raise ValueError(f"unknown backend {backend!r}; choose auto, numpy or onnxruntime")
    return _FACTORIES[backend](path)
