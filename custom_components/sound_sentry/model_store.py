"""The shipped models, each loaded once per Home Assistant instance and shared by the sources using it."""

from __future__ import annotations

import asyncio

from homeassistant.core import HomeAssistant
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN
from .engine.backends import BackendChoice
from .engine.model import LoadedModel, load_model, model_path

BACKEND: BackendChoice = "auto"
"""The runtime: onnxruntime when it is installed, else the NumPy one."""

DATA_MODELS: HassKey[dict[str, LoadedModel]] = HassKey(f"{DOMAIN}_models")
_DATA_LOCK: HassKey[asyncio.Lock] = HassKey(f"{DOMAIN}_model_lock")


async def async_get_model(hass: HomeAssistant, name: str) -> LoadedModel:
    """A shipped model by name (`accurate`, `compact`), loading it on first use. Raises ModelLoadError."""
    models = hass.data.setdefault(DATA_MODELS, {})
    if (model := models.get(name)) is not None:
        return model
    lock = hass.data.setdefault(_DATA_LOCK, asyncio.Lock())
    async with lock:
        if (model := models.get(name)) is None:
            model = await hass.async_add_executor_job(load_model, model_path(name), BACKEND)
            models[name] = model
    return model
