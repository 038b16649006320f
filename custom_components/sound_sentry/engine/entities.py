"""Every entity of a source, declared once, and its device: for Home Assistant and MQTT discovery alike.

Home Assistant's platforms and the MQTT service's discovery both build their entities from here. Names
and icons are not here: they belong to the translation key, in the integration's `translations/en.json`
and `icons.json` (Home Assistant reads them there; the service reads the same files, `entity_texts()`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
import json
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

from .model import MODELS_DIR, SHIPPED_MODELS

if TYPE_CHECKING:
    from .model_info import ModelInfo

MANUFACTURER: Final = "Sound Sentry"
ALARM_DEVICE_CLASSES: Final = {"smoke_alarm": "smoke", "co_alarm": "carbon_monoxide"}
"""Binary sensor device classes of the alarm patterns; every other sound is `sound`."""
ARCHITECTURE_NAMES: Final = {"mobilenet": "MobileNet", "resnetse": "ResNetSE"}
"""How the device's model names each architecture (`ModelInfo.architecture`)."""
INTEGRATION_DIR = Path(__file__).resolve().parents[1]
"""The integration around the engine: its translations and icons name the entities."""


class Shows(StrEnum):
    """What an entity shows of its source: each front end reads it from where it keeps that."""

    SOUND = "sound"
    """On while its sound (`EntitySpec.label`) goes on."""
    LISTENING = "listening"
    """On while the source's audio flows."""
    EVENTS = "events"
    """Fires each sound or alarm that starts (`EntitySpec.event_types`)."""
    LEVEL = "level"
    """The sound level in dBFS, as the monitor says to show it (`StateUpdate.level_dbfs`)."""
    PROBABILITY = "probability"
    """Its sound's peak probability over the last state interval, in %."""


@dataclass(frozen=True, kw_only=True, slots=True)
class EntitySpec:
    """One entity of a source, as every front end declares it."""

    key: str
    """Unique within a source: the end of the entity's unique id (and of its MQTT object id)."""
    platform: Literal["binary_sensor", "event", "sensor"]
    translation_key: str
    """Its name (`translations/en.json`) and icon (`icons.json`)."""
    sound_name: str | None = None
    """A taught sound's name, as its user gave it: the `{sound}` of its translated name."""
    shows: Shows
    label: str | None = None
    """The sound or alarm it is about, for SOUND and PROBABILITY."""
    device_class: str | None = None
    entity_category: Literal["diagnostic"] | None = None
    enabled_by_default: bool = True
    unit: str | None = None
    state_class: Literal["measurement"] | None = None
    display_precision: int | None = None
    event_types: tuple[str, ...] = ()
    """What an EVENTS entity fires."""
    always_available: bool = False
    """Available while the source is down (it is what says so)."""


TAUGHT_TRANSLATION_KEY: Final = "taught"
"""The translation key of every taught sound's binary sensor (its name is the sound's, `{sound}`)."""


def sound_sensor(label: str, sound_name: str | None = None) -> EntitySpec:
    """The binary sensor of a sound or an alarm, on while it goes on (`sound_name`: a taught sound's)."""
    return EntitySpec(
        key=label,
        platform="binary_sensor",
        translation_key=label if sound_name is None else TAUGHT_TRANSLATION_KEY,
        sound_name=sound_name,
        shows=Shows.SOUND,
        label=label,
        device_class=ALARM_DEVICE_CLASSES.get(label, "sound"),
    )


LISTENING: Final = EntitySpec(
    key="listening",
    platform="binary_sensor",
    translation_key="listening",
    shows=Shows.LISTENING,
    device_class="connectivity",
    entity_category="diagnostic",
    always_available=True,
)


def sound_event(labels: Sequence[str]) -> EntitySpec:
    """The event entity: fires the sound or alarm that starts."""
    return EntitySpec(
        key="sound", platform="event", translation_key="sound", shows=Shows.EVENTS, event_types=tuple(labels)
    )


SOUND_LEVEL: Final = EntitySpec(
    key="sound_level",
    platform="sensor",
    translation_key="sound_level",
    shows=Shows.LEVEL,
    unit="dBFS",
    state_class="measurement",
    display_precision=0,
)
"""No entity category: it is on every source's page, for automations on noise as much as for tuning."""


def probability_sensor(label: str, sound_name: str | None = None) -> EntitySpec:
    """A sound's peak probability: diagnostic and disabled by default (it changes every interval)."""
    return EntitySpec(
        key=f"{label}_probability",
        platform="sensor",
        translation_key=f"{label}_probability"
        if sound_name is None
        else f"{TAUGHT_TRANSLATION_KEY}_probability",
        sound_name=sound_name,
        shows=Shows.PROBABILITY,
        label=label,
        unit="%",
        state_class="measurement",
        entity_category="diagnostic",
        enabled_by_default=False,
        display_precision=0,
    )


def event_classes(info: ModelInfo) -> tuple[str, ...]:
    """The sounds a model detects: the labels it has a default threshold for (not its background)."""
    return tuple(label for label in info.labels if label in info.thresholds)


def source_entities(
    info: ModelInfo, labels: Sequence[str], taught: Mapping[str, str] | None = None
) -> tuple[EntitySpec, ...]:
    """Every entity of a source whose model is `info` and that detects `labels` (sounds, then alarms).

    A binary sensor each, Listening, the event entity, the sound level, and a probability sensor per sound
    the model has (enabled or not: they are for tuning) and per taught sound (`taught`: label -> the
    user's name; each of them is among `labels`).
    """
    taught = taught or {}
    return (
        *(sound_sensor(label, taught.get(label)) for label in labels),
        LISTENING,
        sound_event(labels),
        SOUND_LEVEL,
        *(probability_sensor(label) for label in event_classes(info)),
        *(probability_sensor(label, name) for label, name in taught.items()),
    )


def device_model(info: ModelInfo) -> str:
    """The device's model: "Accurate (MobileNet)" for a shipped model, else the sidecar's name."""
    for name, file in SHIPPED_MODELS.items():
        if info.path == MODELS_DIR / file:
            return f"{name.capitalize()} ({ARCHITECTURE_NAMES.get(info.architecture, info.architecture)})"
    return info.name


@dataclass(frozen=True, slots=True)
class EntityTexts:
    """The names and icons of the entities, by platform and translation key (empty where unreadable)."""

    names: dict[str, dict[str, str]]
    icons: dict[str, dict[str, str]]
    """The default icon (mdi:...) of each."""

    def name(self, spec: EntitySpec) -> str:
        """The English name of an entity (its key if the translations lack it); a taught sound's named."""
        name = self.names.get(spec.platform, {}).get(spec.translation_key, spec.key)
        return name if spec.sound_name is None else name.replace("{sound}", spec.sound_name)

    def icon(self, spec: EntitySpec) -> str | None:
        """The default icon of an entity, if icons.json has one."""
        return self.icons.get(spec.platform, {}).get(spec.translation_key)


def entity_texts() -> EntityTexts:
    """The entities' English names and default icons, from the integration's own files (blocking)."""

    def read(name: str, field: str) -> dict[str, dict[str, str]]:
        try:
            raw = json.loads((INTEGRATION_DIR / name).read_text(encoding="utf-8"))["entity"]
            return {
                platform: {key: value[field] for key, value in keys.items() if field in value}
                for platform, keys in raw.items()
            }
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return {}

    return EntityTexts(names=read("translations/en.json", "name"), icons=read("icons.json", "default"))
