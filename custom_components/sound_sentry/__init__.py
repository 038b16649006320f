"""Sound Sentry: local baby-cry, glass-break and gunshot alerts from home audio."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

type SoundSentryConfigEntry = ConfigEntry[None]


async def async_setup_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Set up Sound Sentry from a config entry."""
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Unload a config entry."""
    return True
