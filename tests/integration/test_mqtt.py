"""The MQTT service and Home Assistant's own MQTT integration, both on a real Mosquitto broker.

The service (in this process, as `sound-sentry serve` runs it) listens to a real RTSP stream that plays
a gunshot and then a smoke alarm (T3); Home Assistant's MQTT integration, connected to the same broker,
creates the entities from the service's discovery messages. A second source that is down leaves its own
entities unavailable and nobody else's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from unittest.mock import patch

from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr, entity_registry as er
import numpy as np
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry.engine.service.config import load_config
from custom_components.sound_sentry.engine.service.service import SoundSentryService
from tests.audio import T3_PIEZO, alarm_signal, mix_at_snr, write_wav
from tests.peers import Mosquitto, RtspServer, free_tcp_port

from .conftest import DetectionPlan, wait_for

NURSERY = "nursery_camera"


async def test_home_assistant_gets_the_service_entities_states_and_events_over_mqtt(
    hass: HomeAssistant,
    *,
    socket_enabled: None,
    mosquitto: Callable[..., Mosquitto],
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    tmp_path: Path,
) -> None:
    broker = mosquitto()
    scene = detection_plan.scenes["gunshot"]
    alarm = mix_at_snr(
        alarm_signal(T3_PIEZO, 2),
        detection_plan.background,
        10.0,
        lead_s=1.0,
        tail_s=2 * T3_PIEZO.cycle_s + 4,
    )
    wav = write_wav(tmp_path / "scene.wav", np.concatenate([scene.samples, alarm]))
    server = rtsp_server(source="file", file=wav)
    thresholds = ", ".join(f"{label}: {value}" for label, value in detection_plan.thresholds.items())
    (tmp_path / "sound-sentry.yaml").write_text(
        f"""
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
sources:
  - {{name: Nursery camera, url: '{server.url()}', thresholds: {{{thresholds}}}}}
  - {{name: Garage, url: 'rtsp://127.0.0.1:{free_tcp_port()}/stream'}}
"""
    )
    service = SoundSentryService(load_config(tmp_path / "sound-sentry.yaml"))

    # Home Assistant's MQTT integration, on the same broker (version 1.2: both tested versions take it).
    mqtt_entry = MockConfigEntry(
        domain="mqtt", data={"broker": "127.0.0.1", "port": broker.port}, version=1, minor_version=2
    )
    mqtt_entry.add_to_hass(hass)
    # MQTT reads configuration.yaml for manually configured entities: the test config has no such file.
    with patch("homeassistant.config.async_hass_config_yaml", return_value={}):
        assert await hass.config_entries.async_setup(mqtt_entry.entry_id)
    await hass.async_block_till_done()

    seen: dict[str, list[str]] = {}
    fired: list[dict[str, object]] = []

    @callback
    def record(event: Event) -> None:
        entity_id, new = event.data["entity_id"], event.data["new_state"]
        if new is None:
            return
        states = seen.setdefault(entity_id, [])
        if not states or states[-1] != new.state:
            states.append(new.state)
        if entity_id == f"event.{NURSERY}_sound" and new.attributes.get("event_type"):
            fired.append(dict(new.attributes))

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    await hass.async_add_executor_job(service.start)
    try:
        await wait_for(hass, lambda: "on" in seen.get(f"binary_sensor.{NURSERY}_gunshot", []), 60)
        await wait_for(hass, lambda: "on" in seen.get(f"binary_sensor.{NURSERY}_smoke_alarm", []), 60)
        await wait_for(hass, lambda: {a["event_type"] for a in fired} >= {"gunshot", "smoke_alarm"}, 15)
        # The source that is down: its entities are unavailable, the camera's are not.
        await wait_for(hass, lambda: hass.states.get("binary_sensor.garage_gunshot") is not None, 15)
        await wait_for(
            hass, lambda: hass.states.get("binary_sensor.garage_gunshot").state == STATE_UNAVAILABLE, 30
        )
        assert hass.states.get("binary_sensor.garage_listening").state == "off"
        assert hass.states.get(f"binary_sensor.{NURSERY}_gunshot").state != STATE_UNAVAILABLE
        assert hass.states.get(f"binary_sensor.{NURSERY}_listening").state == "on"
    finally:
        await hass.async_add_executor_job(service.stop)

    gunshot = next(a for a in fired if a["event_type"] == "gunshot")
    assert 0 < float(gunshot["confidence"]) <= 1  # type: ignore[arg-type]
    smoke = next(a for a in fired if a["event_type"] == "smoke_alarm")
    assert smoke["frequency_hz"] == round(T3_PIEZO.frequency_hz)
    assert not any(
        "on" in seen.get(f"binary_sensor.{NURSERY}_{label}", []) for label in ("babycry", "glassbreak")
    )

    # One device per source, its entities made by discovery; the probabilities disabled by default.
    entities = er.async_get(hass)
    gunshot_entity = entities.async_get(f"binary_sensor.{NURSERY}_gunshot")
    assert gunshot_entity is not None
    assert gunshot_entity.device_id is not None
    device = dr.async_get(hass).async_get(gunshot_entity.device_id)
    assert device is not None
    assert device.name == "Nursery camera"
    assert device.identifiers == {("mqtt", f"sound_sentry_{NURSERY}")}
    assert len(er.async_entries_for_device(entities, device.id, include_disabled_entities=True)) == 11
    assert hass.states.get(f"binary_sensor.{NURSERY}_smoke_alarm").attributes["device_class"] == "smoke"
    assert (
        hass.states.get(f"binary_sensor.{NURSERY}_co_alarm").attributes["device_class"] == "carbon_monoxide"
    )
    assert hass.states.get(f"sensor.{NURSERY}_sound_level").attributes["unit_of_measurement"] == "dBFS"
    probability = entities.async_get(f"sensor.{NURSERY}_gunshot_probability")
    assert probability is not None
    assert probability.disabled_by == er.RegistryEntryDisabler.INTEGRATION
    assert (
        hass.states.get(f"binary_sensor.{NURSERY}_listening").state == STATE_UNAVAILABLE
    )  # service offline now
    await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
