"""Sensors for tuning: the sound level, and each class's probability (diagnostic, off by default)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import SensorEntity, SensorEntityDescription, SensorStateClass
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .engine.entities import EntitySpec, Shows
from .engine.monitor import StateUpdate
from .entity import SoundSentryEntity, description_fields
from .runtime import SoundSentryConfigEntry

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class SoundSentrySensorDescription(SensorEntityDescription):
    """How a sensor reads the source's state (`SourceMonitor`'s latest `StateUpdate`)."""

    value_fn: Callable[[StateUpdate], float | None]


def _probability(label: str) -> Callable[[StateUpdate], float | None]:
    return lambda state: None if state.peaks is None else round(100 * state.peaks.probabilities[label], 1)


def description(spec: EntitySpec) -> SoundSentrySensorDescription:
    """A sensor of the engine's catalogue: the sound level, or a sound's probability."""
    return SoundSentrySensorDescription(
        **description_fields(spec),
        native_unit_of_measurement=spec.unit,
        state_class=SensorStateClass(spec.state_class) if spec.state_class else None,
        suggested_display_precision=spec.display_precision,
        value_fn=(lambda state: state.level_dbfs)
        if spec.shows is Shows.LEVEL
        else _probability(str(spec.label)),
    )


async def async_setup_entry(
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The sound level sensor and one probability sensor per sound of the model."""
    runtime = entry.runtime_data
    async_add_entities(
        (SoundLevelSensor if spec.shows is Shows.LEVEL else SoundSentrySensor)(
            runtime, entry.entry_id, description(spec)
        )
        for spec in runtime.monitor.entities
        if spec.platform == "sensor"
    )


class SoundSentrySensor(SoundSentryEntity, SensorEntity):
    """A sensor of a Sound Sentry source; it shows the peak of each state interval."""

    entity_description: SoundSentrySensorDescription

    @property
    def native_value(self) -> float | None:
        """The latest value, or unknown before the first windows arrive."""
        return self.entity_description.value_fn(self.runtime.state)


class SoundLevelSensor(SoundSentrySensor):
    """The sound level, written only when the level shown or its availability changes.

    The monitor's 3 dB rule decides when the level shown changes: not with every state interval.
    """

    _written: tuple[float | None, bool] | None = None

    async def async_added_to_hass(self) -> None:
        """What Home Assistant writes when the entity is added counts as written."""
        await super().async_added_to_hass()
        self._written = (self.native_value, self.available)

    @callback
    def _async_runtime_updated(self) -> None:
        shown = (self.native_value, self.available)
        if shown != self._written:
            self._written = shown
            self.async_write_ha_state()
