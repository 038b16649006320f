"""Sensors for tuning: the sound level, and each class's probability (diagnostic, off by default)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import SensorEntity, SensorEntityDescription, SensorStateClass
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .const import EVENT_CLASSES
from .entity import SoundSentryEntity
from .runtime import Snapshot, SoundSentryConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SoundSentrySensorDescription(SensorEntityDescription):
    """How a sensor reads the runtime's latest snapshot."""

    value_fn: Callable[[Snapshot], float]


SOUND_LEVEL = SoundSentrySensorDescription(
    key="sound_level",
    translation_key="sound_level",
    native_unit_of_measurement="dBFS",
    state_class=SensorStateClass.MEASUREMENT,
    suggested_display_precision=0,
    value_fn=lambda snapshot: round(snapshot.dbfs, 1),
)


def _probability(label: str) -> SoundSentrySensorDescription:
    return SoundSentrySensorDescription(
        key=f"{label}_probability",
        translation_key=f"{label}_probability",
        native_unit_of_measurement=PERCENTAGE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        suggested_display_precision=0,
        value_fn=lambda snapshot: round(100 * snapshot.probabilities[label], 1),
    )


async def async_setup_entry(
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddEntitiesCallback
) -> None:
    """The sound level sensor and one probability sensor per class."""
    runtime = entry.runtime_data
    descriptions = [SOUND_LEVEL, *(_probability(label) for label in EVENT_CLASSES)]
    async_add_entities(
        SoundSentrySensor(runtime, entry.entry_id, description) for description in descriptions
    )


class SoundSentrySensor(SoundSentryEntity, SensorEntity):
    """A sensor of a Sound Sentry source; it reports the peak of each state interval."""

    entity_description: SoundSentrySensorDescription

    @property
    def native_value(self) -> float | None:
        """The latest peak, or unknown before the first windows arrive."""
        snapshot = self.runtime.snapshot
        return self.entity_description.value_fn(snapshot) if snapshot is not None else None
