"""A Home Assistant camera entity as the source: its stream URL is looked up at every connect."""

from __future__ import annotations

from collections.abc import Callable

from homeassistant import config_entries
from homeassistant.components.camera import Camera, CameraEntityFeature
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockPlatform, mock_platform

from custom_components.sound_sentry.const import CONF_CAMERA, CONF_TRANSPORT, DOMAIN
from tests.peers import RtspServer

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
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"threshold_babycry": 0.5, "threshold_glassbreak": 0.5, "threshold_gunshot": 0.5}
    )
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


async def test_camera_without_a_stream(hass: HomeAssistant) -> None:
    await setup_camera(hass)  # url stays None
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "camera"})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_CAMERA: "camera.nursery", CONF_TRANSPORT: "tcp"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
