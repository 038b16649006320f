"""The classifier, loaded once per Home Assistant instance and shared by every source."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .engine.backends import BackendChoice
from .engine.model import LoadedModel, load_model, model_path

MODEL_PATH = model_path()
BACKEND: BackendChoice = "auto"
"""The runtime: onnxruntime when it is installed, else the NumPy one (benchmarks choose one here)."""

DATA_MODEL: HassKey[LoadedModel] = HassKey(f"{DOMAIN}_model")
_DATA_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_model_lock")


async def async_get_model(hass: HomeAssistant) -> LoadedModel:
    """The instance's model, loading it on first use. Raises ModelLoadError."""
    if (model := hass.data.get(DATA_MODEL)) is not None:
        return model
    lock = hass.data.setdefault(_DATA_LOCK, asyncio.Lock())
    async with lock:
        if (model := hass.data.get(DATA_MODEL)) is None:
            model = await hass.async_add_executor_job(load_model, MODEL_PATH, BACKEND)
            hass.data[DATA_MODEL] = model
    return model
