"""Fixtures for the integration tests: the model, fast timeouts, entries on real sources."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
import time
from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry import const, model
from custom_components.sound_sentry.const import (
    CONF_CHANNELS,
    CONF_DEVICE_ADDRESS,
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_N,
    CONF_SAMPLE_BITS,
    CONF_SAMPLE_RATE,
    CONF_SOURCE_TYPE,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_CLASSES,
    SourceType,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RANDOM_MODEL = FIXTURES / "resnetse_random.onnx"


@pytest.fixture(autouse=True)
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Short waits, so that failures show within seconds."""
    monkeypatch.setattr(const, "PROBE_TIMEOUT_S", 3.0)
    monkeypatch.setattr(const, "OPEN_TIMEOUT_S", 3.0)
    monkeypatch.setattr(const, "READ_TIMEOUT_S", 2.0)


@pytest.fixture(autouse=True)
def model_path(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The shipped model when it is there (the product), else the random test fixture."""
    path = model.MODEL_PATH if model.MODEL_PATH.is_file() else RANDOM_MODEL
    monkeypatch.setattr(model, "MODEL_PATH", path)
    return path


def options(threshold: float = 0.5, **overrides: Any) -> dict[str, Any]:
    """Entry options with one threshold for every class."""
    return {
        **{f"{const.CONF_THRESHOLD_PREFIX}{label}": threshold for label in EVENT_CLASSES},
        CONF_ENABLED_CLASSES: list(EVENT_CLASSES),
        CONF_K: 2,
        CONF_N: 3,
        CONF_HOLD_S: 1.0,
        **overrides,
    }


def rtsp_entry(
    url: str, *, username: str = "", password: str = "", **option_overrides: Any
) -> MockConfigEntry:
    """An entry for an RTSP URL (credentials apart from the URL, as the flow stores them)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Nursery camera",
        unique_id=f"rtsp:{url}",
        data={
            CONF_SOURCE_TYPE: SourceType.RTSP,
            CONF_URL: url,
            CONF_USERNAME: username,
            CONF_PASSWORD: password,
            CONF_TRANSPORT: "tcp",
        },
        options=options(**option_overrides),
    )


def udp_entry(port: int, *, address: str = "127.0.0.1", **option_overrides: Any) -> MockConfigEntry:
    """An entry for an ESPHome microphone sending 16 kHz 16-bit mono."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="Hall microphone",
        unique_id=f"udp:{port}",
        data={
            CONF_SOURCE_TYPE: SourceType.UDP,
            CONF_PORT: port,
            CONF_DEVICE_ADDRESS: address,
            CONF_SAMPLE_RATE: 16000,
            CONF_SAMPLE_BITS: 16,
            CONF_CHANNELS: 1,
        },
        options=options(**option_overrides),
    )


async def wait_for(hass: HomeAssistant, condition: Callable[[], bool], timeout_s: float = 15.0) -> None:
    """Let the loop run until `condition()` holds (audio arrives from real threads in real time)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
        await hass.async_block_till_done()
