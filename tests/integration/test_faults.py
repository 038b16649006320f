"""Faults and bad input, each on a real Home Assistant core next to a healthy neighbour.

Every test: the fault gets a clear message (the source's error and its reason); the neighbour (an
input_boolean and another Sound Sentry entry streaming from a UDP microphone) keeps working; after
unloading, this process has exactly the file descriptors and threads it had before (Home Assistant's
own executor pools aside); Home Assistant's detection of blocking calls in the event loop stays silent.
Timeouts are the tests' short ones (conftest): open 3 s, read 2 s.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
import socket
import time

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component import plugins
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry import const, model_store
from custom_components.sound_sentry.const import DOMAIN
from custom_components.sound_sentry.engine import model
from tests.audio import UdpMicrophone, background_bed, free_udp_port
from tests.entries import rtsp_entry, udp_entry
from tests.peers import RtspServer

from .conftest import Bystander, Resources, wait_for, wait_for_retries

pytestmark = pytest.mark.usefixtures("no_blocking_calls")

RECOVERY_GOAL_S = 10.0


def sound_sensor(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    return hass.states.get(f"binary_sensor.{entry.title.lower().replace(' ', '_')}_glass_breaking").state


def listening(hass: HomeAssistant, entry: MockConfigEntry) -> str:
    return hass.states.get(f"binary_sensor.{entry.title.lower().replace(' ', '_')}_listening").state


async def stop(hass: HomeAssistant, server: RtspServer) -> None:
    """Stop a server off the event loop (it waits for the process to end)."""
    await hass.async_add_executor_job(server.stop)


async def set_up(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def unload(hass: HomeAssistant, entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def audio_flows(hass: HomeAssistant, entry: MockConfigEntry, timeout_s: float = 15.0) -> None:
    """The source is connected and new windows are being classified."""
    runtime = entry.runtime_data
    await wait_for(hass, lambda: runtime.connected, timeout_s)
    windows = runtime.windows_classified
    await wait_for(hass, lambda: runtime.windows_classified > windows, timeout_s)


async def test_server_stopped_mid_stream_and_back(
    hass: HomeAssistant,
    rtsp_server: Callable[..., RtspServer],
    bystander: Bystander,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Entities go unavailable while the camera is gone; audio flows again <= 10 s after it returns."""
    before = Resources.now()
    server = rtsp_server(codec="pcmu")
    entry = rtsp_entry(server.url())
    await set_up(hass, entry)
    await audio_flows(hass, entry)

    await stop(hass, server)
    await wait_for(hass, lambda: listening(hass, entry) == STATE_OFF)
    assert sound_sensor(hass, entry) == STATE_UNAVAILABLE
    error = entry.runtime_data.last_error
    assert error is not None
    assert error.reason in ("stream_ended", "timeout", "cannot_connect")
    assert f"127.0.0.1:{server.port}/stream" in str(error)
    await wait_for_retries(hass, caplog, entry, 1)  # another failed reconnect: the backoff has grown
    await bystander.check()

    server.start()
    back = time.monotonic()
    await audio_flows(hass, entry, timeout_s=RECOVERY_GOAL_S + 5)
    recovery_s = time.monotonic() - back
    assert recovery_s <= RECOVERY_GOAL_S, (
        f"audio flowed again only {recovery_s:.1f} s after the camera returned"
    )
    assert sound_sensor(hass, entry) == STATE_OFF
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("custom_components.sound_sentry")]
    assert any("Nursery camera: no audio" in m and "retrying" in m for m in messages)
    assert any("Nursery camera: audio is back" in m for m in messages)

    await bystander.check()
    await unload(hass, entry)
    await stop(hass, server)
    Resources.now().assert_back_to(before)


async def test_camera_comes_back_with_another_codec(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], bystander: Bystander
) -> None:
    """A camera reconfigured (PCMU -> AAC at 16 kHz) while Sound Sentry listens: it decodes the new codec."""
    before = Resources.now()
    pcmu = rtsp_server(codec="pcmu")
    entry = rtsp_entry(pcmu.url())
    await set_up(hass, entry)
    await audio_flows(hass, entry)
    await stop(hass, pcmu)
    await wait_for(hass, lambda: not entry.runtime_data.connected)

    aac = rtsp_server(codec="aac", port=pcmu.port)
    assert aac.url() == pcmu.url()
    await audio_flows(hass, entry)
    await wait_for(hass, lambda: entry.runtime_data.state.peaks is not None)
    assert -40 < entry.runtime_data.state.peaks.dbfs < 0  # the 440 Hz tone at -10 dBFS, decoded from AAC
    await bystander.check()

    await unload(hass, entry)
    await stop(hass, aac)
    Resources.now().assert_back_to(before)


async def test_stream_that_goes_silent_without_closing(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], bystander: Bystander
) -> None:
    """The camera keeps the session open but sends nothing (here after 1 s; the read timeout is 2 s)."""
    before = Resources.now()
    server = rtsp_server(codec="pcmu", stall_after_s=1.0)
    entry = rtsp_entry(server.url())
    await set_up(hass, entry)
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
    error = entry.runtime_data.last_error
    assert error.reason == "timeout"
    assert f"no audio for {const.READ_TIMEOUT_S:g} s" in str(error)
    assert listening(hass, entry) == STATE_OFF
    assert sound_sensor(hass, entry) == STATE_UNAVAILABLE
    # Each new session gets 1 s of audio, then silence again: the source reconnects and times out anew.
    await wait_for(hass, lambda: entry.runtime_data.connected, timeout_s=15)
    await wait_for(hass, lambda: not entry.runtime_data.connected, timeout_s=10)
    await bystander.check()

    await unload(hass, entry)
    await stop(hass, server)
    Resources.now().assert_back_to(before)


async def test_wrong_password(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], bystander: Bystander
) -> None:
    """401: the entry asks for new credentials (reauth) and says why; it does not hammer the camera."""
    before = Resources.now()
    server = rtsp_server(codec="pcmu", user="parent", password="right-Pa55")
    entry = rtsp_entry(server.url(), username="parent", password="wrong-Pa55")
    await set_up(hass, entry)
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
    error = entry.runtime_data.last_error
    assert error.reason == "invalid_auth"
    assert "refused the credentials" in str(error)
    assert "wrong-Pa55" not in str(error)
    await wait_for(hass, lambda: any(hass.config_entries.flow.async_progress_by_handler(DOMAIN)))
    [flow] = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert flow["context"]["source"] == "reauth"
    assert sound_sensor(hass, entry) == STATE_UNAVAILABLE
    await bystander.check()

    hass.config_entries.flow.async_abort(flow["flow_id"])
    await unload(hass, entry)
    await stop(hass, server)
    Resources.now().assert_back_to(before)


async def test_unresolvable_host(
    hass: HomeAssistant, bystander: Bystander, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The test plugin refuses every name lookup in Python; FFmpeg's own lookup (in C) is real: so is ours.
    if (real := getattr(plugins, "_real_getaddrinfo", None)) is not None:  # not on the minimum version
        monkeypatch.setattr(socket, "getaddrinfo", real)
    before = Resources.now()
    entry = rtsp_entry("rtsp://camera.invalid:554/stream")  # .invalid never resolves (RFC 6761)
    await set_up(hass, entry)
    await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
    error = entry.runtime_data.last_error
    assert error.reason == "cannot_connect"
    assert "the host name camera.invalid does not resolve" in str(error)
    assert listening(hass, entry) == STATE_OFF
    await bystander.check()

    await unload(hass, entry)
    Resources.now().assert_back_to(before)


async def test_udp_port_already_taken(hass: HomeAssistant, bystander: Bystander, data_dir: Path) -> None:
    """Another program holds the port: the entry says so, and takes the port once it is free."""
    before = Resources.now()
    taker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    taker.bind(("0.0.0.0", 0))
    port = taker.getsockname()[1]
    microphone = UdpMicrophone(port, background_bed(data_dir, 2.0))
    microphone.start()
    try:
        entry = udp_entry(port)
        await set_up(hass, entry)
        await wait_for(hass, lambda: entry.runtime_data.last_error is not None)
        error = entry.runtime_data.last_error
        assert error.reason == "port_in_use"
        assert f"UDP port {port} is in use" in str(error)
        assert listening(hass, entry) == STATE_OFF
        await bystander.check()
        taker.close()
        await audio_flows(hass, entry, timeout_s=RECOVERY_GOAL_S + 5)
        await unload(hass, entry)
    finally:
        taker.close()
        microphone.stop()
    Resources.now().assert_back_to(before)


async def test_foreign_odd_and_garbage_datagrams(
    hass: HomeAssistant, bystander: Bystander, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Datagrams from another address, of odd sizes, empty, oversized or random: dropped and counted,
    or (random bytes of a valid size: indistinguishable from audio) classified as noise; audio keeps flowing."""
    before = Resources.now()
    port = free_udp_port()
    microphone = UdpMicrophone(port, background_bed(data_dir, 2.0))
    microphone.start()
    try:
        entry = udp_entry(port)
        await set_up(hass, entry)
        await audio_flows(hass, entry)
        rng = np.random.default_rng(0)
        foreign = [rng.bytes(512) for _ in range(50)]
        malformed = [b"", b"\x01", rng.bytes(3), rng.bytes(641), rng.bytes(20001), rng.bytes(40000)]
        garbage = [rng.bytes(512) for _ in range(25)]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
            stranger.bind(("127.0.0.2", 0))
            for datagram in foreign:
                stranger.sendto(datagram, ("127.0.0.1", port))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as device:
            device.bind(("127.0.0.1", 0))  # the allowed address, another socket: like a confused device
            for datagram in malformed + garbage:
                device.sendto(datagram, ("127.0.0.1", port))
        counters = entry.runtime_data.counters
        await wait_for(hass, lambda: entry.runtime_data.counters["dropped_malformed"] == len(malformed))
        await wait_for(hass, lambda: entry.runtime_data.counters["dropped_foreign"] == len(foreign))
        await audio_flows(hass, entry)
        counters = entry.runtime_data.counters
        assert counters["received"] >= microphone.sent // 2 + len(foreign) + len(malformed) + len(garbage)
        assert entry.runtime_data.last_error is None
        warnings = [
            r.getMessage() for r in caplog.records if "Dropping UDP audio from 127.0.0.2" in r.getMessage()
        ]
        assert len(warnings) == 1  # once per address, not once per datagram
        await bystander.check()
        await unload(hass, entry)
    finally:
        microphone.stop()
    Resources.now().assert_back_to(before)


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
async def test_missing_or_corrupt_model(
    hass: HomeAssistant,
    *,
    socket_enabled: None,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    model_path: Path,
    damage: str,
) -> None:
    """The entry fails to set up with a message naming the file and what to do; HA goes on."""
    assert await async_setup_component(hass, "input_boolean", {"input_boolean": {"bystander": {}}})
    broken = tmp_path / "sound_sentry_resnetse.onnx"
    if damage == "corrupt":
        broken.write_bytes(model_path.read_bytes()[:5000])  # noqa: ASYNC240 - test set-up
        broken.with_suffix(".json").write_text(model_path.with_suffix(".json").read_text())
    monkeypatch.setattr(model, "MODELS_DIR", tmp_path)
    before = Resources.now()
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert str(broken) in entry.reason or broken.name in entry.reason
    assert ("not found" if damage == "missing" else "corrupt") in entry.reason
    await hass.services.async_call(
        "input_boolean", "turn_on", {"entity_id": "input_boolean.bystander"}, blocking=True
    )
    assert hass.states.get("input_boolean.bystander").state == STATE_ON
    Resources.now().assert_back_to(before)


async def test_home_assistant_stops_while_a_source_connects(
    hass: HomeAssistant, socket_enabled: None
) -> None:
    """A camera that accepts the connection but never answers RTSP: Home Assistant's stop ends the
    connecting thread (by the open timeout at worst) and closes its socket."""
    await model_store.async_get_model(hass, "compact")
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        silent.settimeout(10)
        before = Resources.now()
        entry = rtsp_entry(f"rtsp://127.0.0.1:{silent.getsockname()[1]}/stream")
        await set_up(hass, entry)
        # The source thread is inside av.open() once its RTSP request has arrived: it waits for an answer.
        camera_side, _ = await hass.async_add_executor_job(silent.accept)
        with camera_side:
            camera_side.settimeout(10)
            request = await hass.async_add_executor_job(camera_side.recv, 4096)
            assert request.startswith((b"OPTIONS rtsp://", b"DESCRIBE rtsp://")), request
            assert not entry.runtime_data.connected
            await hass.async_stop()
            assert not [t for t in Resources.now().threads if t.startswith("sound_sentry_source_")]
            # The half-open connection the camera never answered is closed with the thread: end of stream.
            assert await hass.async_add_executor_job(camera_side.recv, 4096) == b""
        after = Resources.now()
    after.assert_back_to(before)
