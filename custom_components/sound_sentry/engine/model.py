"""The one place a model is loaded, for Home Assistant and the CLI alike: sidecar, checksum, runtime."""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

from .backends import BackendChoice, ModelBackend, load_backend
from .model_info import ModelInfo, ModelLoadError

_LOGGER = logging.getLogger(__name__)

MODELS_DIR = Path(__file__).resolve().parents[1] / "models"
"""Where the shipped models live (inside the integration, so Home Assistant and the engine share them)."""
MODEL_FILES = {"compact": "sound_sentry_resnetse.onnx"}
"""The shipped models by the name users choose them by."""
DEFAULT_MODEL_NAME = "compact"
"""The model a source gets unless it asks for another."""


def model_path(name: str = DEFAULT_MODEL_NAME) -> Path:
    """The .onnx file of a shipped model by name, or of a path to an .onnx file (its sidecar beside it).

    Raises ModelLoadError for an unknown name. The one place a model name becomes a file, for Home
    Assistant, the command line and the service.
    """
    if name in MODEL_FILES:
        return MODELS_DIR / MODEL_FILES[name]
    if name.endswith(".onnx"):
        return Path(name).expanduser()
    raise ModelLoadError(
        f"unknown model {name!r}: choose one of {', '.join(MODEL_FILES)} or a path to an .onnx file"
    )


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A loaded model: its metadata and the backend that runs it (thread-safe, stateless)."""

    info: ModelInfo
    backend: ModelBackend


def load_model(path: Path | str, backend: BackendChoice = "auto") -> LoadedModel:
    """Read the sidecar, check the .onnx file against its sha256, and load it on `backend` (blocking).

    Raises ModelLoadError for a missing, altered or unreadable model, ValueError for an unknown backend.
    """
    info = ModelInfo.load(path)
    info.verify_sha256()
    loaded = load_backend(path, backend)
    _LOGGER.info("Loaded %s %s with the %s backend", info.name, info.version, loaded.name)
    return LoadedModel(info=info, backend=loaded)
