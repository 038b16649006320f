"""Where the repository and the developer audio set are."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The developer audio set: $SOUND_SENTRY_DATA or ../shared/data beside the repo."""
    return Path(os.environ.get("SOUND_SENTRY_DATA") or REPO_ROOT / ".." / "shared" / "data").resolve()


def cache_dir() -> Path:
    """Where big generated things live, outside the checkout: $SOUND_SENTRY_CACHE or ~/.cache/sound-sentry."""
    return Path(os.environ.get("SOUND_SENTRY_CACHE") or Path.home() / ".cache" / "sound-sentry")


def extra_data_dir() -> Path:
    """The openly licensed set that `python -m training.data.build` writes: <cache>/data-extra."""
    return cache_dir() / "data-extra"
