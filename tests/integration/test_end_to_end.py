"""End to end: real recordings through a real camera stream (each codec) or a real UDP socket, an entry
made by the config flow, and the entities of a real Home Assistant core.

Which clips and thresholds: `detection_plan` (conftest) picks, at test time, test-split clips that the
installed model detects offline, and per-class thresholds half-way between them and everything that
must not trigger. These tests then prove that the whole product (RTSP or UDP, PyAV decoding, the
source thread, the runtime, the entities) detects the same sounds as the engine alone, and only them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant import config_entries
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_NAME, CONF_PORT, CONF_URL, EVENT_STATE_CHANGED, STATE_OFF, STATE_ON
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.const import (
    CONF_CHANNELS,
    CONF_DEVICE_ADDRESS,
    CONF_SAMPLE_BITS,
    CONF_SAMPLE_RATE,
    CONF_SENSITIVITY_PREFIX,
    CONF_THRESHOLD_PREFIX,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_CLASSES,
)
from tests.audio import UdpMicrophone, free_udp_port, write_wav
from tests.peers import RtspServer

from .conftest import DetectionPlan, wait_for

pytestmark = pytest.mark.usefixtures("no_blocking_calls")

# Every codec carries one class; together they cover every class at least once.
CODEC_SOUNDS = {
    "pcmu": "babycry",
    "pcma": "glassbreak",
    "aac": "gunshot",
    "opus": "glassbreak",
    "l16": "babycry",
}


class Watcher:
    """Every state change of an entry's sound sensors and event entity, in order."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry) -> None:
        registry = er.async_get(hass)
        self.sensors = {
            registry.async_get_entity_id("binary_sensor", DOMAIN, f"{entry.entry_id}_{label}"): label
            for label in EVENT_CLASSES
        }
        self.event_entity = registry.async_get_entity_id("event", DOMAIN, f"{entry.entry_id}_sound")
        self.sound_changes: list[tuple[str, str]] = []
        self.fired: list[dict[str, Any]] = []
        self._unsubscribe = hass.bus.async_listen(EVENT_STATE_CHANGED, self._on_change)

    @callback
    def _on_change(self, event: Event[Any]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if new is None or (
            old is not None and new.state == old.state and event.data["entity_id"] in self.sensors
        ):
            return
        if (label := self.sensors.get(event.data["entity_id"])) is not None:
            self.sound_changes.append((label, new.state))
        elif event.data["entity_id"] == self.event_entity and new.attributes.get("event_type"):
            self.fired.append(dict(new.attributes))

    def ons(self) -> list[str]:
        return [label for label, state in self.sound_changes if state == STATE_ON]

    def stop(self) -> None:
        self._unsubscribe()


async def create_entry(
    hass: HomeAssistant, step: str, form: dict[str, Any], plan: DetectionPlan
) -> ConfigEntry:
    """Add the source through the config flow, as a user would, with the plan's thresholds."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": step})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
    assert result["type"] is FlowResultType.FORM, result.get("errors")
    assert result["step_id"] == "thresholds"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {f"{CONF_SENSITIVITY_PREFIX}{label}": "custom" for label in plan.thresholds}
    )
    assert result["step_id"] == "custom_thresholds"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {f"{CONF_THRESHOLD_PREFIX}{label}": t for label, t in plan.thresholds.items()}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    entry: ConfigEntry = result["result"]
    assert entry.state is config_entries.ConfigEntryState.LOADED
    return entry


async def assert_detects(hass: HomeAssistant, entry: ConfigEntry, label: str, plan: DetectionPlan) -> None:
    """The scene's sound turns its sensor on, fires the event, turns the sensor off; nothing else turns on."""
    watcher = Watcher(hass, entry)
    scene = plan.scenes[label]
    loop_s = scene.samples.size / 8000
    try:
        # Up to two passes of the looping scene: a UDP microphone was already mid-scene when we joined.
        await wait_for(hass, lambda: label in watcher.ons(), timeout_s=2 * loop_s + 10)
        await wait_for(hass, lambda: watcher.sound_changes[-1] == (label, STATE_OFF), timeout_s=loop_s)
    finally:
        watcher.stop()
    assert set(watcher.ons()) == {label}, f"{watcher.sound_changes} (plan:\n{plan.table})"
    assert watcher.fired, "the event entity did not fire"
    assert {fired["event_type"] for fired in watcher.fired} == {label}
    assert plan.thresholds[label] <= watcher.fired[0]["confidence"] <= 1


@pytest.mark.parametrize(("codec", "label"), CODEC_SOUNDS.items())
async def test_rtsp_camera_detects_a_real_sound(
    hass: HomeAssistant,
    *,
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    tmp_path: Path,
    codec: str,
    label: str,
) -> None:
    wav = write_wav(tmp_path / "scene.wav", detection_plan.scenes[label].samples)
    server = rtsp_server(codec=codec, source="file", file=wav)
    entry = await create_entry(
        hass,
        "rtsp",
        {CONF_NAME: f"{codec} camera", CONF_URL: server.url(), CONF_TRANSPORT: "tcp"},
        detection_plan,
    )
    await assert_detects(hass, entry, label, detection_plan)
    assert await hass.config_entries.async_unload(entry.entry_id)


def udp_form(port: int) -> dict[str, Any]:
    return {
        CONF_NAME: "Hall microphone",
        CONF_PORT: port,
        CONF_DEVICE_ADDRESS: "127.0.0.1",
        CONF_SAMPLE_RATE: "16000",
        CONF_SAMPLE_BITS: "16",
        CONF_CHANNELS: "1",
    }


async def test_udp_microphone_detects_a_real_sound(
    hass: HomeAssistant, socket_enabled: None, detection_plan: DetectionPlan
) -> None:
    """16 kHz 16-bit datagrams from a real socket, like an ESPHome microphone."""
    port = free_udp_port()
    microphone = UdpMicrophone(port, detection_plan.scenes["gunshot"].samples, rate_hz=16000)
    microphone.start()
    try:
        entry = await create_entry(hass, "udp", udp_form(port), detection_plan)
        await assert_detects(hass, entry, "gunshot", detection_plan)
        assert entry.runtime_data.counters["dropped_malformed"] == 0
        assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        microphone.stop()


async def assert_nothing_turns_on(
    hass: HomeAssistant, entry: ConfigEntry, background: npt.NDArray[np.float32]
) -> None:
    watcher = Watcher(hass, entry)
    runtime = entry.runtime_data
    windows = round(background.size / 8000 / runtime.model.info.hop_s)  # one whole pass
    try:
        await wait_for(
            hass, lambda: runtime.windows_classified >= windows + 8, timeout_s=background.size / 8000 + 15
        )
    finally:
        watcher.stop()
    assert watcher.ons() == []
    assert watcher.fired == []
    assert all(hass.states.get(sensor).state == STATE_OFF for sensor in watcher.sensors)


async def test_background_alone_turns_nothing_on(
    hass: HomeAssistant,
    rtsp_server: Callable[..., RtspServer],
    socket_enabled: None,
    detection_plan: DetectionPlan,
    tmp_path: Path,
) -> None:
    """A quiet room over RTSP (PCMU) and over UDP at the same thresholds: no sensor turns on, no event fires."""
    wav = write_wav(tmp_path / "room.wav", detection_plan.background)
    server = rtsp_server(codec="pcmu", source="file", file=wav)
    camera = await create_entry(
        hass,
        "rtsp",
        {CONF_NAME: "Room camera", CONF_URL: server.url(), CONF_TRANSPORT: "tcp"},
        detection_plan,
    )
    port = free_udp_port()
    microphone = UdpMicrophone(port, detection_plan.background)
    microphone.start()
    try:
        microphone_entry = await create_entry(hass, "udp", udp_form(port), detection_plan)
        for entry in (camera, microphone_entry):
            await assert_nothing_turns_on(hass, entry, detection_plan.background)
        for entry in (camera, microphone_entry):
            assert await hass.config_entries.async_unload(entry.entry_id)
    finally:
        microphone.stop()
