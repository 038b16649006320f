"""The base entity of Sound Sentry: one device per audio source, state pushed by the runtime."""

from __future__ import annotations

from typing import Any

from homeassistant.const import EntityCategory
from homeassistant.core import callback
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity, EntityDescription

from .const import DOMAIN
from .engine.entities import MANUFACTURER, EntitySpec, device_model
from .runtime import SoundSentryRuntime


def description_fields(spec: EntitySpec) -> dict[str, Any]:
    """What every platform's EntityDescription takes from the engine's catalogue."""
    return {
        "key": spec.key,
        "translation_key": spec.translation_key,
        "entity_category": EntityCategory(spec.entity_category) if spec.entity_category else None,
        "entity_registry_enabled_default": spec.enabled_by_default,
        # A taught sound's entities are named by the user's name for it.
        "translation_placeholders": None if spec.sound_name is None else {"sound": spec.sound_name},
    }


class SoundSentryEntity(Entity):
    """An entity of one source's device; it is written whenever the runtime's state changes."""

    _attr_has_entity_name = True
    _attr_should_poll = False

    def __init__(self, runtime: SoundSentryRuntime, unique_id: str, description: EntityDescription) -> None:
        self.runtime = runtime
        self.entity_description = description
        self._attr_unique_id = f"{unique_id}_{description.key}"
        info = runtime.model.info
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, unique_id)},
            name=runtime.title,
            manufacturer=MANUFACTURER,
            model=device_model(info),
            sw_version=info.version,
        )

    @property
    def available(self) -> bool:
        """Unavailable while the source is down."""
        return self.runtime.connected

    async def async_added_to_hass(self) -> None:
        """Follow the runtime's state."""
        await super().async_added_to_hass()
        self.async_on_remove(self.runtime.async_add_listener(self._async_runtime_updated))

    @callback
    def _async_runtime_updated(self) -> None:
        """The runtime's state changed: show it."""
        self.async_write_ha_state()
