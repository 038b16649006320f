"""The sound level sensor writes the recorder only when the level the monitor shows changes.

When that is (a change of 3 dB at once, a smaller one once a minute) is the engine's: tests/engine/test_monitor.py.
"""

from __future__ import annotations

from collections.abc import Mapping
import itertools
import math
from typing import Any

from homeassistant.const import EVENT_STATE_CHANGED, EVENT_STATE_REPORTED, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine import monitor as monitor_module
from custom_components.sound_sentry.engine.monitor import LEVEL_STEP_DB
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


async def test_sound_level_is_written_only_when_the_level_shown_changes(
    hass: HomeAssistant, socket_enabled: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A steady room writes nothing, nor does a small drift; a jump is written at once."""
    monkeypatch.setattr(monitor_module, "STATE_INTERVAL_S", 0.25)  # a new peak every window, not every 2 s
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

        # Steady: the monitor has a new peak every window, the sensor writes none of them.
        writes.clear()
        seen = peaks
        await wait_for(hass, lambda: peaks >= seen + 8)
        assert writes == []

        # 1.5 dB quieter: less than the step, so the sensor keeps showing -20 ...
        microphone.stop()
        microphone = UdpMicrophone(port, tone(-21.5))
        microphone.start()
        await wait_for(
            hass, lambda: runtime.state.peaks is not None and abs(runtime.state.peaks.dbfs + 21.5) < 0.3
        )
        seen = peaks
        await wait_for(hass, lambda: peaks >= seen + 4)
        assert LEVEL_STEP_DB > 1.5
        assert writes == []
        assert abs(level(hass) + 20.0) < 0.5

        # 10 dB louder: shown at once, in steps of at least 3 dB as the 2-second windows fill with the
        # louder sound.
        writes.clear()
        before = level(hass)
        microphone.stop()
        microphone = UdpMicrophone(port, tone(-11.5))
        microphone.start()
        await wait_for(hass, lambda: level(hass) > -11.5 - LEVEL_STEP_DB, timeout_s=5)
        shown = [before, *(float(value) for value in writes)]
        # The sensor compares unrounded levels; the states are rounded to 0.1 dB.
        assert all(abs(b - a) >= LEVEL_STEP_DB - 0.1 for a, b in itertools.pairwise(shown)), shown

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
