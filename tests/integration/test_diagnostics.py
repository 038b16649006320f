"""Diagnostics show what users need to tune and debug, and never a credential."""

from __future__ import annotations

from collections.abc import Callable
import json

from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import numpy as np
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from syrupy.assertion import SnapshotAssertion
from syrupy.filters import props

from custom_components.sound_sentry.engine.taught import TaughtSound
from custom_components.sound_sentry.taught_store import TaughtStore
from tests.audio import RATE_HZ
from tests.entries import rtsp_entry
from tests.peers import RtspServer

from .conftest import wait_for

USER, PASSWORD = "nanny", "Sup3r-Secret!"


async def test_diagnostics_are_redacted(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    rtsp_server: Callable[..., RtspServer],
    snapshot: SnapshotAssertion,
) -> None:
    server = rtsp_server(codec="pcmu", user=USER, password=PASSWORD)
    entry = rtsp_entry(server.url(), username=USER, password=PASSWORD)
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: len(entry.runtime_data.monitor.recent_windows) >= 3)
    # A taught sound stored since setup (the source listens for it once it reloads).
    sound = TaughtSound(
        name="Door bell",
        model="sound_sentry_mobilenet",
        version="0.9.0",
        weights=np.zeros(8, np.float32),
        bias=0.0,
        thresholds={"strict": 0.9, "balanced": 0.8, "eager": 0.7},
    )
    noise = np.random.default_rng(0).normal(0.0, 0.1, RATE_HZ).astype(np.float32)
    store = await TaughtStore.async_load(hass, entry.entry_id)
    await store.async_add("Door bell", [noise] * 4, sound, "strict")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    assert PASSWORD not in text
    assert USER not in text
    assert diagnostics["taught"] == [
        {
            "name": "Door bell",
            "slug": "door_bell",
            "sensitivity": "strict",
            "threshold": 0.9,
            "examples": 4,
            "learnt_on": {"model": "sound_sentry_mobilenet", "version": "0.9.0"},
            "listening": False,
        }
    ]
    assert hass.config.config_dir not in text  # nor its examples' paths, in the user's config folder
    assert diagnostics["source"]["connected"] is True
    assert diagnostics["model"]["backend"] in ("onnxruntime", "numpy")
    assert diagnostics["model"]["licence"] == entry.runtime_data.model.info.licence  # as the sidecar says
    window = diagnostics["recent_windows"][0]
    assert set(window["probabilities"]) == {"background", "babycry", "glassbreak", "gunshot"}
    assert window["dbfs"] < 0
    # The shape of the whole document, without what changes from run to run.
    assert diagnostics == snapshot(
        exclude=props("url", "recent_windows", "windows_classified", "active", "sha256", "name", "version")
    )
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_diagnostics_of_a_failing_source_are_redacted(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, rtsp_server: Callable[..., RtspServer]
) -> None:
    """A 401 puts an error in the diagnostics: it names the camera without its credentials."""
    server = rtsp_server(codec="pcmu", user=USER, password="other")
    entry = rtsp_entry(server.url(), username=USER, password=PASSWORD)
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "diagnostics", {})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    assert diagnostics["source"]["last_error"]["reason"] == "invalid_auth"
    text = json.dumps(diagnostics)
    assert PASSWORD not in text
    assert USER not in text
    assert await hass.config_entries.async_unload(entry.entry_id)
