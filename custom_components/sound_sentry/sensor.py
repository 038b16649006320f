"""Sensors for tuning: the sound level, and each class's probability (diagnostic, off by default)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from homeassistant.components.sensor import SensorEntity, SensorEntityDescription, SensorStateClass
from homeassistant.const import PERCENTAGE, EntityCategory
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.event import async_track_time_interval

from .const import EVENT_CLASSES
from .entity import SoundSentryEntity
from .runtime import Snapshot, SoundSentryConfigEntry

PARALLEL_UPDATES = 0

LEVEL_STEP_DB = 3.0
"""The sound level sensor shows a new level at once only when it differs this much from the one shown."""
LEVEL_REFRESH = timedelta(minutes=1)
"""Smaller changes of the sound level are shown at most this often (one recorder row a minute)."""


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
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """The sound level sensor and one probability sensor per class."""
    runtime = entry.runtime_data
    async_add_entities(
        [
            SoundLevelSensor(runtime, entry.entry_id, SOUND_LEVEL),
            *(SoundSentrySensor(runtime, entry.entry_id, _probability(label)) for label in EVENT_CLASSES),
        ]
    )


class SoundSentrySensor(SoundSentryEntity, SensorEntity):
    """A sensor of a Sound Sentry source; it reports the peak of each state interval."""

    entity_description: SoundSentrySensorDescription

    @property
    def native_value(self) -> float | None:
        """The latest peak, or unknown before the first windows arrive."""
        return self._current_value()

    def _current_value(self) -> float | None:
        snapshot = self.runtime.snapshot
        return self.entity_description.value_fn(snapshot) if snapshot is not None else None


class SoundLevelSensor(SoundSentrySensor):
    """The sound level, shown on a change of LEVEL_STEP_DB or more, and otherwise once per LEVEL_REFRESH.

    The runtime has a new peak every 2 s; writing each one would be ~43,000 recorder rows per source a
    day. A change of availability (the source lost or back) is always shown at once.
    """

    _shown: float | None = None
    _shown_available = False

    @property
    def native_value(self) -> float | None:
        """The level last shown."""
        return self._shown

    async def async_added_to_hass(self) -> None:
        """Also show the current level once per LEVEL_REFRESH."""
        await super().async_added_to_hass()
        self._shown, self._shown_available = self._current_value(), self.available
        self.async_on_remove(async_track_time_interval(self.hass, self._async_refresh, LEVEL_REFRESH))

    @callback
    def _async_runtime_updated(self) -> None:
        value = self._current_value()
        if (
            self.available != self._shown_available
            or value is None
            or self._shown is None
            or abs(value - self._shown) >= LEVEL_STEP_DB
        ):
            self._show(value)

    @callback
    def _async_refresh(self, _now: datetime) -> None:
        if (value := self._current_value()) != self._shown:
            self._show(value)

    @callback
    def _show(self, value: float | None) -> None:
        self._shown, self._shown_available = value, self.available
        self.async_write_ha_state()
