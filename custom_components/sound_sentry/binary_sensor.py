"""Binary sensors: one per sound class (on while the sound goes on), and whether the source is live."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .entity import SoundSentryEntity
from .runtime import SoundSentryConfigEntry, SoundSentryRuntime

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SoundSentryBinarySensorDescription(BinarySensorEntityDescription):
    """How a binary sensor reads the runtime."""

    is_on_fn: Callable[[SoundSentryRuntime], bool]
    always_available: bool = False


ALARM_DEVICE_CLASSES = {
    "smoke_alarm": BinarySensorDeviceClass.SMOKE,
    "co_alarm": BinarySensorDeviceClass.CO,
}


def _sound(label: str) -> SoundSentryBinarySensorDescription:
    return SoundSentryBinarySensorDescription(
        key=label,
        translation_key=label,
        device_class=ALARM_DEVICE_CLASSES.get(label, BinarySensorDeviceClass.SOUND),
        is_on_fn=lambda runtime: runtime.active.get(label, False),
    )


LISTENING = SoundSentryBinarySensorDescription(
    key="listening",
    translation_key="listening",
    device_class=BinarySensorDeviceClass.CONNECTIVITY,
    entity_category=EntityCategory.DIAGNOSTIC,
    is_on_fn=lambda runtime: runtime.connected,
    always_available=True,
)


async def async_setup_entry(
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """One sound sensor per enabled class (smoke and CO alarms included), and the Listening sensor."""
    runtime = entry.runtime_data
    descriptions = [_sound(label) for label in runtime.detected_labels]
    async_add_entities(
        SoundSentryBinarySensor(runtime, entry.entry_id, description)
        for description in [*descriptions, LISTENING]
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
