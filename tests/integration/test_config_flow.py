"""The config flow against real sources: a GStreamer RTSP server and real UDP datagrams."""

from __future__ import annotations

from collections.abc import Callable
import logging
import socket
from unittest.mock import patch
from urllib.parse import urlsplit

from homeassistant import config_entries
from homeassistant.config_entries import ConfigFlowResult
from homeassistant.const import CONF_NAME, CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry.const import (
    CONF_CHANNELS,
    CONF_CLIP_KEEP_DAYS,
    CONF_CLIP_MAX,
    CONF_CLIPS,
    CONF_DEVICE_ADDRESS,
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_MODEL,
    CONF_N,
    CONF_OVERRIDES_FOR,
    CONF_SAMPLE_BITS,
    CONF_SAMPLE_RATE,
    CONF_SOURCE_TYPE,
    CONF_TRANSPORT,
    DETECTABLE_CLASSES,
    DOMAIN,
    EVENT_CLASSES,
    SourceType,
)
from custom_components.sound_sentry.engine import model
from custom_components.sound_sentry.engine.detection_settings import level_points
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from tests.audio import UdpMicrophone, free_udp_port
from tests.entries import RELEASES, rtsp_entry, udp_entry
from tests.peers import RtspServer

from .conftest import RANDOM_MODEL

PASSWORD = "s3cret-Pa55"


async def start_flow(hass: HomeAssistant, source_type: str) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.MENU
    assert result["menu_options"] == ["camera", "rtsp", "udp"]
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": source_type})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == source_type
    return str(result["flow_id"])


def rtsp_input(url: str, **extra: str) -> dict[str, str]:
    return {CONF_NAME: "Nursery camera", CONF_URL: url, CONF_TRANSPORT: "tcp", **extra}


def sensitivity(choice: str = "default", **choices: str) -> dict[str, str]:
    """The sensitivity form's input: `choice` for every sound but those named."""
    return {f"sensitivity_{label}": choices.get(label, choice) for label in EVENT_CLASSES}


def form_defaults(result: ConfigFlowResult) -> dict[str, object]:
    return {str(key): key.default() for key in result["data_schema"].schema}


def select_options(result: ConfigFlowResult, field: str) -> list[str]:
    [key] = [key for key in result["data_schema"].schema if str(key) == field]
    return list(result["data_schema"].schema[key].config["options"])


async def test_rtsp_source_creates_entry_with_thresholds(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(codec="pcmu", user="parent", password=PASSWORD)
    flow_id = await start_flow(hass, "rtsp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, rtsp_input(server.url(), **{CONF_USERNAME: "parent", CONF_PASSWORD: PASSWORD})
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "thresholds"
    # A sensitivity per sound: the model's default, the levels its measured curve offers, a custom threshold;
    # each with the share of test sounds it was measured to hear.
    info = ModelInfo.load(model_path(DEFAULT_MODEL))
    assert info.operating_curve is not None
    placeholders = result["description_placeholders"]
    assert placeholders["curve_hours"] == f"{info.operating_curve.background_hours:.1f}"
    assert placeholders["hop_s"] == f"{info.hop_s:g}"  # k and n count windows of the model's own hop
    for label in EVENT_CLASSES:
        levels = level_points(info.operating_curve, label)
        assert select_options(result, f"sensitivity_{label}") == ["default", *levels, "custom"]
        for key, point in levels.items():
            assert placeholders[f"{label}_{key}"] == f"{point.recall:.0%}"
    # Custom thresholds: the next step asks for the numbers, with the curve (threshold → alarms/day, recall).
    result = await hass.config_entries.flow.async_configure(flow_id, sensitivity("custom"))
    assert result["step_id"] == "custom_thresholds"
    assert result["description_placeholders"]["hop_s"] == f"{info.hop_s:g}"
    for label in EVENT_CLASSES:
        assert result["description_placeholders"][f"curve_{label}"] == info.operating_curve.summary(
            label, info.thresholds[label]
        )
    result = await hass.config_entries.flow.async_configure(
        flow_id, {"threshold_babycry": 0.6, "threshold_glassbreak": 0.7, "threshold_gunshot": 0.8}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Nursery camera"
    entry = result["result"]
    assert entry.data == {
        CONF_SOURCE_TYPE: SourceType.RTSP,
        CONF_URL: server.url(),
        CONF_USERNAME: "parent",
        CONF_PASSWORD: PASSWORD,
        CONF_TRANSPORT: "tcp",
    }
    assert entry.unique_id == f"rtsp:127.0.0.1:{server.port}/stream"
    # Only what differs from the model's defaults, and the model release it was chosen for. New sources get
    # the accurate model and listen for smoke and CO alarms too.
    assert DEFAULT_MODEL == "accurate"
    assert entry.options == {
        CONF_MODEL: "accurate",
        CONF_ENABLED_CLASSES: ["babycry", "glassbreak", "gunshot", "smoke_alarm", "co_alarm"],
        "threshold_babycry": 0.6,
        "threshold_glassbreak": 0.7,
        "threshold_gunshot": 0.8,
        CONF_OVERRIDES_FOR: {"name": info.name, "version": info.version},
    }
    await hass.async_block_till_done()
    settings = entry.runtime_data.detector_settings
    assert dict(settings.thresholds) == {"babycry": 0.6, "glassbreak": 0.7, "gunshot": 0.8}
    assert (settings.k, settings.n, settings.hold_s) == (info.k, info.n, info.hold_s)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_custom_thresholds_default_to_the_model_sidecar(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """The sensitivity starts at the model's default; a custom threshold at its sidecar's threshold, and
    one equal to it is no override."""
    from custom_components.sound_sentry.model_store import async_get_model

    server = rtsp_server(codec="pcma")
    flow_id = await start_flow(hass, "rtsp")
    result = await hass.config_entries.flow.async_configure(flow_id, rtsp_input(server.url()))
    assert form_defaults(result) == sensitivity("default")
    result = await hass.config_entries.flow.async_configure(flow_id, sensitivity(gunshot="custom"))
    thresholds = (await async_get_model(hass, DEFAULT_MODEL)).info.thresholds
    assert form_defaults(result) == {"threshold_gunshot": thresholds["gunshot"]}
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert "threshold_gunshot" not in result["result"].options
    assert CONF_OVERRIDES_FOR not in result["result"].options
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)


async def test_default_sensitivity_stores_no_detection_settings(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """Submitting the sensitivity form untouched creates the entry with no overrides: it runs on the
    model's defaults, and follows them when the model is updated."""
    from custom_components.sound_sentry.model_store import async_get_model

    server = rtsp_server(codec="pcmu")
    flow_id = await start_flow(hass, "rtsp")
    await hass.config_entries.flow.async_configure(flow_id, rtsp_input(server.url()))
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.options == {CONF_MODEL: DEFAULT_MODEL, CONF_ENABLED_CLASSES: list(DETECTABLE_CLASSES)}
    await hass.async_block_till_done()
    info = (await async_get_model(hass, DEFAULT_MODEL)).info
    assert entry.runtime_data.detector_settings == info.detector_settings()
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_level_is_stored_by_name_and_read_off_the_curve(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """A sensitivity level is kept as the level (it means the same for any model), its threshold the
    model's measured one."""
    from custom_components.sound_sentry.model_store import async_get_model

    info = (await async_get_model(hass, DEFAULT_MODEL)).info
    offered = {label: level_points(info.operating_curve, label) for label in EVENT_CLASSES}
    label, points = next((label, points) for label, points in offered.items() if points)
    level, point = next(iter(points.items()))
    server = rtsp_server(codec="pcmu")
    flow_id = await start_flow(hass, "rtsp")
    await hass.config_entries.flow.async_configure(flow_id, rtsp_input(server.url()))
    result = await hass.config_entries.flow.async_configure(flow_id, sensitivity(**{label: level}))
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    assert entry.options[f"sensitivity_{label}"] == level
    assert CONF_OVERRIDES_FOR not in entry.options  # no number chosen for this model
    await hass.async_block_till_done()
    assert entry.runtime_data.detector_settings.thresholds[label] == point.threshold
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("http://127.0.0.1/stream", "invalid_url"),
        ("rtsp://", "invalid_url"),
        ("rtsp://user:pw@127.0.0.1/stream", "invalid_url"),
    ],
)
async def test_rtsp_rejects_bad_urls(hass: HomeAssistant, url: str, error: str) -> None:
    flow_id = await start_flow(hass, "rtsp")
    result = await hass.config_entries.flow.async_configure(flow_id, rtsp_input(url))
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: error}


async def test_rtsp_errors_from_real_servers(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer], socket_enabled: None
) -> None:
    flow_id = await start_flow(hass, "rtsp")

    # Nothing listens on the port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed_port = sock.getsockname()[1]
    result = await hass.config_entries.flow.async_configure(
        flow_id, rtsp_input(f"rtsp://127.0.0.1:{closed_port}/stream")
    )
    assert result["errors"] == {"base": "cannot_connect"}

    # Wrong password (401), and no password at all.
    server = rtsp_server(codec="pcmu", user="parent", password=PASSWORD)
    result = await hass.config_entries.flow.async_configure(
        flow_id, rtsp_input(server.url(), **{CONF_USERNAME: "parent", CONF_PASSWORD: "wrong"})
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(flow_id, rtsp_input(server.url()))
    assert result["errors"] == {"base": "invalid_auth"}

    # A camera without an audio track.
    video_only = rtsp_server(source="video")
    result = await hass.config_entries.flow.async_configure(flow_id, rtsp_input(video_only.url()))
    assert result["errors"] == {"base": "no_audio"}
    hass.config_entries.flow.async_abort(flow_id)


async def test_rtsp_already_configured(hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]) -> None:
    server = rtsp_server(codec="pcmu")
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        rtsp_entry(server.url()).add_to_hass(hass)
        entry = hass.config_entries.async_entries(DOMAIN)[0]
        hass.config_entries.async_update_entry(entry, unique_id=f"rtsp:127.0.0.1:{server.port}/stream")
        flow_id = await start_flow(hass, "rtsp")
        result = await hass.config_entries.flow.async_configure(flow_id, rtsp_input(server.url()))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_nvr_channels_are_separate_sources(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """NVRs tell channels apart by the query (Dahua, Amcrest): each channel is its own entry."""
    server = rtsp_server(codec="pcmu")  # serves any query on its path, as an NVR serves channels
    channel_1 = server.url(path="/stream?channel=1&subtype=0")
    flow_id = await start_flow(hass, "rtsp")
    await hass.config_entries.flow.async_configure(flow_id, rtsp_input(channel_1))
    result = await hass.config_entries.flow.async_configure(flow_id, {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    first = result["result"]
    assert first.unique_id == f"rtsp:127.0.0.1:{server.port}/stream?channel=1&subtype=0"

    flow_id = await start_flow(hass, "rtsp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, rtsp_input(server.url(path="/stream?channel=2&subtype=0"))
    )
    assert result["step_id"] == "thresholds"
    hass.config_entries.flow.async_abort(flow_id)

    # The same channel with a password in the query (or the parameters in another order) is the same.
    flow_id = await start_flow(hass, "rtsp")
    result = await hass.config_entries.flow.async_configure(
        flow_id, rtsp_input(server.url(path="/stream?subtype=0&password=x&channel=1"))
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(first.entry_id)


@pytest.mark.parametrize(
    ("url", "unique_id"),
    [
        ("rtsp://NVR.local/cam/realmonitor?channel=2", "rtsp:nvr.local:554/cam/realmonitor?channel=2"),
        (
            "rtsp://nvr.local:554/cam/realmonitor?channel=2&user=admin",
            "rtsp:nvr.local:554/cam/realmonitor?channel=2",
        ),
        ("rtsps://cam.local/stream", "rtsp:cam.local:322/stream"),
        ("rtsps://cam.local:322/stream", "rtsp:cam.local:322/stream"),
        ("rtsp://cam.local/stream", "rtsp:cam.local:554/stream"),
    ],
)
async def test_entries_of_version_1_1_get_the_new_unique_id(
    hass: HomeAssistant, url: str, unique_id: str
) -> None:
    """Migration to 1.2: the unique id keeps the query (minus credentials); rtsps is port 322 by default."""
    entry = rtsp_entry(url)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(
        entry, unique_id=f"rtsp:{urlsplit(url).hostname}:554/x", minor_version=1
    )
    assert (entry.version, entry.minor_version) == (1, 1)
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert (entry.version, entry.minor_version) == (1, 5)
    assert entry.unique_id == unique_id


async def test_entries_of_version_1_2_get_smoke_and_co_alarms(hass: HomeAssistant) -> None:
    """Migration to 1.3: smoke and CO alarms join the sounds to detect, as for a new entry."""
    entry = rtsp_entry("rtsp://cam.local/stream", enabled_classes=["babycry"])
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, minor_version=2)
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert (entry.version, entry.minor_version) == (1, 5)
    assert entry.options[CONF_ENABLED_CLASSES] == ["babycry", "smoke_alarm", "co_alarm"]
    assert entry.options["threshold_babycry"] == 0.5


async def test_entries_of_version_1_3_keep_the_compact_model(hass: HomeAssistant) -> None:
    """Migration to 1.4: a source made before there were two models keeps the one its thresholds fit."""
    entry = rtsp_entry("rtsp://cam.local/stream")
    options = {key: value for key, value in entry.options.items() if key != CONF_MODEL}
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=options, minor_version=3)
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert (entry.version, entry.minor_version) == (1, 5)
    assert entry.options[CONF_MODEL] == "compact"
    assert entry.options["threshold_babycry"] == 0.5  # kept by 1.5 (tests/integration/test_model_upgrade.py)


async def test_an_entry_from_a_newer_major_version_is_not_loaded(hass: HomeAssistant) -> None:
    entry = rtsp_entry("rtsp://cam.local/stream")
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, version=2)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is config_entries.ConfigEntryState.MIGRATION_ERROR


def udp_input(port: int, address: str = "127.0.0.1") -> dict[str, object]:
    return {
        CONF_NAME: "Hall microphone",
        CONF_PORT: port,
        CONF_DEVICE_ADDRESS: address,
        CONF_SAMPLE_RATE: "16000",
        CONF_SAMPLE_BITS: "16",
        CONF_CHANNELS: "1",
    }


async def test_udp_microphone_creates_entry(
    hass: HomeAssistant, socket_enabled: None, data_dir: object
) -> None:
    import numpy as np

    port = free_udp_port()
    microphone = UdpMicrophone(port, np.zeros(8000, dtype=np.float32) + 0.01)
    microphone.start()
    try:
        flow_id = await start_flow(hass, "udp")
        result = await hass.config_entries.flow.async_configure(flow_id, udp_input(port))
        assert result["step_id"] == "thresholds"
        result = await hass.config_entries.flow.async_configure(flow_id, sensitivity())
    finally:
        microphone.stop()
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["result"].data == {
        CONF_SOURCE_TYPE: SourceType.UDP,
        CONF_PORT: port,
        CONF_DEVICE_ADDRESS: "127.0.0.1",
        CONF_SAMPLE_RATE: 16000,
        CONF_SAMPLE_BITS: 16,
        CONF_CHANNELS: 1,
    }
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(result["result"].entry_id)


async def test_udp_errors(hass: HomeAssistant, socket_enabled: None) -> None:
    flow_id = await start_flow(hass, "udp")
    # A host name cannot be checked against the sender address of a datagram.
    result = await hass.config_entries.flow.async_configure(flow_id, udp_input(6056, address="mic.local"))
    assert result["errors"] == {CONF_DEVICE_ADDRESS: "invalid_address"}
    # No datagrams at all.
    result = await hass.config_entries.flow.async_configure(flow_id, udp_input(free_udp_port()))
    assert result["errors"] == {"base": "no_audio"}
    # Datagrams, but from another address than the device's: still no audio.
    port = free_udp_port()
    import numpy as np

    microphone = UdpMicrophone(port, np.full(800, 0.01, dtype=np.float32))
    microphone.start()
    try:
        result = await hass.config_entries.flow.async_configure(flow_id, udp_input(port, address="127.0.0.9"))
    finally:
        microphone.stop()
    assert result["errors"] == {"base": "no_audio"}
    # The port is taken.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("0.0.0.0", 0))
        result = await hass.config_entries.flow.async_configure(flow_id, udp_input(taken.getsockname()[1]))
    assert result["errors"] == {"base": "port_in_use"}
    hass.config_entries.flow.async_abort(flow_id)


async def test_udp_already_configured(hass: HomeAssistant) -> None:
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        udp_entry(6056).add_to_hass(hass)
        flow_id = await start_flow(hass, "udp")
        result = await hass.config_entries.flow.async_configure(flow_id, udp_input(6056))
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


async def test_missing_model_aborts_the_flow(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    from pathlib import Path

    monkeypatch.setattr(model, "MODELS_DIR", Path(str(tmp_path)))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "model_unavailable"


async def options_model(hass: HomeAssistant, entry: MockConfigEntry) -> ConfigFlowResult:
    """Open the options and choose "Model and detection settings" in their menu: the model form."""
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert result["step_id"] == "init"
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"next_step_id": "model"})
    assert result["step_id"] == "model"
    return result


async def options_detection(
    hass: HomeAssistant, entry: MockConfigEntry, model: str = "compact"
) -> ConfigFlowResult:
    """Open the options, keep (or choose) `model`: the detection settings form."""
    result = await options_model(hass, entry)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {CONF_MODEL: model})
    assert result["step_id"] == "detection"
    return result


async def test_options_flow(hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]) -> None:
    server = rtsp_server(codec="pcmu")
    entry = rtsp_entry(server.url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    info = entry.runtime_data.model.info
    assert (info.k, info.n) != (2, 4)
    assert info.hold_s != 4.0

    result = await options_detection(hass, entry)
    assert result["type"] is FlowResultType.FORM
    # The entry's own thresholds (0.5) show as custom ones.
    assert form_defaults(result) | sensitivity("custom") == form_defaults(result)
    new = {
        **sensitivity("custom"),
        CONF_ENABLED_CLASSES: ["glassbreak", "gunshot"],
        CONF_K: 3,
        CONF_N: 2,
        CONF_HOLD_S: 4.0,
        CONF_CLIPS: False,
        CONF_CLIP_KEEP_DAYS: 7,
        CONF_CLIP_MAX: 50,
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], new)
    assert result["errors"] == {CONF_K: "k_greater_than_n"}
    assert form_defaults(result)[CONF_K] == 3  # the form keeps what was typed
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**new, CONF_K: 1, CONF_ENABLED_CLASSES: []}
    )
    assert result["errors"] == {CONF_ENABLED_CLASSES: "no_classes"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**new, CONF_K: 2, CONF_N: 4}
    )
    assert result["step_id"] == "custom_thresholds"
    assert form_defaults(result) == {f"threshold_{label}": 0.5 for label in EVENT_CLASSES}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"threshold_babycry": 0.9, "threshold_glassbreak": 0.4, "threshold_gunshot": 0.5}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()

    # Stored: what differs from the model's defaults, for its release. Applied by reload: the baby-cry
    # sensor is gone, the detector uses the new settings.
    assert entry.options == {
        CONF_MODEL: "compact",
        CONF_ENABLED_CLASSES: ["glassbreak", "gunshot"],
        CONF_CLIPS: False,
        CONF_CLIP_KEEP_DAYS: 7,
        CONF_CLIP_MAX: 50,
        "threshold_babycry": 0.9,
        "threshold_glassbreak": 0.4,
        "threshold_gunshot": 0.5,
        CONF_K: 2,
        CONF_N: 4,
        CONF_HOLD_S: 4.0,
        CONF_OVERRIDES_FOR: RELEASES["compact"],
    }
    settings = entry.runtime_data.detector_settings
    assert dict(settings.thresholds) == {"glassbreak": 0.4, "gunshot": 0.5}
    assert (settings.k, settings.n, settings.hold_s) == (2, 4, 4.0)
    assert hass.states.get("binary_sensor.nursery_camera_baby_crying") is None
    assert hass.states.get("binary_sensor.nursery_camera_glass_breaking") is not None
    assert entry.runtime_data.alarm_settings is None
    assert hass.states.get("binary_sensor.nursery_camera_smoke_alarm") is None

    # Smoke alarm on (CO alarm off), the thresholds back at the model's defaults (nothing stored for them):
    # the alarm's sensor (device class smoke) and event type appear.
    result = await options_detection(hass, entry)
    assert form_defaults(result)[CONF_N] == 4
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **new,
            **sensitivity("default"),
            CONF_K: 2,
            CONF_N: 4,
            CONF_ENABLED_CLASSES: ["gunshot", "smoke_alarm"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert not any(key.startswith("threshold_") for key in entry.options)
    runtime = entry.runtime_data
    assert runtime.alarm_settings is not None
    assert list(runtime.alarm_settings.labels) == ["smoke_alarm"]
    assert dict(runtime.detector_settings.thresholds) == {"gunshot": info.thresholds["gunshot"]}
    smoke = hass.states.get("binary_sensor.nursery_camera_smoke_alarm")
    assert smoke is not None
    assert smoke.attributes["device_class"] == "smoke"
    assert hass.states.get("binary_sensor.nursery_camera_co_alarm") is None
    assert hass.states.get("binary_sensor.nursery_camera_glass_breaking") is None
    assert hass.states.get("event.nursery_camera_sound").attributes["event_types"] == [
        "gunshot",
        "smoke_alarm",
    ]

    # Only alarms, and the model's own k, n and hold: the model's classes are all off, which is allowed
    # (at least one sound), and nothing of the model is overridden any more.
    result = await options_detection(hass, entry)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            **new,
            **sensitivity("default"),
            CONF_K: info.k,
            CONF_N: info.n,
            CONF_HOLD_S: info.hold_s,
            CONF_ENABLED_CLASSES: ["smoke_alarm", "co_alarm"],
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options == {
        CONF_MODEL: "compact",
        CONF_ENABLED_CLASSES: ["smoke_alarm", "co_alarm"],
        CONF_CLIPS: False,
        CONF_CLIP_KEEP_DAYS: 7,
        CONF_CLIP_MAX: 50,
    }
    assert (
        hass.states.get("binary_sensor.nursery_camera_co_alarm").attributes["device_class"]
        == "carbon_monoxide"
    )
    assert hass.states.get("binary_sensor.nursery_camera_gunshot") is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_options_switch_the_model_with_its_own_defaults(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """The model step shows both models' measured figures; the next form starts from the chosen one's
    defaults (a sensitivity level stays), and the source runs the chosen model after the reload."""
    from custom_components.sound_sentry.model_store import async_get_model

    accurate = (await async_get_model(hass, "accurate")).info
    [(label, level)] = [
        (label, next(iter(points)))
        for label in EVENT_CLASSES
        if (points := level_points(accurate.operating_curve, label))
    ][:1]
    server = rtsp_server(codec="pcmu")
    entry = rtsp_entry(server.url(), threshold=0.42, **{f"sensitivity_{label}": level})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.runtime_data.model.info.architecture == "resnetse"

    result = await options_model(hass, entry)
    placeholders = result["description_placeholders"]
    for name in ("accurate", "compact"):
        info = (await async_get_model(hass, name)).info
        recall = info.metrics["streams"]["no_level_cue"]["recall"]["glassbreak"]
        assert f"{recall:.0%}" in placeholders[f"model_{name}"]
    result = await hass.config_entries.options.async_configure(result["flow_id"], {CONF_MODEL: "accurate"})
    defaults = form_defaults(result)
    assert {key: defaults[key] for key in sensitivity()} == sensitivity(**{label: level})
    assert (defaults[CONF_K], defaults[CONF_N]) == (accurate.k, accurate.n)
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_MODEL] == "accurate"
    assert entry.runtime_data.model.info.architecture == "mobilenet"
    assert CONF_OVERRIDES_FOR not in entry.options  # the compact model's 0.42 did not come along
    level_threshold = level_points(accurate.operating_curve, label)[level].threshold
    assert dict(entry.runtime_data.detector_settings.thresholds) == {
        **{other: accurate.thresholds[other] for other in EVENT_CLASSES},
        label: level_threshold,
    }

    # A custom threshold typed for this model starts from its default, and shows again next time.
    result = await options_detection(hass, entry, "accurate")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**form_defaults(result), "sensitivity_gunshot": "custom"}
    )
    assert form_defaults(result) == {"threshold_gunshot": accurate.thresholds["gunshot"]}
    result = await hass.config_entries.options.async_configure(result["flow_id"], {"threshold_gunshot": 0.42})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_OVERRIDES_FOR] == RELEASES["accurate"]
    result = await options_detection(hass, entry, "accurate")
    assert form_defaults(result)["sensitivity_gunshot"] == "custom"
    result = await hass.config_entries.options.async_configure(result["flow_id"], form_defaults(result))
    assert form_defaults(result) == {"threshold_gunshot": 0.42}
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_model_that_cannot_load_is_refused_in_the_model_step(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model step shows a model that cannot load as "not installed"; choosing it anyway gives a form
    error that says why and what to do, the choice stays in the form and the source keeps its model and
    options; the other model then goes on with what the source had."""
    monkeypatch.setitem(model.SHIPPED_MODELS, "accurate", "/nonexistent/sound_sentry_mobilenet.onnx")
    # Nothing answers: the options need no audio.
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream", clips=True, clip_max=7)
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    stored = dict(entry.options)
    result = await options_model(hass, entry)
    assert result["description_placeholders"]["model_accurate"] == "not installed"
    compact = ModelInfo.load(model_path("compact"))
    assert result["description_placeholders"]["licence_compact"] == compact.licence
    result = await hass.config_entries.options.async_configure(result["flow_id"], {CONF_MODEL: "accurate"})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "model"
    assert result["errors"] == {CONF_MODEL: "model_unavailable"}
    assert "/nonexistent/sound_sentry_mobilenet.json not found" in result["description_placeholders"]["error"]
    assert form_defaults(result) == {CONF_MODEL: "accurate"}
    assert dict(entry.options) == stored
    result = await hass.config_entries.options.async_configure(result["flow_id"], {CONF_MODEL: "compact"})
    assert result["step_id"] == "detection"
    assert (form_defaults(result)[CONF_CLIPS], form_defaults(result)[CONF_CLIP_MAX]) == (True, 7)
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_changes_the_url(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    old, new = rtsp_server(codec="pcmu"), rtsp_server(codec="aac")
    entry = rtsp_entry(old.url())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "ftp://nope", CONF_TRANSPORT: "tcp"}
    )
    assert result["errors"] == {CONF_URL: "invalid_url"}
    # A well-formed URL where nothing answers: the new source is tried first, and the form says so.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "rtsp://127.0.0.1:9/stream", CONF_TRANSPORT: "tcp"}
    )
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_URL] == old.url()
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: new.url(), CONF_TRANSPORT: "tcp"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    await hass.async_block_till_done()
    assert entry.data[CONF_URL] == new.url()
    assert entry.unique_id == f"rtsp:127.0.0.1:{new.port}/stream"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reauth_when_the_camera_answers_401(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    server = rtsp_server(codec="pcmu", user="parent", password=PASSWORD)
    entry = rtsp_entry(server.url(), username="parent", password="old-password")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    from .conftest import wait_for

    await wait_for(hass, lambda: any(hass.config_entries.flow.async_progress_by_handler(DOMAIN)))
    flow = hass.config_entries.flow.async_progress_by_handler(DOMAIN)[0]
    assert flow["context"]["source"] == config_entries.SOURCE_REAUTH
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_USERNAME: "parent", CONF_PASSWORD: "still-wrong"}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_USERNAME: "parent", CONF_PASSWORD: PASSWORD}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_PASSWORD] == PASSWORD
    await hass.async_block_till_done()
    await wait_for(hass, lambda: entry.runtime_data.connected)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_refused_credentials_are_not_retried_at_once(
    hass: HomeAssistant,
    rtsp_server: Callable[..., RtspServer],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """After a 401 the source waits for reauth (or an hour), not the usual seconds: no account lockout."""
    from custom_components.sound_sentry.engine.monitor import SourceMonitor

    from .conftest import RUNNER_LOGGER, wait_for

    caplog.set_level(logging.DEBUG, logger=RUNNER_LOGGER)

    attempts = 0
    build_source = SourceMonitor._build_source

    def counting_build_source(self: SourceMonitor) -> object:
        nonlocal attempts
        attempts += 1
        return build_source(self)

    monkeypatch.setattr(SourceMonitor, "_build_source", counting_build_source)
    server = rtsp_server(codec="pcmu", user="parent", password=PASSWORD)
    entry = rtsp_entry(server.url(), username="parent", password="old-password")
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for(hass, lambda: any(hass.config_entries.flow.async_progress_by_handler(DOMAIN)))
    assert entry.runtime_data.last_error is not None
    assert entry.runtime_data.last_error.reason == "invalid_auth"
    # The source thread's decision, as it logs it: the next attempt in an hour (not the 2 s backoff).
    await wait_for(hass, lambda: "next attempt in 3600.0 s" in caplog.text)
    assert attempts == 1
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_reconfigure_a_udp_microphone(hass: HomeAssistant, socket_enabled: None) -> None:
    import numpy as np

    entry = udp_entry(free_udp_port())
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    new_port = free_udp_port()
    microphone = UdpMicrophone(new_port, np.full(800, 0.01, dtype=np.float32))
    microphone.start()
    try:
        result = await entry.start_reconfigure_flow(hass)
        form = {k: v for k, v in udp_input(new_port).items() if k != CONF_NAME}
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {**form, CONF_DEVICE_ADDRESS: "not-an-ip"}
        )
        assert result["errors"] == {CONF_DEVICE_ADDRESS: "invalid_address"}
        result = await hass.config_entries.flow.async_configure(result["flow_id"], form)
        assert result["type"] is FlowResultType.ABORT
        assert result["reason"] == "reconfigure_successful"
        await hass.async_block_till_done()
    finally:
        microphone.stop()
    assert entry.data[CONF_PORT] == new_port
    assert entry.unique_id == f"udp:{new_port}"
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_model_without_a_measured_curve_says_so_in_the_forms(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A model whose sidecar has no operating curve (the random test model): no levels to offer (only its
    default and a custom threshold), and the threshold forms show "-"."""
    monkeypatch.setitem(model.SHIPPED_MODELS, "compact", str(RANDOM_MODEL))  # an absolute path: the fixture
    monkeypatch.setitem(model.SHIPPED_MODELS, "accurate", "/nonexistent/sound_sentry_mobilenet.onnx")
    assert ModelInfo.load(RANDOM_MODEL).operating_curve is None
    # Nothing answers: the options need no audio. A level this model cannot offer reads as its default.
    entry = rtsp_entry(
        "rtsp://127.0.0.1:9/stream", threshold=None, sensitivity_babycry="strict", threshold_gunshot=0.6
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    assert entry.runtime_data.detector_settings.thresholds["babycry"] == 0.5  # the random model's default
    # The model step: a model that cannot load says so; one without measured figures shows "-".
    result = await options_model(hass, entry)
    assert result["description_placeholders"]["model_accurate"] == "not installed"
    assert result["description_placeholders"]["model_compact"].startswith("hears - / - / - ")
    hass.config_entries.options.async_abort(result["flow_id"])
    result = await options_detection(hass, entry)
    assert result["type"] is FlowResultType.FORM
    for label in EVENT_CLASSES:
        assert select_options(result, f"sensitivity_{label}") == ["default", "custom"]
    assert {key: form_defaults(result)[key] for key in sensitivity()} == sensitivity(gunshot="custom")
    placeholders = result["description_placeholders"]
    assert placeholders["curve_hours"] == "-"
    assert {placeholders[f"{label}_{key}"] for label in EVENT_CLASSES for key in ("strict", "default")} == {
        "-"
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], form_defaults(result))
    assert result["step_id"] == "custom_thresholds"
    assert form_defaults(result) == {"threshold_gunshot": 0.6}
    placeholders = result["description_placeholders"]
    assert {placeholders[key] for key in placeholders if key.startswith("curve_")} == {"-"}
    assert {"curve_hours", "curve_babycry", "curve_glassbreak", "curve_gunshot"} <= set(placeholders)
    hass.config_entries.options.async_abort(result["flow_id"])
    assert await hass.config_entries.async_unload(entry.entry_id)
