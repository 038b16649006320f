"""Where the clips of a source live: WAV files under Home Assistant's media folder, named, written, pruned."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime
import os
from pathlib import Path
import re
import shutil
import time
from urllib.parse import quote

from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .const import ALARM_CLASSES, DOMAIN, LOGGER
from .engine.clips import Clip, write_clip
from .engine.events import DetectionEvent, SoundEvent

CLIP_FOLDER = "sound_sentry"
"""The folder of Sound Sentry's clips in the media folder; one folder per source (its entry id) inside."""
MEDIA_SOURCE_PREFIX = f"media-source://{DOMAIN}/"
CLIP_MIME_TYPE = "audio/wav"
CLIP_NAME = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})_(?P<time>\d{2}-\d{2}-\d{2})_(?P<label>[a-z0-9_]+?)(?:_(?P<percent>\d{1,3}))?"
    r"(?:_(?P<n>\d+))?\.wav$"
)
"""A clip's file name: local date and time of the detection, the sound, its confidence in % (none for an
alarm pattern), e.g. 2026-11-30_14-03-12_glassbreak_97.wav or 2026-11-30_14-03-12_smoke_alarm.wav (a
second one in the same second gets _2)."""
ENTRY_ID = re.compile(r"^[0-9A-Za-z]+$")
DAY_S = 86400.0


@dataclass(frozen=True, slots=True)
class ClipName:
    """What a clip's file name says."""

    label: str
    detected: datetime
    """Local time (Home Assistant's time zone) of the detection."""
    percent: int | None
    """The model's confidence in %; None for an alarm pattern, which has no probability."""

    @classmethod
    def parse(cls, name: str) -> ClipName | None:
        """The parts of a clip's file name; None for any other name."""
        if (match := CLIP_NAME.match(name)) is None:
            return None
        try:
            detected = datetime.strptime(f"{match['date']} {match['time']}", "%Y-%m-%d %H-%M-%S")
        except ValueError:
            return None
        if match["label"] in ALARM_CLASSES:
            return cls(match["label"], detected, None)  # its digits, if any, tell clips apart (_2)
        if match["percent"] is None:
            return None
        return cls(match["label"], detected, int(match["percent"]))


def media_root(hass: HomeAssistant) -> tuple[str, Path]:
    """The media folder clips go in: Home Assistant's "local" media folder (or its first one) and its id."""
    dirs = hass.config.media_dirs
    key = "local" if "local" in dirs else next(iter(dirs), "local")
    return key, Path(dirs.get(key) or hass.config.path("media"))


def clip_folder(hass: HomeAssistant, entry_id: str) -> Path:
    """The folder of one source's clips."""
    return media_root(hass)[1] / CLIP_FOLDER / entry_id


def clip_url(hass: HomeAssistant, entry_id: str, name: str) -> str:
    """The clip's address on Home Assistant's own media view (authenticated; the app signs in for it)."""
    return f"/media/{media_root(hass)[0]}/{CLIP_FOLDER}/{entry_id}/{quote(name)}"


def media_source_id(entry_id: str, name: str) -> str:
    """The clip's media-source id: browsable and playable only through Home Assistant's own API."""
    return f"{MEDIA_SOURCE_PREFIX}{entry_id}/{name}"


def parse_identifier(identifier: str) -> tuple[str, str] | None:
    """(entry id, file name) of a clip's media-source identifier; None for anything else (no paths)."""
    entry_id, _, name = identifier.partition("/")
    if ENTRY_ID.match(entry_id) and ClipName.parse(name) is not None:
        return entry_id, name
    return None


def list_clips(folder: Path) -> list[tuple[str, float]]:
    """(name, modification time) of the clips in a folder, newest first; none for a missing folder."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return []
    clips = [(e.name, e.stat().st_mtime) for e in entries if e.is_file() and ClipName.parse(e.name)]
    return sorted(clips, key=lambda clip: clip[1], reverse=True)


def remove_clips(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a source's clips and their folder (blocking)."""
    shutil.rmtree(clip_folder(hass, entry_id), ignore_errors=True)


class ClipStore:
    """One source's clips: names them when their event starts, writes and prunes them (off the loop).

    A clip that cannot be written (full disk, read-only or missing folder, no permission) is logged once,
    and once more when clips can be written again; detection never waits for the disk nor stops for it.
    """

    def __init__(
        self, hass: HomeAssistant, entry_id: str, title: str, *, keep_days: int, max_clips: int
    ) -> None:
        self.hass = hass
        self.entry_id = entry_id
        self.title = title
        self.keep_days = keep_days
        self.max_clips = max_clips
        self.folder = clip_folder(hass, entry_id)
        self.saved = 0
        """Clips written since setup."""
        self.lost = 0
        """Clips that could not be written since setup."""
        self.failing = False
        """Whether the last write failed."""
        self._recent: deque[str] = deque(maxlen=32)

    def new_name(self, event: DetectionEvent) -> str:
        """The file name of the clip of an event that starts now (called in the source thread)."""
        stem = f"{dt_util.now():%Y-%m-%d_%H-%M-%S}_{event.label}"
        if isinstance(event, SoundEvent):
            stem += f"_{round(event.peak_probability * 100)}"
        name, n = f"{stem}.wav", 1
        while name in self._recent:
            n += 1
            name = f"{stem}_{n}.wav"
        self._recent.append(name)
        return name

    def media_id(self, name: str) -> str:
        """The media-source id of one of this source's clips."""
        return media_source_id(self.entry_id, name)

    def url(self, name: str) -> str:
        """The media view address of one of this source's clips."""
        return clip_url(self.hass, self.entry_id, name)

    async def async_save(self, clip: Clip) -> bool:
        """Write a clip and prune the folder; False (logged once) if the disk refused."""
        try:
            await self.hass.async_add_executor_job(self._write, clip)
        except OSError as err:
            self.lost += 1
            if not self.failing:
                LOGGER.error(
                    "%s: cannot save the clip of a detection in %s (%s); detection goes on, and clips are "
                    "saved again once the folder can be written",
                    self.title,
                    self.folder,
                    err.strerror or err,
                )
                self.failing = True
            return False
        if self.failing:
            LOGGER.info("%s: clips are saved again in %s", self.title, self.folder)
            self.failing = False
        self.saved += 1
        return True

    async def async_prune(self) -> None:
        """Delete clips older than `keep_days` and all but the newest `max_clips` (e.g. at startup)."""
        try:
            await self.hass.async_add_executor_job(self._prune, True)
        except OSError as err:
            LOGGER.warning(
                "%s: cannot prune the clips in %s (%s)", self.title, self.folder, err.strerror or err
            )

    def _write(self, clip: Clip) -> None:
        """Write the WAV (never seen half-written), then keep the folder within its limits."""
        write_clip(clip, self.folder / clip.key)
        self._prune(False)

    def _prune(self, startup: bool) -> None:
        if startup:  # a temporary file left by a crash or power cut mid-write
            for leftover in self.folder.glob(".*.tmp") if self.folder.is_dir() else ():
                leftover.unlink(missing_ok=True)
        oldest = time.time() - self.keep_days * DAY_S
        for index, (name, mtime) in enumerate(list_clips(self.folder)):
            if index >= self.max_clips or mtime < oldest:
                (self.folder / name).unlink(missing_ok=True)
