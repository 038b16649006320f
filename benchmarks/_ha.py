"""What the Home Assistant benchmarks share: an RTSP entry at the model's own detection defaults."""

from __future__ import annotations

from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sound_sentry.const import (
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_N,
    CONF_SOURCE_TYPE,
    CONF_THRESHOLD_PREFIX,
    CONF_TRANSPORT,
    DOMAIN,
    EVENT_CLASSES,
    SourceType,
)
from custom_components.sound_sentry.engine.model_info import ModelInfo


def rtsp_entry(url: str, info: ModelInfo, title: str) -> MockConfigEntry:
    """An RTSP entry (no credentials, TCP) with the thresholds, k-of-n and hold of the model's sidecar."""
    return MockConfigEntry(
        domain=DOMAIN,
        title=title,
        unique_id=f"rtsp:{url}",
        data={
            CONF_SOURCE_TYPE: SourceType.RTSP,
            CONF_URL: url,
            CONF_USERNAME: "",
            CONF_PASSWORD: "",
            CONF_TRANSPORT: "tcp",
        },
        options={
            **{f"{CONF_THRESHOLD_PREFIX}{label}": info.thresholds[label] for label in EVENT_CLASSES},
            CONF_ENABLED_CLASSES: list(EVENT_CLASSES),
            CONF_K: info.k,
            CONF_N: info.n,
            CONF_HOLD_S: info.hold_s,
        },
    )
