"""A Home Assistant camera entity as the source: its stream URL is looked up at every connect."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from homeassistant import config_entries
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import numpy as np
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockPlatform, mock_platform

from custom_components.sound_sentry.const import (
    CONF_CAMERA,
    CONF_SOURCE_TYPE,
    CONF_TRANSPORT,
    DOMAIN,
    SourceType,
)
from tests.audio import background_bed, encode_with_pyav
from tests.entries import options
from tests.peers import RtspServer, http_server

from .conftest import wait_for


class StreamCamera(Camera):
    """A camera whose stream URL can change, like a camera behind a cloud or an NVR."""

    _attr_name = "Nursery"
    _attr_unique_id = "nursery"
    _attr_supported_features = CameraEntityFeature.STREAM

    def __init__(self) -> None:
        super().__init__()
        self.url: str | None = None

    async def stream_source(self) -> str | None:
        return self.url

    async def async_camera_image(self, width: int | None = None, height: int | None = None) -> bytes | None:
        return None


async def setup_camera(hass: HomeAssistant) -> StreamCamera:
    camera = StreamCamera()

    async def async_setup_platform(
        hass: HomeAssistant, config: object, add_entities: Callable, info: object = None
    ) -> None:
        add_entities([camera])

    mock_platform(hass, "test.camera", MockPlatform(async_setup_platform=async_setup_platform))
    assert await async_setup_component(hass, "camera", {"camera": {"platform": "test"}})
    await hass.async_block_till_done()
    return camera


async def test_camera_source_follows_the_cameras_url(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    camera = await setup_camera(hass)
    first, second = rtsp_server(codec="aac"), rtsp_server(codec="opus")
    camera.url = first.url()

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
    )
    assert result["step_id"] == "thresholds"
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})  # the model's defaults
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Nursery"
    entry = result["result"]
    assert entry.unique_id == "camera:camera.nursery"
    await wait_for(hass, lambda: hass.states.get("binary_sensor.nursery_listening").state == STATE_ON)

    # The camera's URL changes and the old one dies: the source reconnects to the new URL.
    camera.url = second.url()
    first.stop()
    await wait_for(hass, lambda: not entry.runtime_data.connected)
    await wait_for(hass, lambda: entry.runtime_data.connected, timeout_s=20)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_camera_whose_stream_is_rtsps(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """UniFi Protect and others give rtsps:// with a self-signed certificate."""
    camera = await setup_camera(hass)
    camera.url = rtsp_server(codec="aac", tls=True).url()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
    )
    assert result["step_id"] == "thresholds", result.get("errors")
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    entry = result["result"]
    await wait_for(hass, lambda: entry.runtime_data.windows_classified > 0)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_camera_without_a_stream(hass: HomeAssistant) -> None:
    await setup_camera(hass)  # url stays None
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "camera_no_stream"}


async def test_camera_that_refuses_its_login_gets_a_repair_issue_not_a_reauth(
    hass: HomeAssistant, rtsp_server: Callable[..., RtspServer]
) -> None:
    """A camera entity's credentials belong to its integration: a reauth flow here could never fix them."""
    camera = await setup_camera(hass)
    server = rtsp_server(codec="pcmu", user="viewer", password="right")
    camera.url = server.url("viewer", "wrong")
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Nursery",
        unique_id="camera:camera.nursery",
        data={CONF_SOURCE_TYPE: SourceType.CAMERA, CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"},
        options=options(),
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    issues = ir.async_get(hass)
    issue_id = f"camera_invalid_auth_{entry.entry_id}"
    await wait_for(hass, lambda: issues.async_get_issue(DOMAIN, issue_id) is not None)
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert issues.async_get_issue(DOMAIN, issue_id).translation_placeholders == {"name": "Nursery"}

    # Fixed in the camera's integration, then the entry reloaded: audio again, and the issue is gone.
    camera.url = server.url("viewer", "right")
    assert await hass.config_entries.async_reload(entry.entry_id)
    await wait_for(hass, lambda: entry.runtime_data.connected)
    assert issues.async_get_issue(DOMAIN, issue_id) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.mark.parametrize(
    "stream",
    [
        ("live.m3u8", "aac", 16000, {"format": "hls", "hls_time": "1", "hls_list_size": "0"}),  # HLS
        ("stream.flv", "aac", 16000, {}),  # FLV, as go2rtc and many cameras serve it
        ("stream.mp3", "libmp3lame", 16000, {}),  # plain audio over HTTP
    ],
    ids=["hls", "flv", "mp3"],
)
@pytest.mark.usefixtures("socket_enabled")
async def test_camera_whose_stream_is_http(
    hass: HomeAssistant, tmp_path: Path, data_dir: Path, stream: tuple[str, str, int, dict[str, str]]
) -> None:
    """A camera whose stream is not RTSP (HLS, FLV, MP3 over HTTP) is opened as PyAV opens it."""
    name, codec, rate, container_options = stream
    camera = await setup_camera(hass)
    pcm = (background_bed(data_dir, 6.0) * 32767).astype(np.int16)
    encode_with_pyav(pcm, tmp_path / name, codec, rate, **container_options)
    with http_server(tmp_path) as base:
        camera.url = f"{base}/{name}"
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
        )
        assert result.get("errors") is None
        assert result["step_id"] == "thresholds"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await wait_for(hass, lambda: entry.runtime_data.windows_classified > 0)
        assert await hass.config_entries.async_unload(entry.entry_id)


async def test_camera_whose_stream_cannot_be_opened_says_so_for_a_camera(hass: HomeAssistant) -> None:
    """The user never typed the camera's URL: the error speaks of the camera, not of an RTSP URL."""
    camera = await setup_camera(hass)
    camera.url = "nosuchprotocol://127.0.0.1/stream"
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
    )
    assert result["errors"] == {"base": "camera_stream_unsupported"}
