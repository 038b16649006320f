"""Setting up and unloading entries on a real Home Assistant core, with sources up or down."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import threading

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_UNAVAILABLE, __version__ as ha_version
from homeassistant.core import HomeAssistant
import pytest

from custom_components.sound_sentry import model_store
from custom_components.sound_sentry.engine import model
from custom_components.sound_sentry.model_store import async_get_model
from tests.audio import free_udp_port
from tests.entries import rtsp_entry, udp_entry
from tests.peers import RtspServer

from .conftest import wait_for


def open_fds() -> set[str]:
    """This process's open file descriptors (sockets, pipes, files), by what they point to."""
    fd_dir = Path("/proc/self/fd")
    targets = set()
    for fd in fd_dir.iterdir():
        try:
            targets.add(f"{fd.name}:{fd.readlink()}")
        except OSError:  # the one that listed the folder is gone already
            continue
    return targets


def source_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name.startswith("sound_sentry_source_")]


async def test_setup_with_a_dead_source_and_unload(hass: HomeAssistant) -> None:
    """A camera that is off does not stop setup: the entities wait, unavailable, and unload is clean."""
    print(f"Home Assistant {ha_version}")
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")  # the discard port: nothing answers
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert hass.states.get("binary_sensor.nursery_camera_glass_breaking").state == STATE_UNAVAILABLE
    assert hass.states.get("binary_sensor.nursery_camera_listening").state == STATE_OFF
    assert len(source_threads()) == 1

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert source_threads() == []


@pytest.mark.parametrize("damage", ["missing", "corrupt", "sidecar_missing"])
async def test_unusable_model_fails_setup_with_a_clear_error(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, model_path: Path, damage: str
) -> None:
    broken = tmp_path / "sound_sentry_resnetse.onnx"
    if damage != "missing":
        broken.write_bytes(model_path.read_bytes()[: 1000 if damage == "corrupt" else None])  # noqa: ASYNC240
        if damage == "corrupt":
            sidecar = model_path.with_suffix(".json").read_text()
            (tmp_path / "sound_sentry_resnetse.json").write_text(sidecar)
    monkeypatch.setattr(model, "MODELS_DIR", tmp_path)
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert "model" in entry.reason
    assert source_threads() == []


async def test_sources_share_one_model(hass: HomeAssistant) -> None:
    """Each model is loaded once per Home Assistant instance, whatever the number of sources using it."""
    first = rtsp_entry("rtsp://127.0.0.1:9/one")
    second = rtsp_entry("rtsp://127.0.0.1:9/two")
    third = rtsp_entry("rtsp://127.0.0.1:9/three", model="accurate")
    for entry in (first, second, third):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert first.runtime_data.model is second.runtime_data.model
    assert hass.data[model_store.DATA_MODELS] == {
        "compact": first.runtime_data.model,
        "accurate": third.runtime_data.model,
    }
    assert first.runtime_data.model.info.architecture == "resnetse"
    assert third.runtime_data.model.info.architecture == "mobilenet"
    assert len(source_threads()) == 3
    for entry in (first, second, third):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert source_threads() == []


async def test_home_assistant_stop_ends_the_source_threads(hass: HomeAssistant) -> None:
    """Home Assistant stops without unloading entries: the source threads must end anyway."""
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert len(source_threads()) == 1
    await hass.async_stop()
    assert source_threads() == []


async def test_reload_and_unload_leave_no_threads_or_sockets(
    hass: HomeAssistant, socket_enabled: None, rtsp_server: Callable[..., RtspServer]
) -> None:
    """Reloading and unloading close every socket and container and join every thread."""
    server = rtsp_server(codec="pcmu")
    rtsp = rtsp_entry(server.url())
    udp = udp_entry(free_udp_port())
    # The model is loaded once per instance and stays (onnxruntime keeps a few files open): load it first.
    await async_get_model(hass, "compact")
    fds_before = open_fds()
    for entry in (rtsp, udp):
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: rtsp.runtime_data.connected)
    for entry in (rtsp, udp):
        assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_for(hass, lambda: rtsp.runtime_data.connected)
    for entry in (rtsp, udp):
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert source_threads() == []
    assert open_fds() == fds_before
