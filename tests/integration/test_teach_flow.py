"""The options flow's taught sounds and listening test, in a real Home Assistant with real RTSP sources.

Teach a sound from uploaded files (Home Assistant's file upload, real ESC-50 clips) or from a recording
of the source, pass the listening test while the sound plays through the camera, save it, and see its
binary sensor turn on; the listening test of a built-in sound; every refusal, translated, with the
examples kept.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import entity_registry as er
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sound_sentry.const import DOMAIN, EVENT_CLASSES
from custom_components.sound_sentry.taught_store import TaughtStore
from tests.audio import RATE_HZ, clip_paths, write_wav
from tests.entries import rtsp_entry
from tests.peers import RtspServer
from tests.taught import TaughtPlan, taught_plan

from .conftest import DetectionPlan, wait_for

NAME = "Flush"


@pytest.fixture
def plan(data_dir: Path) -> TaughtPlan:
    """A sound the accurate model learns from real clips, and a clip of it that it hears."""
    return taught_plan(data_dir)


def heard_file(plan: TaughtPlan, tmp_path: Path) -> Path:
    """The clip heard, between 3 s of silence (the server loops it)."""
    silence = np.zeros(3 * RATE_HZ, np.float32)
    return write_wav(tmp_path / "heard.wav", np.concatenate([silence, plan.heard, silence]))


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.connected)


async def menu(hass: HomeAssistant, entry: MockConfigEntry, choice: str) -> ConfigFlowResult:
    """Open the options and choose `choice` in their menu."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert choice in result["menu_options"]
    return await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": choice})


async def configure(
    result: ConfigFlowResult, hass: HomeAssistant, data: dict[str, Any] | None = None
) -> ConfigFlowResult:
    return await hass.config_entries.options.async_configure(result["flow_id"], data)


async def after_progress(hass: HomeAssistant, result: ConfigFlowResult) -> ConfigFlowResult:
    """Wait out a recording (real time, from the source's thread); the step it leads to."""
    assert result["type"] is FlowResultType.SHOW_PROGRESS
    await hass.async_block_till_done()
    return await hass.config_entries.options.async_configure(result["flow_id"])


async def listening_test(
    hass: HomeAssistant, entry: MockConfigEntry, seconds: float
) -> tuple[ConfigFlowResult, list[str]]:
    """Run the listening test from the options menu for `seconds`: its result form, and its lines per sound."""
    result = await menu(hass, entry, "listening_test")
    assert result["step_id"] == "listening_test"
    result = await configure(result, hass, {"seconds": seconds})
    assert result["step_id"] == "listen"
    result = await after_progress(hass, result)
    assert result["step_id"] == "listening_result"
    return result, result["description_placeholders"]["results"].splitlines()


async def upload(hass_client: ClientSessionGenerator, path: Path) -> str:
    """Upload a file as the form's file selector does; its upload id."""
    client = await hass_client()
    with path.open("rb") as file:
        response = await client.post("/api/file_upload", data={"file": file})
    assert response.status == 200
    return str((await response.json())["file_id"])


async def add_examples(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, result: ConfigFlowResult, paths: list[Path]
) -> ConfigFlowResult:
    for path in paths:
        count = int(result["description_placeholders"]["count"])
        result = await configure(result, hass, {"file": await upload(hass_client, path)})
        assert result["step_id"] == "teach_upload"
        assert not result["errors"], result["errors"]
        assert result["description_placeholders"]["count"] == str(count + 1)
    return result


def entity_id(hass: HomeAssistant, entry: MockConfigEntry, key: str) -> str | None:
    return er.async_get(hass).async_get_entity_id("binary_sensor", DOMAIN, f"{entry.entry_id}_{key}")


async def test_teach_a_sound_from_uploads_test_it_save_it_and_hear_it(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    rtsp_server: Callable[..., RtspServer],
    plan: TaughtPlan,
    tmp_path: Path,
) -> None:
    server = rtsp_server(codec="l16", source="file", file=heard_file(plan, tmp_path))
    entry = rtsp_entry(server.url(), threshold=None, model="accurate")
    await set_up(hass, entry)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["menu_options"] == ["model", "teach_name", "listening_test"]  # nothing to forget yet
    hass.config_entries.options.async_abort(result["flow_id"])

    result = await menu(hass, entry, "teach_name")
    assert result["step_id"] == "teach_name"
    result = await configure(result, hass, {"name": NAME, "sensitivity": "balanced", "method": "upload"})
    assert result["step_id"] == "teach_upload"
    assert result["description_placeholders"]["count"] == "0"
    result = await add_examples(hass, hass_client, result, plan.example_paths)
    result = await configure(result, hass, {})  # no file: learn
    assert result["step_id"] == "teach_test"
    assert result["description_placeholders"]["count"] == str(len(plan.example_paths))

    # The test hears the sound through the camera: only then can it be saved.
    result = await configure(result, hass, {"seconds": 15})
    assert result["step_id"] == "teach_listen"
    result = await after_progress(hass, result)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "teach_heard"
    assert result["menu_options"] == ["teach_save", "teach_test"]
    placeholders = result["description_placeholders"]
    assert float(placeholders["peak"]) >= float(placeholders["threshold"])
    result = await configure(result, hass, {"next_step_id": "teach_save"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    store = await TaughtStore.async_load(hass, entry.entry_id)
    (stored,) = store.sounds
    assert (stored.name, stored.sensitivity, len(stored.example_paths)) == (
        NAME,
        "balanced",
        len(plan.examples),
    )
    sensor = entity_id(hass, entry, stored.slug)
    assert sensor == "binary_sensor.nursery_camera_flush"
    await wait_for(hass, lambda: hass.states.get(sensor).state == STATE_ON, timeout_s=40)

    # Forget it: its sensor goes.
    result = await menu(hass, entry, "forget")
    assert result["step_id"] == "forget"
    result = await configure(result, hass, {"sound": stored.slug})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entity_id(hass, entry, stored.slug) is None
    assert not (await TaughtStore.async_load(hass, entry.entry_id)).sounds
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_teach_a_sound_from_a_recording_of_the_source(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], plan: TaughtPlan, tmp_path: Path
) -> None:
    """The sound plays (looped) while the source records: each time it plays is an example."""
    server = rtsp_server(codec="l16", source="file", file=heard_file(plan, tmp_path))
    entry = rtsp_entry(server.url(), threshold=None, model="accurate")
    await set_up(hass, entry)
    result = await menu(hass, entry, "teach_name")
    result = await configure(result, hass, {"name": NAME, "sensitivity": "eager", "method": "record"})
    assert result["step_id"] == "teach_record"
    result = await configure(result, hass, {"seconds": 36})
    assert result["step_id"] == "teach_recording"
    result = await after_progress(hass, result)
    assert result["step_id"] == "teach_test", result.get("errors")
    assert int(result["description_placeholders"]["count"]) >= 3
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_taught_sounds_sensitivity_changes_without_teaching_it_again(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], plan: TaughtPlan
) -> None:
    """The options menu sets a stored sound's level: the source reloads and listens at its threshold."""
    entry = rtsp_entry(rtsp_server(codec="l16", source="silence").url(), threshold=None, model="accurate")
    store = await TaughtStore.async_load(hass, entry.entry_id)
    doorbell = await store.async_add("Doorbell", plan.examples, plan.sound)
    flush = await store.async_add(NAME, plan.examples, plan.sound, "strict")
    await set_up(hass, entry)
    before = entry.runtime_data
    assert before.detector_settings.thresholds[flush] == plan.sound.thresholds["strict"]
    learnt = (await TaughtStore.async_load(hass, entry.entry_id)).get(flush)
    assert learnt is not None

    result = await menu(hass, entry, "taught_sensitivity")
    assert result["step_id"] == "taught_sensitivity"
    assert result["description_placeholders"]["sounds"].splitlines() == [
        "- Doorbell: Balanced: about 1 false alarm a day",
        f"- {NAME}: Strict: about 1 false alarm a week",
    ]
    result = await configure(result, hass, {"sound": flush, "sensitivity": "eager"})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    assert entry.runtime_data is not before  # reloaded
    thresholds = entry.runtime_data.detector_settings.thresholds
    assert thresholds[flush] == plan.sound.thresholds["eager"] != plan.sound.thresholds["strict"]
    assert thresholds[doorbell] == plan.sound.thresholds["balanced"]
    stored = (await TaughtStore.async_load(hass, entry.entry_id)).get(flush)
    assert stored is not None
    assert stored.sensitivity == "eager"
    assert stored.sound.weights.tolist() == learnt.sound.weights.tolist()  # not learnt again
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_listening_test_of_a_built_in_sound(
    hass: HomeAssistant,
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    tmp_path: Path,
) -> None:
    """A glass break plays through the camera: the test shows it heard, over its threshold, and the level."""
    wav = write_wav(tmp_path / "scene.wav", detection_plan.scenes["glassbreak"].samples)
    server = rtsp_server(codec="pcmu", source="file", file=wav)
    thresholds = {f"threshold_{label}": detection_plan.thresholds[label] for label in EVENT_CLASSES}
    entry = rtsp_entry(server.url(), threshold=None, **thresholds)
    await set_up(hass, entry)
    scene_s = detection_plan.scenes["glassbreak"].samples.size / RATE_HZ
    result, lines = await listening_test(hass, entry, min(30, round(2 * scene_s)))
    assert not result["errors"]
    placeholders = result["description_placeholders"]
    glass = next(line for line in lines if "Glass breaking" in line)
    assert glass.startswith("- ✅ Glass breaking: ")
    peak, threshold = (float(x) for x in glass.split(": ")[1].split(" / "))
    assert peak >= threshold == detection_plan.thresholds["glassbreak"]
    assert any(line.startswith("- ❌ Baby crying: ") for line in lines)
    assert -60 < int(placeholders["level"]) <= int(placeholders["peak_level"]) < 0
    result = await configure(result, hass, {})
    assert result["type"] is FlowResultType.MENU  # back to the options
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_camera_that_sends_silence_or_nothing_is_caught(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    rtsp_server: Callable[..., RtspServer],
    plan: TaughtPlan,
) -> None:
    server = rtsp_server(codec="l16", source="silence")
    entry = rtsp_entry(
        server.url(), threshold=None, model="accurate", enabled_classes=[*EVENT_CLASSES, "smoke_alarm"]
    )
    await set_up(hass, entry)
    result, lines = await listening_test(hass, entry, 5)
    assert result["errors"] == {"base": "silent_source"}
    assert result["description_placeholders"]["level"] == "-120"
    assert "- ❌ Smoke alarm" in lines
    hass.config_entries.options.async_abort(result["flow_id"])

    # A sound learnt, ready for its test...
    teaching = await menu(hass, entry, "teach_name")
    teaching = await configure(teaching, hass, {"name": NAME, "sensitivity": "balanced", "method": "upload"})
    teaching = await add_examples(hass, hass_client, teaching, plan.example_paths)
    teaching = await configure(teaching, hass, {})
    assert teaching["step_id"] == "teach_test"

    # The camera goes away: nothing can be recorded, and the forms say so.
    server.stop()
    await wait_for(hass, lambda: not entry.runtime_data.connected, timeout_s=20)
    result = await menu(hass, entry, "listening_test")
    result = await after_progress(hass, await configure(result, hass, {"seconds": 5}))
    assert result["step_id"] == "listening_test"
    assert result["errors"] == {"base": "source_unavailable"}
    assert result["description_placeholders"]["name"] == "Nursery camera"
    hass.config_entries.options.async_abort(result["flow_id"])
    teaching = await after_progress(hass, await configure(teaching, hass, {"seconds": 5}))
    assert teaching["step_id"] == "teach_test"
    assert teaching["errors"] == {"base": "source_unavailable"}
    hass.config_entries.options.async_abort(teaching["flow_id"])
    result = await menu(hass, entry, "teach_name")
    result = await configure(result, hass, {"name": NAME, "sensitivity": "balanced", "method": "record"})
    result = await after_progress(hass, await configure(result, hass, {"seconds": 10}))
    assert result["step_id"] == "teach_record"
    assert result["errors"] == {"base": "source_unavailable"}
    assert result["description_placeholders"]["count"] == "0"
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_every_refusal_is_explained_and_keeps_the_examples(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    rtsp_server: Callable[..., RtspServer],
    *,
    plan: TaughtPlan,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    server = rtsp_server(codec="l16", source="silence")
    entry = rtsp_entry(server.url(), threshold=None, model="accurate")
    await set_up(hass, entry)
    await (await TaughtStore.async_load(hass, entry.entry_id)).async_add(
        "Doorbell", plan.examples, plan.sound
    )

    # Names of the built-in sounds (by name or key), of a taught one, or none.
    result = await menu(hass, entry, "teach_name")
    for name in ("Baby crying", "glassbreak", "GUNSHOT", "Smoke alarm", "co_alarm", "doorbell ", "  "):
        result = await configure(result, hass, {"name": name, "sensitivity": "balanced", "method": "upload"})
        assert result["step_id"] == "teach_name"
        assert result["errors"] == {"name": "name_clash"}, name
    result = await configure(result, hass, {"name": NAME, "sensitivity": "strict", "method": "upload"})
    assert result["step_id"] == "teach_upload"

    # Refused files are not added.
    text = tmp_path / "notes.txt"
    text.write_text("not audio")
    result = await configure(result, hass, {"file": await upload(hass_client, text)})
    assert result["errors"] == {"base": "unreadable_example"}
    assert result["description_placeholders"]["example"] == "1"
    square = np.where(np.arange(3 * RATE_HZ) % 16 < 8, 1.0, -1.0).astype(np.float32)
    result = await configure(
        result, hass, {"file": await upload(hass_client, write_wav(tmp_path / "loud.wav", square))}
    )
    assert result["errors"] == {"base": "clipped_example"}
    assert result["description_placeholders"]["count"] == "0"

    # Too few: the two are kept, a third is added to them.
    result = await add_examples(hass, hass_client, result, plan.example_paths[:2])
    result = await configure(result, hass, {})
    assert result["step_id"] == "teach_upload"
    assert result["errors"] == {"base": "too_few_examples"}
    assert (result["description_placeholders"]["count"], result["description_placeholders"]["minimum"]) == (
        "2",
        "3",
    )
    silent = write_wav(tmp_path / "silent.wav", np.zeros(3 * RATE_HZ, np.float32))
    result = await add_examples(hass, hass_client, result, [silent])
    result = await configure(result, hass, {})
    assert result["errors"] == {"base": "silent_example"}
    assert (result["description_placeholders"]["example"], result["description_placeholders"]["count"]) == (
        "3",
        "2",
    )
    result = await add_examples(hass, hass_client, result, plan.example_paths[2:])
    result = await configure(result, hass, {})
    assert result["step_id"] == "teach_test"

    # The test on silence: not heard, and why; Save is not offered.
    result = await after_progress(hass, await configure(result, hass, {"seconds": 5}))
    assert result["step_id"] == "teach_test"
    assert result["errors"] == {"base": "silent_source"}
    assert float(result["description_placeholders"]["peak"]) == 0.0
    hass.config_entries.options.async_abort(result["flow_id"])

    # Room noise only, four different noises: the bank explains them; up to ten examples, no more. (Cuts
    # of one recording, the same air conditioner, are one sound, which the pretrained embedding can learn.)
    result = await menu(hass, entry, "teach_name")
    result = await configure(result, hass, {"name": "Hum", "sensitivity": "balanced", "method": "upload"})
    rooms = clip_paths(data_dir, "background", source="zalmotek_mssnsd")
    rooms = [*rooms[:: len(rooms) // 4][:4], *rooms[1:]]
    result = await add_examples(hass, hass_client, result, rooms[:4])
    result = await configure(result, hass, {})
    assert result["errors"] == {"base": "like_background"}
    assert (result["description_placeholders"]["heard"], result["description_placeholders"]["count"]) == (
        "0",
        "4",
    )
    result = await add_examples(hass, hass_client, result, rooms[4:10])
    result = await configure(result, hass, {"file": await upload(hass_client, rooms[10])})
    assert result["errors"] == {"base": "too_many_examples"}
    assert result["description_placeholders"]["count"] == "10"
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_compact_model_says_where_sounds_are_taught(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    entry = rtsp_entry(rtsp_server(codec="pcmu").url(), model="compact")
    await set_up(hass, entry)
    result = await menu(hass, entry, "teach_needs_accurate")
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "teach_needs_accurate"
    assert await hass.config_entries.async_unload(entry.entry_id)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["menu_options"] == ["model"]  # not listening: nothing to teach or test
    hass.config_entries.options.async_abort(result["flow_id"])
