"""The shipped models and the one place a model is loaded, for every front end: sidecar, checksum, runtime.

Two models ship inside the integration (`custom_components/sound_sentry/models/`), chosen per source:
- `accurate` (the default): EfficientAT mn04, AudioSet-pretrained, fine-tuned on Sound Sentry's sounds;
- `compact`: the seed's ResNetSE (61,574 parameters), for weak hardware.
"""

from __future__ import annotations

from dataclasses import dataclass, field
import logging
from pathlib import Path
import threading

from .backends import BackendChoice, ModelBackend, load_backend
from .model_info import ModelInfo, ModelLoadError, TaughtGraphInfo, verify_file_sha256
from .temporal import TemporalRuntime, load_temporal

_LOGGER = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
"""Where the shipped models live: inside the integration, so that HACS installs them with it."""
SHIPPED_MODELS: dict[str, str] = {
    "accurate": "sound_sentry_mobilenet.onnx",
    "compact": "sound_sentry_resnetse.onnx",
}
"""Model name -> file in `MODELS_DIR`."""
DEFAULT_MODEL = "accurate"
"""The model of new sources."""


def model_path(model: str) -> Path:
    """The file of a shipped model by name (`accurate`, `compact`), or of a path to any .onnx file.

    The one place a model name becomes a file, for Home Assistant, the command line, the service and the
    benchmarks. Raises ModelLoadError for a name that is no shipped model and no .onnx path.
    """
    if model in SHIPPED_MODELS:
        return MODELS_DIR / SHIPPED_MODELS[model]
    if model.endswith(".onnx"):
        return Path(model).expanduser()
    raise ModelLoadError(f"unknown model {model!r}: choose {' or '.join(SHIPPED_MODELS)}, or an .onnx file")


class TaughtNetwork:
    """The network taught sounds read (`ModelInfo.taught`), loaded on first use on the model's runtime.

    Only a source with taught sounds (or teaching one) needs it: `get` loads it once (blocking: checks its
    sha256, then the runtime's load) and every caller after shares it. Thread-safe.
    """

    def __init__(self, info: TaughtGraphInfo, runtime: BackendChoice) -> None:
        self.info = info
        self.runtime = runtime
        self._backend: ModelBackend | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether `get` has loaded it (nothing is loaded for a source without taught sounds)."""
        return self._backend is not None

    def get(self) -> ModelBackend:
        """The network's backend, loading it on the first call. Raises ModelLoadError."""
        with self._lock:
            if self._backend is None:
                verify_file_sha256(self.info.path, self.info.sha256)
                backend = load_backend(self.info.path, self.runtime)
                if not backend.embedding_size:
                    raise ModelLoadError(
                        f"the taught sounds' network {self.info.path} has no embedding output"
                    )
                _LOGGER.info(
                    "Loaded the taught sounds' network %s on the %s backend; licence of its weights: %s",
                    self.info.path.name,
                    backend.name,
                    self.info.licence or "not stated",
                )
                self._backend = backend
            return self._backend


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded model: its metadata, the backend that runs it and its temporal stage (thread-safe, stateless)."""

    info: ModelInfo
    backend: ModelBackend
    temporal: TemporalRuntime | None = None
    """The temporal stage on the backend's runtime, when the model has one (`temporal.py`)."""
    taught: TaughtNetwork | None = field(default=None, compare=False)
    """The network taught sounds read, on the backend's runtime, when the model has one (not yet loaded)."""

    def taught_backend(self) -> ModelBackend:
        """The network taught sounds read, loaded on first use (blocking). Raises ModelLoadError without one."""
        if self.taught is None:
            raise ModelLoadError(f"{self.info.name} {self.info.version} has no network for taught sounds")
        return self.taught.get()


def load_model(path: Path | str, backend: BackendChoice = "auto") -> LoadedModel:
    """Read the sidecar, check the .onnx file against its sha256, and load it on `backend` (blocking).

    Raises ModelLoadError for a missing, altered or unreadable model, ValueError for an unknown backend.
    """
    info = ModelInfo.load(path)
    info.verify_sha256()
    loaded = load_backend(path, backend)
    temporal = load_temporal(info.temporal.path, loaded.name) if info.temporal is not None else None
    if temporal is not None and temporal.input_size != loaded.embedding_size + len(info.labels):
        raise ModelLoadError(
            f"temporal stage {info.temporal.path} reads {temporal.input_size} features per window, but "  # type: ignore[union-attr]
            f"{path} gives {loaded.embedding_size} + {len(info.labels)}: the files are from different versions"
        )
    _LOGGER.info(
        "Loaded %s %s with the %s backend; licence of its weights: %s",
        info.name,
        info.version,
        loaded.name,
        info.licence_text,
    )
    taught = TaughtNetwork(info.taught, loaded.name) if info.taught is not None else None  # type: ignore[arg-type]
    return LoadedModel(info=info, backend=loaded, temporal=temporal, taught=taught)
