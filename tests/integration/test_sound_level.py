"""The sound level sensor writes the recorder only on a meaningful change, or once a minute."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
import itertools
import math
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import numpy as np
import numpy.typing as npt
import pytest
from pytest_homeassistant_custom_component.common import async_fire_time_changed

from custom_components.sound_sentry import runtime as runtime_module
from custom_components.sound_sentry.sensor import LEVEL_REFRESH, LEVEL_STEP_DB
from tests.audio import RATE_HZ, UdpMicrophone, free_udp_port
from tests.entries import udp_entry

from .conftest import wait_for

LEVEL = "sensor.hall_microphone_sound_level"


def tone(dbfs: float) -> npt.NDArray[np.float32]:
    """One second of a 440 Hz sine whose RMS level is `dbfs` (a whole number of periods: it loops)."""
    t = np.arange(RATE_HZ) / RATE_HZ
    return (math.sqrt(2) * 10 ** (dbfs / 20) * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def level(hass: HomeAssistant) -> float:
    """The level the sensor shows."""
    return float(hass.states.get(LEVEL).state)


async def test_sound_level_is_written_on_a_change_of_3_db_or_once_a_minute(
    hass: HomeAssistant, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steady room writes nothing; a small drift is written at the next minute; a jump at once."""
    monkeypatch.setattr(runtime_module, "STATE_INTERVAL_S", 0.25)  # a new peak every 0.25 s, not 2 s
    port = free_udp_port()
    entry = udp_entry(port)
    entry.add_to_hass(hass)
    writes: list[str] = []

    @callback
    def is_level(data: Mapping[str, Any]) -> bool:
        return bool(data["entity_id"] == LEVEL)

    @callback
    def record(_event: Event) -> None:
        writes.append(hass.states.get(LEVEL).state)

    # A write that changes the state is recorded; one that does not is only "reported" (not recorded,
    # but counted here too: the sensor should not write at all).
    hass.bus.async_listen(EVENT_STATE_CHANGED, record, event_filter=is_level)
    hass.bus.async_listen(EVENT_STATE_REPORTED, record, event_filter=is_level)
    peaks = 0

    @callback
    def count_peaks() -> None:
        nonlocal peaks
        peaks += 1

    microphone = UdpMicrophone(port, tone(-20.0))
    microphone.start()
    try:
        assert await hass.config_entries.async_setup(entry.entry_id)
        runtime = entry.runtime_data
        runtime.async_add_listener(count_peaks)
        await wait_for(hass, lambda: hass.states.get(LEVEL).state not in ("unknown", STATE_UNAVAILABLE))
        await wait_for(hass, lambda: abs(level(hass) + 20.0) < 0.5)

        # Steady: the runtime has a new peak every 0.25 s, the sensor writes none of them.
        writes.clear()
        seen = peaks
        await wait_for(hass, lambda: peaks >= seen + 8)
        assert writes == []

        # 1.5 dB quieter: less than the step, so the sensor keeps showing -20 ...
        microphone.stop()
        microphone = UdpMicrophone(port, tone(-21.5))
        microphone.start()
        await wait_for(hass, lambda: runtime.snapshot is not None and abs(runtime.snapshot.dbfs + 21.5) < 0.3)
        seen = peaks
        await wait_for(hass, lambda: peaks >= seen + 4)
        assert LEVEL_STEP_DB > 1.5
        assert writes == []
        assert abs(level(hass) + 20.0) < 0.5
        # ... until the minute is up.
        async_fire_time_changed(hass, dt_util.utcnow() + LEVEL_REFRESH + timedelta(seconds=1))
        await hass.async_block_till_done()
        assert len(writes) == 1
        assert abs(level(hass) + 21.5) < 0.3

        # 10 dB louder: shown at once, in steps of at least 3 dB as the 2-second windows fill with the
        # louder sound; the last step (less than 3 dB) waits for the minute.
        writes.clear()
        before = level(hass)
        microphone.stop()
        microphone = UdpMicrophone(port, tone(-11.5))
        microphone.start()
        await wait_for(hass, lambda: level(hass) > -11.5 - LEVEL_STEP_DB, timeout_s=5)
        shown = [before, *(float(value) for value in writes)]
        # The sensor compares unrounded levels; the states are rounded to 0.1 dB.
        assert all(abs(b - a) >= LEVEL_STEP_DB - 0.1 for a, b in itertools.pairwise(shown)), shown
        await wait_for(hass, lambda: abs(runtime.snapshot.dbfs + 11.5) < 0.3)
        async_fire_time_changed(hass, dt_util.utcnow() + LEVEL_REFRESH + timedelta(seconds=1))
        await hass.async_block_till_done()
        assert abs(level(hass) + 11.5) < 0.3

        # The source lost: unavailable at once.
        microphone.stop()
        await wait_for(hass, lambda: hass.states.get(LEVEL).state == STATE_UNAVAILABLE)
    finally:
        microphone.stop()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_probability_sensors_are_disabled_by_default(hass: HomeAssistant, socket_enabled: None) -> None:
    """They change with every peak: enabled only by users who tune."""
    entry = udp_entry(free_udp_port())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    registry = er.async_get(hass)
    entities = er.async_entries_for_config_entry(registry, entry.entry_id)
    probabilities = [e for e in entities if e.entity_id.endswith("_probability")]
    assert len(probabilities) == 3
    assert all(e.disabled_by is er.RegistryEntryDisabler.INTEGRATION for e in probabilities)
    assert registry.async_get(LEVEL).disabled_by is None
    assert await hass.config_entries.async_unload(entry.entry_id)
