"""The notification blueprint, loaded and run by a real Home Assistant core.

The phone is a real mobile_app registration (as the companion app creates it) whose push relay is an HTTP
server on loopback: the blueprint's device action goes through mobile_app's own notify service, and the
test reads the pushes it sends.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
import shutil
from typing import Any

from aiohttp import web
from freezegun.api import FrozenDateTimeFactory
from homeassistant.components import demo
from homeassistant.const import STATE_ON, STATE_UNAVAILABLE
from homeassistant.core import Event, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.sound_sentry.const import EVENT_CLIP_SAVED
from tests.audio import scene, write_wav
from tests.entries import rtsp_entry
from tests.peers import RtspServer

from .conftest import wait_for

BLUEPRINT = Path(__file__).resolve().parents[2] / "blueprints" / "automation" / "sound_sentry" / "notify.yaml"
HALL = "event.hall_microphone_sound"
NAMES = {
    "babycry": "Baby crying",
    "glassbreak": "Glass breaking",
    "gunshot": "Gunshot",
    "smoke_alarm": "Smoke alarm",
    "co_alarm": "CO alarm",
}

type Pushes = list[dict[str, Any]]


@pytest.fixture
def config_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """A configuration folder of this test's own, holding the blueprint as a user installs it."""
    hass.config.config_dir = str(tmp_path)
    hass.config.allowlist_external_dirs = {str(tmp_path / "www")}
    hass.config.media_dirs = {"local": str(tmp_path / "media")}
    target = tmp_path / "blueprints" / "automation" / "sound_sentry"
    target.mkdir(parents=True)
    shutil.copy(BLUEPRINT, target)
    return tmp_path


@pytest.fixture
async def push_relay(socket_enabled: None) -> AsyncIterator[tuple[str, Pushes]]:
    """An HTTP server on loopback standing in for the companion app's push relay."""
    pushes: Pushes = []

    async def receive(request: web.Request) -> web.Response:
        pushes.append(await request.json())
        return web.json_response({}, status=201)

    app = web.Application()
    app.router.add_post("/push", receive)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}/push", pushes
    await runner.cleanup()


@pytest.fixture
async def phone(hass: HomeAssistant, push_relay: tuple[str, Pushes]) -> tuple[str, Pushes]:
    """A phone registered with mobile_app: its device id and the pushes sent to it."""
    push_url, pushes = push_relay
    entry = MockConfigEntry(
        domain="mobile_app",
        title="Pixel",
        source="registration",
        data={
            "app_data": {"push_token": "token", "push_url": push_url},
            "app_id": "io.homeassistant.companion.android",
            "app_name": "Home Assistant",
            "app_version": "2025.4.0",
            "device_id": "pixel-8",
            "device_name": "Pixel",
            "manufacturer": "Google",
            "model": "Pixel 8",
            "os_name": "Android",
            "os_version": "15",
            "secret": "secret",
            "supports_encryption": False,
            "user_id": "user",
            "webhook_id": "pixel-webhook",
        },
    )
    entry.add_to_hass(hass)
    assert await async_setup_component(hass, "mobile_app", {})
    await hass.async_block_till_done()
    [device] = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    return device.id, pushes


async def use_blueprint(hass: HomeAssistant, **inputs: Any) -> None:
    """An automation made from the blueprint; it must load (a broken blueprint leaves no entity)."""
    config = {"id": "sound_alert", "alias": "Sound alert"}
    config["use_blueprint"] = {"path": "sound_sentry/notify.yaml", "input": inputs}
    assert await async_setup_component(hass, "automation", {"automation": config})
    await hass.async_block_till_done()
    state = hass.states.get("automation.sound_alert")
    assert state is not None
    assert state.state == STATE_ON


def sound(hass: HomeAssistant, event_type: str, confidence: float = 0.0, **data: Any) -> None:
    """The hall microphone's event entity fires, as Sound Sentry writes it (an alarm: `data`)."""
    hass.states.async_set(
        HALL,
        dt_util.utcnow().isoformat(timespec="microseconds"),
        {
            "event_types": list(NAMES),
            "event_type": event_type,
            **(data or {"confidence": confidence}),
            "friendly_name": "Hall microphone Sound",
        },
    )


@pytest.mark.parametrize("clips", [False, True], ids=["clips_off", "clips_on"])
async def test_a_real_sound_notifies_the_phone(
    hass: HomeAssistant,
    *,
    config_dir: Path,
    phone: tuple[str, Pushes],
    rtsp_server: Callable[..., RtspServer],
    data_dir: Path,
    clips: bool,
) -> None:
    """A real stream, Sound Sentry's event entity, the blueprint: one push with the class and confidence.

    With clips on, the same notification (its tag) is sent again once the clip is saved, quietly, with
    the clip's media view address as its attachment. With clips off nothing is written.
    Low thresholds, so that any model (even the random test fixture) detects: this is about the plumbing.
    """
    device_id, pushes = phone
    server = rtsp_server(
        codec="pcmu", source="file", file=write_wav(config_dir / "s.wav", scene(data_dir, "babycry"))
    )
    entry = rtsp_entry(server.url(), threshold=0.05, clips=clips)
    entry.add_to_hass(hass)
    expected: list[tuple[str, str]] = []  # (title, message) for each sound the entity fires
    fired_clips: list[str | None] = []  # and its clip's media-source id

    def on_sound(event: Event[Any]) -> None:
        state = event.data["new_state"]
        if (
            event.data["entity_id"] == "event.nursery_camera_sound"
            and state
            and state.attributes.get("event_type")
        ):
            name = NAMES[state.attributes["event_type"]]
            percent = round(state.attributes["confidence"] * 100)
            expected.append((name, f"Nursery camera: {name.lower()} ({percent}% confidence)"))
            fired_clips.append(state.attributes.get("clip"))

    hass.bus.async_listen("state_changed", on_sound)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await use_blueprint(hass, event_entity="event.nursery_camera_sound", notify_device=device_id)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    await wait_for(hass, lambda: bool(pushes), timeout_s=30)
    if clips:
        await wait_for(hass, lambda: len(pushes) == 2, timeout_s=90)
    assert await hass.config_entries.async_unload(entry.entry_id)

    push = pushes[0]  # the sounds that follow fall within the cooldown
    assert (push["title"], push["message"]) in expected
    assert push["registration_info"]["webhook_id"] == "pixel-webhook"
    if not clips:
        assert len(pushes) == 1
        assert not (config_dir / "media").exists()
        return
    update = pushes[1]
    # the clip of the sound that was notified (with thresholds this low two sounds can fire in one window)
    fired = fired_clips[expected.index((push["title"], push["message"]))]
    assert (update["title"], update["message"]) == (push["title"], push["message"])
    assert update["data"]["tag"] == push["data"]["tag"]
    [event] = [event for event in saved if event.data["clip"] == fired]  # the clip of the notified sound
    assert update["data"]["attachment"] == {"url": event.data["url"], "content-type": "wav"}
    assert update["data"]["alert_once"] is True
    assert update["data"]["push"] == {"interruption-level": "passive"}
    clip_file = config_dir / "media" / event.data["url"].removeprefix("/media/local/")
    assert clip_file.is_file()


@pytest.mark.parametrize("cooldown", [{"minutes": 1}, "00:01:00", 60], ids=["selector", "text", "seconds"])
async def test_chosen_classes_and_cooldown(
    hass: HomeAssistant,
    config_dir: Path,
    phone: tuple[str, Pushes],
    freezer: FrozenDateTimeFactory,
    cooldown: dict[str, int] | str | int,
) -> None:
    """Only the chosen sounds notify, once per cooldown; a source coming back re-shows no old sound."""
    device_id, pushes = phone
    sound(hass, "babycry", 0.5)  # the entity exists before the automation, as after a restart
    await use_blueprint(
        hass,
        event_entity=HALL,
        notify_device=device_id,
        classes=["glassbreak", "gunshot"],
        cooldown=cooldown,
    )

    # Time is frozen: each sound comes a little later, as real ones do (a state is its event's time).
    freezer.tick(timedelta(seconds=1))
    sound(hass, "babycry", 0.99)  # not chosen
    await hass.async_block_till_done()
    assert pushes == []
    freezer.tick(timedelta(seconds=1))
    sound(hass, "glassbreak", 0.912)
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=59))
    sound(hass, "gunshot", 0.7)  # within the cooldown
    await hass.async_block_till_done()
    assert [(push["title"], push["message"]) for push in pushes] == [
        ("Glass breaking", "Hall microphone Sound: glass breaking (91% confidence)")
    ]
    assert pushes[0]["data"] == {"tag": f"sound_sentry_{HALL}_glassbreak", "group": "sound_sentry"}

    freezer.tick(timedelta(seconds=1))
    sound(hass, "gunshot", 0.97)
    await hass.async_block_till_done()
    assert [push["message"] for push in pushes][1:] == ["Hall microphone Sound: gunshot (97% confidence)"]

    # The source drops and comes back showing its last event: no push.
    freezer.tick(timedelta(minutes=5))
    last = hass.states.get(HALL)
    hass.states.async_set(HALL, STATE_UNAVAILABLE, {})
    hass.states.async_set(HALL, last.state, last.attributes)
    await hass.async_block_till_done()
    assert len(pushes) == 2


async def test_camera_snapshot_is_attached(
    hass: HomeAssistant, config_dir: Path, phone: tuple[str, Pushes]
) -> None:
    """With a camera, the push carries the /local/ address of a snapshot taken for this sound."""
    device_id, pushes = phone
    picture = Path(demo.__file__).with_name("demo_0.jpg")
    camera_entry = MockConfigEntry(domain="local_file", options={"name": "Hall", "file_path": str(picture)})
    camera_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(camera_entry.entry_id)
    await hass.async_block_till_done()
    sound(hass, "babycry", 0.5)
    await use_blueprint(
        hass,
        event_entity=HALL,
        notify_device=device_id,
        camera_entity="camera.hall",
        snapshot_dir=str(config_dir / "www" / "sound_sentry"),
    )

    sound(hass, "gunshot", 0.88)
    await wait_for(hass, lambda: bool(pushes))
    image = pushes[0]["data"]["image"]
    assert image.startswith("/local/sound_sentry/hall_")
    assert image.endswith(".jpg")
    snapshot = config_dir / "www" / image.removeprefix("/local/")
    assert snapshot.read_bytes() == picture.read_bytes()


async def test_alarms_are_notified_through_the_cooldown(
    hass: HomeAssistant, config_dir: Path, phone: tuple[str, Pushes], freezer: FrozenDateTimeFactory
) -> None:
    """A smoke or CO alarm notifies even within another sound's cooldown, with its beeps' pitch, as a
    time-sensitive (iOS) / high-priority (Android) notification; a later sound still waits."""
    device_id, pushes = phone
    sound(hass, "babycry", 0.5)
    await use_blueprint(hass, event_entity=HALL, notify_device=device_id)
    freezer.tick(timedelta(seconds=1))
    sound(hass, "glassbreak", 0.97)
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=10))
    sound(hass, "smoke_alarm", frequency_hz=3150, cycles=2)
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=10))
    sound(hass, "co_alarm", frequency_hz=520, cycles=2)
    await hass.async_block_till_done()
    freezer.tick(timedelta(seconds=10))
    sound(hass, "gunshot", 0.99)  # within the cooldown of the glass break
    await hass.async_block_till_done()
    assert [(push["title"], push["message"]) for push in pushes] == [
        ("Glass breaking", "Hall microphone Sound: glass breaking (97% confidence)"),
        ("Smoke alarm", "Hall microphone Sound: Smoke alarm (beep pattern at 3150 Hz)"),
        ("CO alarm", "Hall microphone Sound: CO alarm (beep pattern at 520 Hz)"),
    ]
    assert pushes[1]["data"] == {
        "tag": f"sound_sentry_{HALL}_smoke_alarm",
        "group": "sound_sentry",
        "push": {"interruption-level": "time-sensitive"},
        "priority": "high",
        "ttl": 0,
    }
