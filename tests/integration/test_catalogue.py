"""Home Assistant's entities and the MQTT service's discovery come from one catalogue: they agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import async_get_platforms
import pytest

from custom_components.sound_sentry.const import DETECTABLE_CLASSES, DOMAIN
from custom_components.sound_sentry.engine.service.config import load_config
from custom_components.sound_sentry.engine.service.service import SoundSentryService
from tests.audio import free_udp_port
from tests.entries import udp_entry


def shown(entity: Entity) -> dict[str, Any]:
    """What Home Assistant's entity says of itself, in the words of an MQTT discovery config."""
    description = entity.entity_description
    return {
        "platform": entity.platform.domain,
        "name": entity.name,
        "device_class": entity.device_class,
        "entity_category": entity.entity_category,
        "enabled_by_default": description.entity_registry_enabled_default,
        "unit_of_measurement": getattr(entity, "native_unit_of_measurement", None),
        "state_class": getattr(entity, "state_class", None),
        "suggested_display_precision": getattr(description, "suggested_display_precision", None),
        "event_types": getattr(entity, "event_types", None),
        "unavailable_with_the_source": not getattr(description, "always_available", False),
    }


def discovered(topic: str, config: dict[str, Any]) -> dict[str, Any]:
    """The same, of a discovery config."""
    return {
        "platform": topic.split("/")[1],
        "name": config["name"],
        "device_class": config.get("device_class"),
        "entity_category": config.get("entity_category"),
        "enabled_by_default": config.get("enabled_by_default", True),
        "unit_of_measurement": config.get("unit_of_measurement"),
        "state_class": config.get("state_class"),
        "suggested_display_precision": config.get("suggested_display_precision"),
        "event_types": config.get("event_types"),
        "unavailable_with_the_source": len(config["availability"]) == 2,
    }


async def test_home_assistant_and_mqtt_discovery_show_the_same_entities(
    hass: HomeAssistant, socket_enabled: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The same model and sounds: the same entities, entity by entity, on the same kind of device."""
    # Every entity added, the disabled ones too (their descriptions still say they are disabled).
    monkeypatch.setattr(Entity, "entity_registry_enabled_default", property(lambda _self: True))
    entry = udp_entry(free_udp_port(), enabled_classes=list(DETECTABLE_CLASSES))
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    runtime = entry.runtime_data
    ha = {
        entity.entity_description.key: entity
        for platform in async_get_platforms(hass, DOMAIN)
        for entity in platform.entities.values()
    }

    (tmp_path / "sound-sentry.yaml").write_text(
        f"""
mqtt: {{host: 127.0.0.1}}
sources:
  - {{name: {entry.title}, url: 'rtsp://127.0.0.1:9/stream', model: compact}}
"""
    )
    service = SoundSentryService(load_config(tmp_path / "sound-sentry.yaml"))
    [settings] = service.config.sources
    monitor = service.monitor(settings, runtime.model)
    configs = service.discovery_configs(settings, monitor)
    prefix = f"{service.node_id}_{settings.object_id}_"
    mqtt = {config["unique_id"].removeprefix(prefix): (topic, config) for topic, config in configs.items()}

    assert list(mqtt) == [spec.key for spec in runtime.monitor.entities]
    assert set(ha) == set(mqtt)
    for key, entity in ha.items():
        assert shown(entity) == discovered(*mqtt[key]), key
    [device] = {
        (c["device"]["manufacturer"], c["device"]["model"], c["device"]["sw_version"])
        for c in configs.values()
    }
    info = next(iter(ha.values())).device_info
    assert info is not None
    assert device == (info["manufacturer"], info["model"], info["sw_version"])
    assert device[1:] == ("Compact (ResNetSE)", runtime.model.info.version)
    assert await hass.config_entries.async_unload(entry.entry_id)
