"""Constants for the Sound Sentry integration."""

from typing import Final

DOMAIN: Final = "sound_sentry"
