"""The clips in Home Assistant's Media browser: sources, then each source's clips, newest first."""

from __future__ import annotations

from pathlib import Path

from homeassistant.components.media_player import BrowseError, MediaClass
from homeassistant.components.media_source import BrowseMediaSource, MediaSource, MediaSourceItem, PlayMedia
from homeassistant.components.media_source.error import Unresolvable
from homeassistant.core import HomeAssistant
from homeassistant.helpers.translation import async_get_translations

from .clip_store import CLIP_MIME_TYPE, ClipName, clip_folder, clip_url, list_clips, parse_identifier
from .const import CONF_CLIPS, DOMAIN

EVENT_TYPE_NAME = f"component.{DOMAIN}.entity.event.sound.state_attributes.event_type.state."
"""Translation key prefix of the event entity's event types: the sounds' names."""


async def async_get_media_source(hass: HomeAssistant) -> SoundSentryMediaSource:
    """Sound Sentry's clips as a media source."""
    return SoundSentryMediaSource(hass)


class SoundSentryMediaSource(MediaSource):
    """Browse and play the clips of the sources' detections (`<entry id>/<file name>`)."""

    name = "Sound Sentry"

    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(DOMAIN)
        self.hass = hass

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A clip as the address of Home Assistant's media view (signed for the browser that asked)."""
        parsed = parse_identifier(item.identifier)
        if parsed is None or not await self.hass.async_add_executor_job(
            Path.is_file, clip_folder(self.hass, parsed[0]) / parsed[1]
        ):
            raise Unresolvable(translation_domain=DOMAIN, translation_key="clip_not_found")
        return PlayMedia(clip_url(self.hass, *parsed), CLIP_MIME_TYPE)

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """The sources that keep (or kept) clips, or one source's clips."""
        entries = {entry.entry_id: entry for entry in self.hass.config_entries.async_entries(DOMAIN)}
        if not item.identifier:
            folders = await self.hass.async_add_executor_job(
                lambda: {entry_id for entry_id in entries if clip_folder(self.hass, entry_id).is_dir()}
            )
            shown = sorted(
                (
                    entry
                    for entry in entries.values()
                    if entry.options.get(CONF_CLIPS) or entry.entry_id in folders
                ),
                key=lambda entry: entry.title,
            )
            return _folder(
                None, self.name or DOMAIN, [_folder(entry.entry_id, entry.title, []) for entry in shown]
            )
        if (entry := entries.get(item.identifier)) is None:
            raise BrowseError(translation_domain=DOMAIN, translation_key="clips_not_found")
        clips = await self.hass.async_add_executor_job(list_clips, clip_folder(self.hass, entry.entry_id))
        names = await async_get_translations(self.hass, self.hass.config.language, "entity", {DOMAIN})
        return _folder(
            entry.entry_id,
            entry.title,
            [
                BrowseMediaSource(
                    domain=DOMAIN,
                    identifier=f"{entry.entry_id}/{name}",
                    media_class=MediaClass.MUSIC,
                    media_content_type=CLIP_MIME_TYPE,
                    title=_title(name, names),
                    can_play=True,
                    can_expand=False,
                )
                for name, _mtime in clips
            ],
        )


def _folder(identifier: str | None, title: str, children: list[BrowseMediaSource]) -> BrowseMediaSource:
    return BrowseMediaSource(
        domain=DOMAIN,
        identifier=identifier,
        media_class=MediaClass.DIRECTORY,
        media_content_type="",
        title=title,
        can_play=False,
        can_expand=True,
        children=children,
        children_media_class=MediaClass.MUSIC if identifier else MediaClass.DIRECTORY,
    )


def _title(name: str, names: dict[str, str]) -> str:
    """E.g. "Glass breaking · 2026-11-30 14:03:12 · 97%" ("Smoke alarm · 2026-11-30 14:03:12": no %)."""
    clip = ClipName.parse(name)
    assert clip is not None  # list_clips lists only clip names
    sound = names.get(f"{EVENT_TYPE_NAME}{clip.label}", clip.label)
    title = f"{sound} · {clip.detected:%Y-%m-%d %H:%M:%S}"
    return title if clip.percent is None else f"{title} · {clip.percent}%"
