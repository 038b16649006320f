"""Entities through real sources: a GStreamer RTSP server and real UDP datagrams."""

from __future__ import annotations

from collections.abc import Callable
import logging
from pathlib import Path
from typing import Any

import attrs
from homeassistant.const import (
    MAJOR_VERSION,
    MINOR_VERSION,
    STATE_OFF,
    STATE_ON,
    STATE_UNAVAILABLE,
    STATE_UNKNOWN,
    Platform,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr, entity_registry as er, issue_registry as ir
from homeassistant.helpers.entity import Entity
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, snapshot_platform
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion
from syrupy.location import PyTestLocation

from custom_components.sound_sentry import entry as entry_module
from custom_components.sound_sentry.const import DOMAIN
from tests.audio import UdpMicrophone, free_udp_port, scene, write_wav
from tests.entries import rtsp_entry, udp_entry
from tests.peers import RtspServer

from .conftest import fire_repair_timer, wait_for, wait_for_retries

CAMERA = "nursery_camera"
SOUND_SENSORS = ("baby_crying", "glass_breaking", "gunshot")


def any_sound_on(hass: HomeAssistant, device: str) -> bool:
    """Whether one of the device's sound sensors is on."""
    return any(
        hass.states.get(f"binary_sensor.{device}_{sound}").state == STATE_ON for sound in SOUND_SENSORS
    )


class VersionedSnapshotExtension(HomeAssistantSnapshotExtension):
    """Home Assistant's snapshots (registry entries and states as HA serialises them), one folder per
    tested Home Assistant version: registry entries gain fields between versions."""

    @classmethod
    def dirname(cls, *, test_location: PyTestLocation) -> str:
        folder = Path(test_location.filepath).parent / "snapshots" / f"ha-{MAJOR_VERSION}.{MINOR_VERSION}"
        return str(folder)


@pytest.mark.parametrize("platform", [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR])
async def test_entities_of_a_source(
    hass: HomeAssistant,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    monkeypatch: pytest.MonkeyPatch,
    platform: Platform,
) -> None:
    """One device per source with its binary sensors, event, level and probability sensors (all enabled
    here: `snapshot_platform` wants them so), while its camera cannot be reached (unavailable)."""
    monkeypatch.setattr(entry_module, "PLATFORMS", [platform])
    # As core's entity_registry_enabled_by_default fixture: the probability sensors are enabled too.
    monkeypatch.setattr(Entity, "entity_registry_enabled_default", property(lambda _self: True))
    snapshot = snapshot.use_extension(VersionedSnapshotExtension)
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id="01SOUNDSENTRYSNAPSHOT0000",
        title=entry.title,
        unique_id="rtsp:127.0.0.1:9/stream",
        data=entry.data,
        options=entry.options,
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)
    [device] = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    info = entry.runtime_data.model.info
    # The shipped model by its name and architecture, and its version (not the file stem of its sidecar).
    assert (device.model, device.sw_version) == ("Compact (ResNetSE)", info.version)
    # The snapshot does not pin the shipped model's name and version (a new model changes them).
    assert attrs.evolve(device, model="<model name>", sw_version="<model version>") == snapshot(name="device")
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_rtsp_audio_drives_the_entities(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], data_dir: Path, tmp_path: Path
) -> None:
    """Audio flows: Listening on, a sound level, probabilities; a sound turns its sensor on and fires the event.

    The thresholds are set low so that any model, even the random test fixture, detects every class: this
    test is about the plumbing from a real stream to the entities, not about the model's accuracy.
    """
    recording = write_wav(tmp_path / "scene.wav", scene(data_dir, "glassbreak"))
    server = rtsp_server(codec="pcma", source="file", file=recording)
    entry = rtsp_entry(server.url(), threshold=0.05)
    entry.add_to_hass(hass)
    registry = er.async_get(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    # Enable one probability sensor (they are diagnostic and off by default).
    probability = f"sensor.{CAMERA}_glass_breaking_probability"
    assert registry.async_get(probability).disabled_by is er.RegistryEntryDisabler.INTEGRATION
    registry.async_update_entity(probability, disabled_by=None)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()

    events: list[Any] = []
    hass.bus.async_listen(
        "state_changed",
        lambda e: events.append(e) if e.data["entity_id"] == f"event.{CAMERA}_sound" else None,
    )
    await wait_for(hass, lambda: hass.states.get(f"binary_sensor.{CAMERA}_listening").state == STATE_ON)
    await wait_for(hass, lambda: any_sound_on(hass, CAMERA))
    await wait_for(
        hass,
        lambda: (
            hass.states.get(f"sensor.{CAMERA}_sound_level").state not in (STATE_UNKNOWN, STATE_UNAVAILABLE)
        ),
    )
    level = float(hass.states.get(f"sensor.{CAMERA}_sound_level").state)
    assert -90 < level < 0
    assert 0 <= float(hass.states.get(probability).state) <= 100
    event_state = hass.states.get(f"event.{CAMERA}_sound")
    assert event_state.attributes["event_type"] in ("babycry", "glassbreak", "gunshot")
    assert 0.05 <= event_state.attributes["confidence"] <= 1.0
    assert events

    # The camera goes away: everything but Listening is unavailable, Listening is off.
    server.stop()
    await wait_for(hass, lambda: hass.states.get(f"binary_sensor.{CAMERA}_listening").state == STATE_OFF)
    assert hass.states.get(f"binary_sensor.{CAMERA}_glass_breaking").state == STATE_UNAVAILABLE
    assert hass.states.get(f"sensor.{CAMERA}_sound_level").state == STATE_UNAVAILABLE
    # ... and comes back on the same port: audio flows again.
    server.start()
    await wait_for(
        hass, lambda: hass.states.get(f"binary_sensor.{CAMERA}_listening").state == STATE_ON, timeout_s=20
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_udp_microphone_drives_the_entities(
    hass: HomeAssistant, socket_enabled: None, data_dir: Path
) -> None:
    port = free_udp_port()
    microphone = UdpMicrophone(port, scene(data_dir, "babycry"))
    microphone.start()
    entry = udp_entry(port, threshold=0.05)
    entry.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        await wait_for(
            hass, lambda: hass.states.get("binary_sensor.hall_microphone_listening").state == STATE_ON
        )
        await wait_for(hass, lambda: any_sound_on(hass, "hall_microphone"))
        counters = entry.runtime_data.counters
        assert counters["received"] > 0
        assert counters["dropped_foreign"] == counters["dropped_malformed"] == 0
    finally:
        microphone.stop()
    # The microphone goes quiet: after the read timeout the source is down.
    await wait_for(
        hass, lambda: hass.states.get("binary_sensor.hall_microphone_listening").state == STATE_OFF
    )
    assert hass.states.get("binary_sensor.hall_microphone_baby_crying").state == STATE_UNAVAILABLE
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_repair_issue_when_a_source_stays_down(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(codec="pcmu")
    server.stop()  # the port is known, nothing serves it yet
    entry = rtsp_entry(server.url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    issues = ir.async_get(hass)
    issue_id = f"source_down_{entry.entry_id}"
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
    assert issues.async_get_issue(DOMAIN, issue_id) is None  # not before the repair delay
    fire_repair_timer(hass)  # the delay is a Home Assistant timer: no real 5 minutes
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "source_down"
    assert issue.translation_placeholders == {"name": "Nursery camera", "minutes": "5"}

    server.start()
    await wait_for(hass, lambda: issues.async_get_issue(DOMAIN, issue_id) is None, timeout_s=20)
    assert entry.runtime_data.connected
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_repair_issue_for_a_camera_without_audio(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(source="video")
    entry = rtsp_entry(server.url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    issues = ir.async_get(hass)
    issue_id = f"source_down_{entry.entry_id}"
    # The issue names the reason the source gave (the camera answered: no audio track).
    runtime = entry.runtime_data
    await wait_for(hass, lambda: runtime.last_error is not None and runtime.last_error.reason == "no_audio")
    fire_repair_timer(hass)
    await hass.async_block_till_done()
    issue = issues.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "no_audio"
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert issues.async_get_issue(DOMAIN, issue_id) is None


async def test_outage_is_logged_once_and_recovery_once(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], caplog: pytest.LogCaptureFixture
) -> None:
    server = rtsp_server(codec="pcmu")
    entry = rtsp_entry(server.url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: entry.runtime_data.connected)
    server.stop()
    await wait_for(hass, lambda: not entry.runtime_data.connected)
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
    # Several failed reconnects later...
    await wait_for_retries(hass, caplog, entry, 2)
    server.start()
    await wait_for(hass, lambda: entry.runtime_data.connected, timeout_s=20)
    records = [r for r in caplog.records if r.name.startswith("custom_components.sound_sentry")]
    lost = [r for r in records if "no audio" in r.getMessage() and "retrying" in r.getMessage()]
    back = [r for r in records if "audio is back" in r.getMessage()]
    # log-when-unavailable: once when lost and once when back, at info level.
    assert [r.levelno for r in lost] == [logging.INFO]
    assert [r.levelno for r in back] == [logging.INFO]
    assert await hass.config_entries.async_unload(entry.entry_id)
