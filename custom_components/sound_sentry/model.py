"""The classifier, loaded once per Home Assistant instance and shared by every source."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN, LOGGER
from .engine.backends import ModelBackend, load_backend
from .engine.model_info import ModelInfo

MODEL_PATH = Path(__file__).parent / "models" / "sound_sentry_resnetse.onnx"

DATA_MODEL: HassKey[SharedModel] = HassKey(f"{DOMAIN}_model")
_DATA_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_model_lock")


@dataclass(frozen=True, slots=True)
class SharedModel:
    """A loaded model: its metadata and the backend that runs it (thread-safe, stateless)."""

    info: ModelInfo
    backend: ModelBackend


def load_model(path: Path) -> SharedModel:
    """Read, verify and load a model (blocking: call it in the executor)."""
    info = ModelInfo.load(path)
    info.verify_sha256()
    backend = load_backend(path)
    LOGGER.info("Loaded %s %s with the %s backend", info.name, info.version, backend.name)
    return SharedModel(info=info, backend=backend)


async def async_get_model(hass: HomeAssistant) -> SharedModel:
    """The instance's model, loading it on first use. Raises ModelLoadError."""
    if (model := hass.data.get(DATA_MODEL)) is not None:
        return model
    lock = hass.data.setdefault(_DATA_LOCK, asyncio.Lock())
    async with lock:
        if (model := hass.data.get(DATA_MODEL)) is None:
            model = await hass.async_add_executor_job(load_model, MODEL_PATH)
            hass.data[DATA_MODEL] = model
    return model
