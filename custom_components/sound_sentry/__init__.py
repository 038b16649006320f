"""Sound Sentry: local baby-cry, glass-break and gunshot alerts from home audio.

This module stays free of Home Assistant imports, so that the engine subpackage can be imported and run
on its own (`python -m custom_components.sound_sentry.engine`, training, benchmarks); the Home Assistant
side of setting up an entry lives in entry.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeassistant.config_entries import ConfigEntry
    from homeassistant.core import HomeAssistant

    from .runtime import SoundSentryConfigEntry


async def async_setup_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Set up a source: see entry.py."""
    from .entry import async_setup_entry as setup_entry  # noqa: PLC0415 - see the module docstring

    return await setup_entry(hass, entry)


async def async_migrate_entry(hass: HomeAssistant, entry: ConfigEntry) -> bool:
    """Migrate an entry of an older version: see entry.py."""
    from .entry import async_migrate_entry as migrate_entry  # noqa: PLC0415 - see the module docstring

    return await migrate_entry(hass, entry)


async def async_remove_entry(hass: HomeAssistant, entry: ConfigEntry) -> None:
    """Delete a removed source's clips: see entry.py."""
    from .entry import async_remove_entry as remove_entry  # noqa: PLC0415 - see the module docstring

    await remove_entry(hass, entry)


async def async_unload_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Unload a source: see entry.py."""
    from .entry import async_unload_entry as unload_entry  # noqa: PLC0415 - see the module docstring

    return await unload_entry(hass, entry)
