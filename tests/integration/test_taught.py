"""Taught sounds in a real Home Assistant: stored for an entry, heard through a real RTSP camera, learnt
again when the model changes, a repair when they cannot be; and recording from the running source."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er, issue_registry as ir
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sound_sentry import runtime as runtime_module
from custom_components.sound_sentry.const import DOMAIN
from custom_components.sound_sentry.engine.taught import bank_id, read_example
from custom_components.sound_sentry.runtime import RecordError
from custom_components.sound_sentry.taught_store import TaughtStore, issue_id
from tests.audio import RATE_HZ, write_wav
from tests.entries import rtsp_entry
from tests.peers import RtspServer
from tests.taught import TaughtPlan, accurate_model, taught_plan

from .conftest import wait_for

NAME = "Toilet flush"


@pytest.fixture
def plan(data_dir: Path) -> TaughtPlan:
    """A sound the accurate model learns from real clips, and a clip of it that it hears."""
    return taught_plan(data_dir)


def accurate_entry(url: str) -> MockConfigEntry:
    """An RTSP entry on the accurate model at its own settings."""
    return rtsp_entry(url, title="Bathroom", threshold=None, model="accurate")


@pytest.fixture
def entry(hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]) -> MockConfigEntry:
    """An `accurate_entry` added to Home Assistant (not set up), on a camera that sends silence."""
    server = rtsp_server(codec="pcmu", source="silence")
    entry = accurate_entry(server.url())
    entry.add_to_hass(hass)
    return entry


def heard_file(plan: TaughtPlan, tmp_path: Path) -> Path:
    """The clip heard, after 3 s of silence (the server loops it)."""
    silence = np.zeros(3 * RATE_HZ, np.float32)
    return write_wav(tmp_path / "heard.wav", np.concatenate([silence, plan.heard, silence]))


async def teach(hass: HomeAssistant, entry: MockConfigEntry, plan: TaughtPlan, **changes: str) -> str:
    """Store the plan's sound for `entry` (as the options flow does), learnt on `changes` of its release."""
    store = await TaughtStore.async_load(hass, entry.entry_id)
    return await store.async_add(NAME, plan.examples, replace(plan.sound, **changes))


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


def entity_id(hass: HomeAssistant, entry: MockConfigEntry, platform: str, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{entry.entry_id}_{key}")


async def test_a_taught_sound_turns_its_sensor_on_when_the_camera_hears_it(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], plan: TaughtPlan, tmp_path: Path
) -> None:
    server = rtsp_server(codec="l16", source="file", file=heard_file(plan, tmp_path))
    entry = accurate_entry(server.url())
    entry.add_to_hass(hass)
    slug = await teach(hass, entry, plan)
    assert slug == "toilet_flush"
    await set_up(hass, entry)

    sensor = entity_id(hass, entry, "binary_sensor", slug)
    assert sensor == "binary_sensor.bathroom_toilet_flush"
    state = hass.states.get(sensor)
    assert state is not None
    assert state.attributes["friendly_name"] == f"Bathroom {NAME}"
    assert state.attributes["device_class"] == "sound"
    event = hass.states.get("event.bathroom_sound")
    assert event is not None
    assert slug in event.attributes["event_types"]
    assert (
        entity_id(hass, entry, "sensor", f"{slug}_probability") == "sensor.bathroom_toilet_flush_probability"
    )

    await wait_for(hass, lambda: hass.states.get(sensor).state == STATE_ON, timeout_s=40)
    await wait_for(hass, lambda: hass.states.get("event.bathroom_sound").attributes.get("event_type") == slug)
    # The attribute is rounded to 3 decimals.
    assert (
        hass.states.get("event.bathroom_sound").attributes["confidence"]
        >= plan.sound.thresholds["balanced"] - 0.0005
    )
    await wait_for(hass, lambda: hass.states.get(sensor).state == STATE_OFF, timeout_s=30)

    # Removed (as the options flow does, then a reload): its entities go, its files too.
    store = await TaughtStore.async_load(hass, entry.entry_id)
    folder = store.folder / slug
    assert sorted(p.name for p in folder.iterdir()) == [f"{i}.wav" for i in range(1, len(plan.examples) + 1)]
    await store.async_remove(slug)
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entity_id(hass, entry, "binary_sensor", slug) is None
    assert entity_id(hass, entry, "sensor", f"{slug}_probability") is None
    assert not folder.exists()
    assert slug not in hass.states.get("event.bathroom_sound").attributes["event_types"]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_sound_of_another_model_release_is_learnt_again_from_its_examples(
    hass: HomeAssistant, entry: MockConfigEntry, plan: TaughtPlan
) -> None:
    old = replace(plan.sound, version="0.9.0", weights=np.zeros_like(plan.sound.weights))
    slug = await TaughtStore(hass, entry.entry_id).async_add(NAME, plan.examples, old)
    await set_up(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    relearnt = (await TaughtStore.async_load(hass, entry.entry_id)).get(slug)
    assert relearnt is not None
    assert relearnt.sound.version == plan.sound.version
    # Learnt from the examples as stored (16-bit WAV): the plan's head, to rounding.
    assert float(np.corrcoef(relearnt.sound.weights, plan.sound.weights)[0, 1]) > 0.99
    assert entry.runtime_data.monitor.listener.pipeline.taught[slug].version == plan.sound.version
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id, slug)) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_sound_learnt_on_another_bank_is_learnt_again_and_one_on_this_bank_is_kept(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], plan: TaughtPlan
) -> None:
    """The same model release, another bank (rebuilt, or on another embedding): learnt again at setup."""
    server = rtsp_server(codec="pcmu", source="silence")
    entry = accurate_entry(server.url())
    entry.add_to_hass(hass)
    current = await hass.async_add_executor_job(bank_id, accurate_model().info)
    assert current is not None
    assert plan.sound.bank == current
    store = TaughtStore(hass, entry.entry_id)
    old = replace(plan.sound, bank="0123456789abcdef", weights=np.zeros_like(plan.sound.weights))
    relearn = await store.async_add(NAME, plan.examples, old)
    keep = await store.async_add("Kept", plan.examples[:3], replace(plan.sound, bias=-1.25))
    await set_up(hass, entry)

    assert entry.state is ConfigEntryState.LOADED
    stored = await TaughtStore.async_load(hass, entry.entry_id)
    relearnt, kept = stored.get(relearn), stored.get(keep)
    assert relearnt is not None
    assert kept is not None
    assert relearnt.sound.bank == current
    assert float(np.corrcoef(relearnt.sound.weights, plan.sound.weights)[0, 1]) > 0.99
    assert kept.sound.bias == -1.25  # learnt on this very bank: not learnt again
    pipeline = entry.runtime_data.monitor.listener.pipeline
    assert pipeline.taught[relearn].bank == current
    assert pipeline.taught_network is not None
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id, relearn)) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_sound_whose_examples_are_gone_raises_a_repair_that_removes_it(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, entry: MockConfigEntry, plan: TaughtPlan
) -> None:
    slug = await teach(hass, entry, plan, version="0.9.0")
    store = await TaughtStore.async_load(hass, entry.entry_id)
    store.sounds[0].example_paths[1].unlink()
    await set_up(hass, entry)

    assert entry.state is ConfigEntryState.LOADED  # the source listens for its other sounds
    assert slug not in entry.runtime_data.monitor.labels
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id, slug))
    assert issue is not None
    assert issue.translation_key == "taught_examples_missing"
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["sound"] == NAME
    assert "2.wav" in issue.translation_placeholders["error"]

    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue.issue_id}
    )
    assert response.status == 200
    flow = await response.json()
    assert flow["step_id"] == "confirm"
    assert flow["description_placeholders"]["sound"] == NAME
    response = await client.post(f"/api/repairs/issues/fix/{flow['flow_id']}", json={})
    assert response.status == 200
    assert (await response.json())["type"] == "create_entry"
    await hass.async_block_till_done()
    assert (await TaughtStore.async_load(hass, entry.entry_id)).sounds == []
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry.entry_id, slug)) is None
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_recording_takes_the_running_sources_audio_and_says_when_there_is_none(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    server = rtsp_server(codec="pcmu")  # a 440 Hz tone at -10 dBFS
    entry = accurate_entry(server.url())
    entry.add_to_hass(hass)
    await set_up(hass, entry)
    runtime = entry.runtime_data
    await wait_for(hass, lambda: runtime.connected)

    pcm = await runtime.async_record(1.5)
    assert (pcm.dtype, pcm.size) == (np.float32, round(1.5 * RATE_HZ))
    assert 0.05 < float(np.sqrt(np.mean(pcm**2))) < 0.9

    # Audio that does not come in time (here: a grace so short that 1 s cannot arrive within it).
    monkeypatch.setattr(runtime_module, "RECORD_GRACE_S", -0.9)
    with pytest.raises(RecordError) as caught:
        await runtime.async_record(1.0)
    assert caught.value.reason == "no_audio"
    monkeypatch.undo()

    await hass.async_add_executor_job(server.stop)
    await wait_for(hass, lambda: not runtime.connected)
    with pytest.raises(RecordError) as caught:
        await runtime.async_record(1.0)
    assert caught.value.reason == "source_unavailable"
    assert caught.value.translation_key == "source_unavailable"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_store_keeps_names_slugs_and_sensitivity_across_loads(
    hass: HomeAssistant, entry: MockConfigEntry, plan: TaughtPlan
) -> None:
    store = await TaughtStore.async_load(hass, entry.entry_id)
    assert store.slug_for("Gunshot!") == "gunshot_2"  # never a built-in entity's key
    first = await store.async_add(" Door bell ", plan.examples[:3], plan.sound)
    assert (first, store.slug_for("Door bell")) == ("door_bell", "door_bell_2")
    assert store.name_clashes("door BELL")
    assert store.name_clashes("Door-bell")
    assert not store.name_clashes("Doorbell 2")
    await store.async_set_sensitivity(first, "strict")
    with pytest.raises(ValueError, match="loud"):
        await store.async_set_sensitivity(first, "loud")

    again = (await TaughtStore.async_load(hass, entry.entry_id)).get(first)
    assert again is not None
    assert (again.name, again.sound.name, again.sensitivity) == ("Door bell", "Door bell", "strict")
    assert again.threshold == plan.sound.thresholds["strict"]
    samples = [read_example(path) for path in again.example_paths]
    assert [s.size for s in samples] == [e.size for e in plan.examples[:3]]
    np.testing.assert_allclose(samples[0], plan.examples[0], atol=1 / 32768 + 1e-6)  # 16-bit WAV

    await set_up(hass, entry)  # the source listens at the sound's own level
    assert entry.runtime_data.detector_settings.thresholds[first] == plan.sound.thresholds["strict"]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_removing_the_entry_removes_its_taught_sounds(
    hass: HomeAssistant, entry: MockConfigEntry, plan: TaughtPlan
) -> None:
    await teach(hass, entry, plan)
    await set_up(hass, entry)
    folder = (await TaughtStore.async_load(hass, entry.entry_id)).folder
    assert folder.is_dir()
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not folder.exists()
    assert (await TaughtStore.async_load(hass, entry.entry_id)).sounds == []
