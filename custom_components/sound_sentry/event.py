"""The event entity: fires when a sound starts, with the class and its confidence (an alarm: its tone)."""

from __future__ import annotations

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from .engine.entities import EntitySpec
from .engine.events import DetectionEvent, event_data
from .entity import SoundSentryEntity, description_fields
from .runtime import SoundSentryConfigEntry

PARALLEL_UPDATES = 0


def description(spec: EntitySpec) -> EventEntityDescription:
    """The event entity of the engine's catalogue."""
    return EventEntityDescription(**description_fields(spec), event_types=list(spec.event_types))


async def async_setup_entry(
    hass: HomeAssistant, entry: SoundSentryConfigEntry, async_add_entities: AddConfigEntryEntitiesCallback
) -> None:
    """One event entity per source."""
    runtime = entry.runtime_data
    async_add_entities(
        SoundSentryEventEntity(runtime, entry.entry_id, description(spec))
        for spec in runtime.monitor.entities
        if spec.platform == "event"
    )


class SoundSentryEventEntity(SoundSentryEntity, EventEntity):
    """Fires the class of each sound that starts, with what is known of it.

    `babycry`, `glassbreak` or `gunshot` with `confidence` (0..1); `smoke_alarm` or `co_alarm` with the
    tone's `frequency_hz` and the `cycles` of the pattern heard. With clips on, also `clip`: the media-source
    id of the sound's clip (its file is written when the sound ends).
    """

    async def async_added_to_hass(self) -> None:
        """Follow the runtime's events."""
        await super().async_added_to_hass()
        self.async_on_remove(self.runtime.async_add_event_listener(self._async_handle_event))

    @callback
    def _async_handle_event(self, event: DetectionEvent) -> None:
        if event.active:
            self._trigger_event(event.label, event_data(event, self.runtime.clip_id(event)))
            self.async_write_ha_state()
