"""Sound Sentry config entries as the flows store them, for the benchmarks that run Home Assistant and the
integration tests (tests/entries.py offers them there; one module: an entry built elsewhere drifts from
what the flows make)."""

from __future__ import annotations

from typing import Any

from homeassistant.const import CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry.config_flow import SoundSentryConfigFlow
from custom_components.sound_sentry.const import (
    CONF_CHANNELS,
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
    CONF_THRESHOLD_PREFIX,
    CONF_TRANSPORT,
    DETECTABLE_CLASSES,
    DOMAIN,
    EVENT_CLASSES,
    SourceType,
)
from custom_components.sound_sentry.detection_options import is_number_key, release_of
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.entry_source import unique_id_for

TEST_MODEL = "compact"
"""The model of the test entries: the integration tests' end-to-end plans are derived for it."""
RELEASES = {name: release_of(ModelInfo.load(model_path(name))) for name in SHIPPED_MODELS}
"""Each shipped model's release, as an entry's `overrides_for` records it."""


def options(threshold: float | None = 0.5, **overrides: Any) -> dict[str, Any]:
    """Entry options as the flows store them: `threshold` for every class, k 2 of 3 and a 1 s hold, as
    overrides made for the installed model; `threshold=None`: none of these, the model's own settings."""
    stored: dict[str, Any] = {CONF_MODEL: TEST_MODEL, CONF_ENABLED_CLASSES: list(EVENT_CLASSES)}
    if threshold is not None:
        stored |= {
            **{f"{CONF_THRESHOLD_PREFIX}{label}": threshold for label in EVENT_CLASSES},
            CONF_K: 2,
            CONF_N: 3,
            CONF_HOLD_S: 1.0,
        }
    stored |= overrides
    if any(is_number_key(key) for key in stored):
        stored.setdefault(CONF_OVERRIDES_FOR, RELEASES[stored[CONF_MODEL]])
    return stored


def flow_defaults(info: ModelInfo) -> dict[str, Any]:
    """Option overrides for the settings a new entry runs with: the model's own thresholds, k-of-n and hold
    (its sidecar's; the config flow stores none of them), every sound enabled, smoke and CO alarms too."""
    return {
        **{f"{CONF_THRESHOLD_PREFIX}{label}": info.thresholds[label] for label in EVENT_CLASSES},
        CONF_ENABLED_CLASSES: list(DETECTABLE_CLASSES),
        CONF_K: info.k,
        CONF_N: info.n,
        CONF_HOLD_S: info.hold_s,
    }


def _entry(title: str, data: dict[str, Any], entry_options: dict[str, Any]) -> MockConfigEntry:
    """An entry as the config flow creates it: its unique id from its data, the flow's version."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=unique_id_for(data),
        data=data,
        options=entry_options,
        version=SoundSentryConfigFlow.VERSION,
        minor_version=SoundSentryConfigFlow.MINOR_VERSION,
    )


def rtsp_entry(
    url: str,
    *,
    username: str = "",
    password: str = "",
    title: str = "Nursery camera",
    **option_overrides: Any,
) -> MockConfigEntry:
    """An entry for an RTSP URL (credentials apart from the URL, as the flow stores them)."""
    data = {
        CONF_SOURCE_TYPE: SourceType.RTSP,
        CONF_URL: url,
        CONF_USERNAME: username,
        CONF_PASSWORD: password,
        CONF_TRANSPORT: "tcp",
    }
    return _entry(title, data, options(**option_overrides))


def udp_entry(
    port: int, *, address: str = "127.0.0.1", title: str = "Hall microphone", **option_overrides: Any
) -> MockConfigEntry:
    """An entry for an ESPHome microphone sending 16 kHz 16-bit mono."""
    data = {
        CONF_SOURCE_TYPE: SourceType.UDP,
        CONF_PORT: port,
        CONF_DEVICE_ADDRESS: address,
        CONF_SAMPLE_RATE: 16000,
        CONF_SAMPLE_BITS: 16,
        CONF_CHANNELS: 1,
    }
    return _entry(title, data, options(**option_overrides))
