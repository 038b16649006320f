"""The one place a model is loaded, for Home Assistant and the CLI alike: sidecar, checksum, runtime."""

from __future__ import annotations

from dataclasses import dataclass
import logging
from pathlib import Path

from .backends import BackendChoice, ModelBackend, load_backend
from .model_info import ModelInfo

_LOGGER = logging.getLogger(__name__)


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
