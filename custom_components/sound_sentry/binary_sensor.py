"""Binary sensors: one per sound class (on while the sound goes on), and whether the source is live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .engine.entities import EntitySpec, Shows
from .entity import SoundSentryEntity, description_fields
from .runtime import SoundSentryConfigEntry, SoundSentryRuntime

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SoundSentryBinarySensorDescription(BinarySensorEntityDescription):
    """How a binary sensor reads the runtime."""

    is_on_fn: Callable[[SoundSentryRuntime], bool]
    always_available: bool = False


def description(spec: EntitySpec) -> SoundSentryBinarySensorDescription:
    """A binary sensor of the engine's catalogue: a sound's, or Listening."""
    label = spec.label
    return SoundSentryBinarySensorDescription(
        **description_fields(spec),
        device_class=BinarySensorDeviceClass(spec.device_class) if spec.device_class else None,
        is_on_fn=(lambda runtime: runtime.connected)
        if spec.shows is Shows.LISTENING
        else (lambda runtime: runtime.state.active.get(str(label), False)),
        always_available=spec.always_available,
    )


async def async_setup_entry(
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """One sound sensor per enabled class (smoke and CO alarms included), and the Listening sensor."""
    runtime = entry.runtime_data
    async_add_entities(
        SoundSentryBinarySensor(runtime, entry.entry_id, description(spec))
        for spec in runtime.monitor.entities
        if spec.platform == "binary_sensor"
    )


class SoundSentryBinarySensor(SoundSentryEntity, BinarySensorEntity):
    """A binary sensor of a Sound Sentry source."""

    entity_description: SoundSentryBinarySensorDescription

    @property
    def available(self) -> bool:
        """The Listening sensor stays available to show that the source is down."""
        return self.entity_description.always_available or super().available

    @property
    def is_on(self) -> bool:
        """Whether the sound is going on (or the source is live)."""
        return self.entity_description.is_on_fn(self.runtime)
