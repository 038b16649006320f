"""Clips of detections in a real Home Assistant: a real sound through the real RTSP server, the WAV under the
media folder, the Media browser, the media view, retention, and a media folder that cannot be written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
import logging
import os
from pathlib import Path
import time
from typing import Any
import wave

import av
from homeassistant.components import media_source
from homeassistant.const import EVENT_STATE_CHANGED, STATE_OFF
from homeassistant.core import Event, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sound_sentry.clip_store import ClipName
from custom_components.sound_sentry.const import (
    ALARM_CLASSES,
    CONF_CLIP_KEEP_DAYS,
    CONF_CLIP_MAX,
    CONF_CLIPS,
    CONF_HOLD_S,
    CONF_K,
    CONF_MODEL,
    CONF_N,
    CONF_THRESHOLD_PREFIX,
    EVENT_CLASSES,
    EVENT_CLIP_SAVED,
)
from custom_components.sound_sentry.engine.alarm import SMOKE_ALARM
from custom_components.sound_sentry.engine.clips import DEFAULT_MAX_CLIP_S
from custom_components.sound_sentry.engine.model_info import ModelInfo
from tests.audio import write_wav
from tests.entries import TEST_MODEL, rtsp_entry
from tests.peers import RtspServer

from .conftest import DetectionPlan, wait_for
from .test_alarms import alarm_recording

pytestmark = pytest.mark.usefixtures("no_blocking_calls")

LABEL = "gunshot"
EVENT_ENTITY = "event.nursery_camera_sound"
SENSOR = "binary_sensor.nursery_camera_gunshot"


@pytest.fixture
def media_dir(hass: HomeAssistant, tmp_path: Path) -> Path:
    """Home Assistant's media folder, in this test's own folder."""
    media = tmp_path / "media"
    hass.config.media_dirs = {"local": str(media)}
    return media


def detecting_entry(
    server: RtspServer, plan: DetectionPlan, model_path: Path, **options: Any
) -> MockConfigEntry:
    """An entry on the server with the plan's thresholds and the model's own k of n and hold."""
    info = ModelInfo.load(model_path)
    return rtsp_entry(
        server.url(),
        **{f"{CONF_THRESHOLD_PREFIX}{label}": threshold for label, threshold in plan.thresholds.items()},
        **{CONF_K: info.k, CONF_N: info.n, CONF_HOLD_S: info.hold_s},
        **options,
    )


def scene_server(rtsp_server: Callable[..., RtspServer], plan: DetectionPlan, tmp_path: Path) -> RtspServer:
    """A camera that loops the plan's gunshot scene (room background, the shot, background)."""
    return rtsp_server(
        codec="pcmu", source="file", file=write_wav(tmp_path / "scene.wav", plan.scenes[LABEL].samples)
    )


class Fired:
    """The event data of every sound the event entity fires, and the times the sound sensor turns off."""

    def __init__(self, hass: HomeAssistant) -> None:
        self.data: list[dict[str, Any]] = []
        self.offs = 0
        hass.bus.async_listen(EVENT_STATE_CHANGED, self._on_change)

    @callback
    def _on_change(self, event: Event[Any]) -> None:
        new, old = event.data["new_state"], event.data["old_state"]
        if new is None:
            return
        if event.data["entity_id"] == EVENT_ENTITY and new.attributes.get("event_type"):
            self.data.append(dict(new.attributes))
        elif event.data["entity_id"] == SENSOR and new.state == STATE_OFF and old and old.state == "on":
            self.offs += 1


def tiny_wav(path: Path, age_s: float) -> Path:
    """A short valid clip file, last written `age_s` ago."""
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(8000)
        file.writeframes(bytes(1600))
    stamp = time.time() - age_s
    os.utime(path, (stamp, stamp))
    return path


def test_clip_names_say_the_confidence_of_a_sound_and_none_of_an_alarm() -> None:
    """A sound's clip name carries its confidence; an alarm pattern's none (also a name written before
    alarms lost their nominal 100 % parses, as a clip without confidence); anything else is no clip."""
    parse = ClipName.parse
    at = datetime(2026, 11, 30, 14, 3, 12)
    assert parse("2026-11-30_14-03-12_glassbreak_97.wav") == ClipName("glassbreak", at, 97)
    assert parse("2026-11-30_14-03-12_glassbreak_97_2.wav") == ClipName("glassbreak", at, 97)
    for name, label in (
        ("smoke_alarm.wav", "smoke_alarm"),
        ("smoke_alarm_2.wav", "smoke_alarm"),
        ("smoke_alarm_100.wav", "smoke_alarm"),
        ("co_alarm.wav", "co_alarm"),
    ):
        assert parse(f"2026-11-30_14-03-12_{name}") == ClipName(label, at, None)
    assert parse("2026-11-30_14-03-12_glassbreak.wav") is None
    assert parse("2026-11-30_14-03-12_glassbreak_97.mp3") is None


async def test_a_detection_keeps_one_playable_clip_in_the_media_browser(
    hass: HomeAssistant,
    *,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    model_path: Path,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    """A real gunshot over RTSP with clips on: one WAV named after it, browsable, playable through the
    authenticated media view only; expired clips are deleted at startup, the oldest beyond the most
    kept after the write; other files are left alone; removing the source removes its clips."""
    assert await async_setup_component(hass, "media_source", {})
    entry = detecting_entry(
        scene_server(rtsp_server, detection_plan, tmp_path),
        detection_plan,
        model_path,
        **{CONF_CLIPS: True, CONF_CLIP_MAX: 1},
    )
    entry.add_to_hass(hass)
    folder = media_dir / "sound_sentry" / entry.entry_id
    folder.mkdir(parents=True)
    expired = tiny_wav(folder / "2020-01-01_00-00-00_gunshot_99.wav", age_s=8 * 86400)  # kept for 7 days
    earlier = tiny_wav(folder / "2026-01-01_00-00-00_babycry_90.wav", age_s=60)
    (folder / "notes.txt").write_text("not a clip")
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    fired = Fired(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    assert not expired.exists()
    assert earlier.exists()
    await wait_for(hass, lambda: bool(saved), timeout_s=60)

    clip_id = saved[0].data["clip"]
    name = clip_id.rsplit("/", 1)[1]
    assert sorted(path.name for path in folder.iterdir()) == sorted([name, "notes.txt"])  # at most 1 clip
    assert clip_id == f"media-source://sound_sentry/{entry.entry_id}/{name}"
    assert fired.data[0]["event_type"] == LABEL
    assert fired.data[0]["clip"] == clip_id  # known when the sound started
    parsed = ClipName.parse(name)
    assert parsed is not None
    assert parsed.label == LABEL
    assert parsed.percent is not None
    assert abs(parsed.percent - fired.data[0]["confidence"] * 100) <= 1
    assert abs((dt_util.now().replace(tzinfo=None) - parsed.detected).total_seconds()) < 60
    assert saved[0].data["event_type"] == LABEL
    assert saved[0].data["url"] == f"/media/local/sound_sentry/{entry.entry_id}/{name}"

    # 8 kHz 16-bit mono, from before the sound to just after the sensor turned off, which FFmpeg plays.
    info = ModelInfo.load(model_path)
    with wave.open(str(folder / name)) as file:
        assert (file.getnchannels(), file.getsampwidth(), file.getframerate()) == (1, 2, 8000)
        samples = np.frombuffer(file.readframes(file.getnframes()), dtype=np.int16)
    duration_s = samples.size / 8000
    assert duration_s == pytest.approx(saved[0].data["duration_s"], abs=0.01)
    assert info.window_samples / 8000 + info.hold_s < duration_s <= DEFAULT_MAX_CLIP_S
    with av.open(str(folder / name)) as container:
        decoded = sum(frame.samples for frame in container.decode(audio=0))
    assert decoded == samples.size
    assert np.abs(samples).max() > 1000  # the stream's audio, not silence

    root = await media_source.async_browse_media(hass, "media-source://sound_sentry")
    assert [child.title for child in root.children] == ["Nursery camera"]
    source = await media_source.async_browse_media(hass, root.children[0].media_content_id)
    [child] = source.children
    assert child.media_content_id == clip_id
    assert child.title == f"Gunshot · {parsed.detected:%Y-%m-%d %H:%M:%S} · {parsed.percent}%"
    assert child.can_play
    played = await media_source.async_resolve_media(hass, clip_id, None)
    assert (played.url, played.mime_type) == (saved[0].data["url"], "audio/wav")
    response = await (await hass_client()).get(played.url)
    assert response.status == 200
    assert await response.read() == (folder / name).read_bytes()
    assert (await (await hass_client_no_auth()).get(played.url)).status == 401
    for wrong in (f"{entry.entry_id}/../../secrets.yaml", f"{entry.entry_id}/{earlier.name}", "x/notes.txt"):
        with pytest.raises(media_source.Unresolvable):
            await media_source.async_resolve_media(hass, f"media-source://sound_sentry/{wrong}", None)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.config_entries.async_remove(entry.entry_id)
    assert not folder.exists()


async def test_clips_off_writes_nothing(
    hass: HomeAssistant,
    *,
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    model_path: Path,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    """Off (the default): a real detection fires without a clip id, and nothing is written, no folder."""
    entry = detecting_entry(scene_server(rtsp_server, detection_plan, tmp_path), detection_plan, model_path)
    entry.add_to_hass(hass)
    fired = Fired(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: fired.offs >= 1, timeout_s=60)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert fired.data[0]["event_type"] == LABEL
    assert "clip" not in fired.data[0]
    assert not media_dir.exists()  # noqa: ASYNC240 - a check, not I/O worth an executor


async def test_a_media_folder_that_cannot_be_written_is_logged_once_and_detection_goes_on(
    hass: HomeAssistant,
    *,
    rtsp_server: Callable[..., RtspServer],
    detection_plan: DetectionPlan,
    model_path: Path,
    media_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The media folder is a file (as good as read-only, even for root): each clip is lost, one error is
    logged, the sound is still detected every time; once the folder can be written clips are saved again."""
    media_dir.write_text("not a folder")  # noqa: ASYNC240 - test set-up
    entry = detecting_entry(
        scene_server(rtsp_server, detection_plan, tmp_path), detection_plan, model_path, **{CONF_CLIPS: True}
    )
    entry.add_to_hass(hass)
    fired = Fired(hass)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    assert await hass.config_entries.async_setup(entry.entry_id)
    store = entry.runtime_data.clips
    assert store is not None

    await wait_for(hass, lambda: store.lost >= 2, timeout_s=90)  # two detections, two clips lost
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and "cannot save the clip" in r.getMessage()
    ]
    assert len(errors) == 1
    assert len(fired.data) >= 2
    assert entry.runtime_data.connected

    media_dir.unlink()  # noqa: ASYNC240 - test set-up
    media_dir.mkdir()  # noqa: ASYNC240 - test set-up
    await wait_for(hass, lambda: bool(saved), timeout_s=60)
    assert "clips are saved again" in caplog.text
    assert (media_dir / "sound_sentry" / entry.entry_id / saved[0].data["clip"].rsplit("/", 1)[1]).is_file()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_options_turn_clips_on(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], media_dir: Path
) -> None:
    """The options form offers clips, off for an entry that never set them; on applies by reloading."""
    entry = rtsp_entry(rtsp_server(codec="pcmu").url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.runtime_data.clips is None
    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": "model"})
    result = await hass.config_entries.options.async_configure(result["flow_id"], {CONF_MODEL: TEST_MODEL})
    defaults = {str(key): key.default() for key in result["data_schema"].schema}
    assert (defaults[CONF_CLIPS], defaults[CONF_CLIP_KEEP_DAYS], defaults[CONF_CLIP_MAX]) == (False, 7, 50)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**defaults, CONF_CLIPS: True, CONF_CLIP_KEEP_DAYS: 3, CONF_CLIP_MAX: 10}
    )
    assert result["step_id"] == "custom_thresholds"  # the entry's own thresholds: kept as they are
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    store = entry.runtime_data.clips
    assert store is not None
    assert (store.keep_days, store.max_clips) == (3, 10)
    assert await hass.config_entries.async_unload(entry.entry_id)
    assert not media_dir.exists()  # noqa: ASYNC240 - nothing heard, nothing written


async def test_a_smoke_alarm_gets_its_clip_too(
    hass: HomeAssistant,
    *,
    rtsp_server: Callable[..., RtspServer],
    data_dir: Path,
    media_dir: Path,
    tmp_path: Path,
) -> None:
    """Every sound the source reports keeps a clip, the alarm patterns too: a real smoke alarm recording
    over RTSP fires `smoke_alarm` with its clip's id, and the clip is saved under that sound's name. A
    pattern has no probability: neither the name, the title nor the event claim one."""
    assert await async_setup_component(hass, "media_source", {})
    server = rtsp_server(codec="pcmu", source="file", file=alarm_recording(data_dir, tmp_path / "alarms.wav"))
    entry = rtsp_entry(
        server.url(), threshold=0.999, enabled_classes=[*EVENT_CLASSES, *ALARM_CLASSES], **{CONF_CLIPS: True}
    )
    entry.add_to_hass(hass)
    saved = async_capture_events(hass, EVENT_CLIP_SAVED)
    fired = Fired(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: any(e.data["event_type"] == SMOKE_ALARM for e in saved), timeout_s=90)
    assert await hass.config_entries.async_unload(entry.entry_id)

    [smoke] = [data for data in fired.data if data["event_type"] == SMOKE_ALARM]
    [event] = [event for event in saved if event.data["clip"] == smoke["clip"]]
    name = event.data["clip"].rsplit("/", 1)[1]
    parsed = ClipName.parse(name)
    assert parsed is not None
    assert (parsed.label, parsed.percent) == (SMOKE_ALARM, None)
    assert name.endswith(f"_{SMOKE_ALARM}.wav")
    assert "peak" not in event.data
    assert (media_dir / "sound_sentry" / entry.entry_id / name).is_file()
    source = await media_source.async_browse_media(hass, f"media-source://sound_sentry/{entry.entry_id}")
    assert f"Smoke alarm · {parsed.detected:%Y-%m-%d %H:%M:%S}" in [c.title for c in source.children]
