"""Sound Sentry: local baby-cry, glass-break and gunshot alerts from home audio.

Why this module imports Home Assistant only in its functions: the engine subpackage is imported through
it (`python -m custom_components.sound_sentry.engine`, training on Python 3.11, the MQTT service), where
Home Assistant is not installed. So the Home Assistant work lives in entry.py, imported when an entry is
set up, and Home Assistant's types are imported for the type checker alone. `async_setup_entry` still
assigns `entry.runtime_data` itself: that is where Home Assistant (and its `runtime-data` rule) expects it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from homeassistant.core import HomeAssistant

    from .runtime import SoundSentryConfigEntry


async def async_setup_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Set up a source: the shared model and the source's runtime, then its entities and listening."""
    from . import entry as setup  # noqa: PLC0415 - see the module docstring

    entry.runtime_data = await setup.async_create_runtime(hass, entry)
    await setup.async_start(hass, entry)
    return True


async def async_migrate_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Migrate an entry of an older version: see entry.py."""
    from .entry import async_migrate_entry as migrate_entry  # noqa: PLC0415 - see the module docstring

    return await migrate_entry(hass, entry)


async def async_remove_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """Delete a removed source's clips: see entry.py."""
    from .entry import async_remove_entry as remove_entry  # noqa: PLC0415 - see the module docstring

    await remove_entry(hass, entry)


async def async_unload_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Unload a source: see entry.py."""
    from .entry import async_unload_entry as unload_entry  # noqa: PLC0415 - see the module docstring

    return await unload_entry(hass, entry)
