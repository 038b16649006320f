"""Constants for the Sound Sentry integration."""

from __future__ import annotations

from enum import StrEnum
import logging
from typing import Final

DOMAIN: Final = "sound_sentry"
LOGGER = logging.getLogger(__package__)

EVENT_CLASSES: Final = ("babycry", "glassbreak", "gunshot")
"""The model sounds that Home Assistant's texts are written for: the translation keys of strings.json
(sensors, events, the sensitivity and threshold fields, `sound_class`) and icons.json are static, so this list
must be too. Everything that serves a source takes its sounds from its model (`ModelInfo.events`); a test
(tests/integration/test_model_contract.py) fails for a shipped model with a sound missing here."""
ALARM_CLASSES: Final = ("smoke_alarm", "co_alarm")
"""Smoke (T3) and CO (T4) alarms, heard by their tone pattern without the model (engine/alarm/)."""
DETECTABLE_CLASSES: Final = (*EVENT_CLASSES, *ALARM_CLASSES)
"""Every sound with texts (as EVENT_CLASSES, static); a source offers its model's sounds and the alarms."""


class SourceType(StrEnum):
    """Where a config entry's audio comes from."""

    CAMERA = "camera"
    RTSP = "rtsp"
    UDP = "udp"


# Config entry data
CONF_SOURCE_TYPE: Final = "source_type"
CONF_CAMERA: Final = "camera"
CONF_TRANSPORT: Final = "transport"
CONF_DEVICE_ADDRESS: Final = "device_address"
CONF_SAMPLE_RATE: Final = "sample_rate"
CONF_SAMPLE_BITS: Final = "sample_bits"
CONF_CHANNELS: Final = "channels"

# Config entry options
CONF_MODEL: Final = "model"
"""Which shipped model listens: "accurate" (new sources) or "compact" (engine/model.py SHIPPED_MODELS)."""
CONF_ENABLED_CLASSES: Final = "enabled_classes"
# Detection overrides (detection_options.py): each key is there only if the user changed it from the model's
# default, so that a new model's defaults reach every source that did not.
CONF_THRESHOLD_PREFIX: Final = "threshold_"
CONF_SENSITIVITY_PREFIX: Final = "sensitivity_"
"""A sensitivity level per sound (engine/detection_settings.py LEVEL_KEYS), instead of a threshold."""
CONF_K: Final = "k"
CONF_N: Final = "n"
CONF_HOLD_S: Final = "hold_s"
CONF_OVERRIDES_FOR: Final = "overrides_for"
"""The model release ({"name", "version"}) that the thresholds, k, n and hold time were chosen for."""
CONF_CLIPS: Final = "clips"
"""Keep the audio of each detection (off by default: it stores the home's audio on disk)."""
CONF_CLIP_KEEP_DAYS: Final = "clip_keep_days"
CONF_CLIP_MAX: Final = "clip_max"
DEFAULT_CLIP_KEEP_DAYS: Final = 7
DEFAULT_CLIP_MAX: Final = 50

EVENT_CLIP_SAVED: Final = "sound_sentry_clip_saved"
"""Fired on the bus when a clip has been written (its event has ended): the notification blueprint waits
for it to update its notification with the audio."""

DEFAULT_UDP_PORT: Final = 6056
UDP_SAMPLE_RATES: Final = (8000, 16000, 22050, 44100, 48000)

PROBE_TIMEOUT_S: float = 10.0
"""How long the config flow waits for the first audio of a new source."""
REPAIR_AFTER_S: float = 300.0
"""A source down (or silent) this long gets a repair issue."""
OPEN_TIMEOUT_S: float = 10.0
READ_TIMEOUT_S: float = 5.0
