"""Smoke and CO alarms through a real RTSP server (PCMU and AAC) into a real Home Assistant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from homeassistant.const import EVENT_STATE_CHANGED
from homeassistant.core import Event, HomeAssistant, callback
import numpy as np
import pytest

from custom_components.sound_sentry.const import ALARM_CLASSES, EVENT_CLASSES
from tests.audio import (
    RATE_HZ,
    T3_PIEZO,
    T4_PIEZO,
    alarm_signal,
    background_bed,
    mix_at_snr,
    write_wav,
)
from tests.entries import rtsp_entry
from tests.peers import RtspServer

from .conftest import wait_for

CYCLES = 2
SNR_DB = 10.0


def alarm_recording(data_dir: Path, path: Path) -> Path:
    """Room background with two cycles of a smoke alarm (T3, 3.1 kHz), then two of a CO alarm (T4,
    3.3 kHz), then enough background for both to end (they end two cycles after their last)."""
    bed = background_bed(data_dir, 60.0, gain=1.0, clips=20)
    smoke = alarm_signal(T3_PIEZO, CYCLES)
    co = alarm_signal(replace(T4_PIEZO, frequency_hz=3300.0), CYCLES)
    tail_s = 2 * T4_PIEZO.cycle_s + 4.0
    samples = mix_at_snr(np.concatenate([smoke, co]), bed, SNR_DB, lead_s=1.0, tail_s=tail_s)
    assert samples.size / RATE_HZ < 60
    return write_wav(path, samples)


@pytest.mark.parametrize("codec", ["pcmu", "aac"])
async def test_smoke_and_co_alarms_turn_their_sensors_on_fire_the_event_and_turn_off(
    hass: HomeAssistant,
    *,
    socket_enabled: None,
    rtsp_server: Callable[..., RtspServer],
    data_dir: Path,
    tmp_path: Path,
    codec: str,
) -> None:
    server = rtsp_server(codec=codec, source="file", file=alarm_recording(data_dir, tmp_path / "alarms.wav"))
    entry = rtsp_entry(server.url(), threshold=0.999, enabled_classes=[*EVENT_CLASSES, *ALARM_CLASSES])
    sensors = {
        "smoke_alarm": "binary_sensor.nursery_camera_smoke_alarm",
        "co_alarm": "binary_sensor.nursery_camera_co_alarm",
    }
    seen: dict[str, list[str]] = {entity_id: [] for entity_id in sensors.values()}
    fired: list[dict[str, object]] = []

    @callback
    def record(event: Event) -> None:
        entity_id, new = event.data["entity_id"], event.data["new_state"]
        if new is None:
            return
        if entity_id in seen and (not seen[entity_id] or seen[entity_id][-1] != new.state):
            seen[entity_id].append(new.state)
        if entity_id == "event.nursery_camera_sound" and new.attributes.get("event_type") in ALARM_CLASSES:
            fired.append(dict(new.attributes))

    hass.bus.async_listen(EVENT_STATE_CHANGED, record)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    smoke = hass.states.get(sensors["smoke_alarm"])
    assert smoke.attributes["device_class"] == "smoke"
    assert hass.states.get(sensors["co_alarm"]).attributes["device_class"] == "carbon_monoxide"

    def went_on_and_off(entity_id: str) -> bool:
        states = [s for s in seen[entity_id] if s in ("on", "off")]
        return "on" in states and states[-1] == "off"

    # The whole recording plays in real time: the CO alarm ends last, two T4 cycles after its last.
    await wait_for(hass, lambda: all(went_on_and_off(e) for e in sensors.values()), timeout_s=60)
    for entity_id in sensors.values():
        states = [s for s in seen[entity_id] if s in ("on", "off")]
        assert states.count("on") == 1, (entity_id, seen[entity_id])
    assert [event["event_type"] for event in fired] == ["smoke_alarm", "co_alarm"]
    for event, frequency in zip(fired, (3100, 3300), strict=True):
        assert abs(int(event["frequency_hz"]) - frequency) <= 0.03 * frequency, event  # type: ignore[call-overload]
        assert event["cycles"] == 2
        assert "confidence" not in event
    assert await hass.config_entries.async_unload(entry.entry_id)
