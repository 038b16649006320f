"""A source's taught sounds: their heads in Home Assistant's storage, their examples as WAV files.

Each config entry has one store (`.storage/sound_sentry.taught.<entry id>`) and one folder of examples
(`<config>/sound_sentry/taught/<entry id>/<slug>/1.wav ...`, 8 kHz mono 16-bit), from which a sound is
learnt again when the model changes (`async_sounds_for`). A sound's slug is the key of its entities and
its event type. A sound is learnt again at setup when the model release or the background bank (its id:
a new bank, or a new embedding network) differs from the one it was learnt on.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
import shutil
from typing import Any

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import Store
from homeassistant.util import slugify
import numpy as np
import numpy.typing as npt

from .const import DETECTABLE_CLASSES, DOMAIN, EVENT_CLASSES, LOGGER
from .engine.clips import write_wav
from .engine.detection_settings import LEVEL_KEYS
from .engine.entities import LISTENING, SOUND_LEVEL, sound_event
from .engine.model import LoadedModel
from .engine.model_info import ModelLoadError
from .engine.sources import OUTPUT_SAMPLE_RATE_HZ, SourceError
from .engine.taught import (
    DEFAULT_LEVEL,
    TaughtSound,
    TeachError,
    bank_id,
    learn_from_samples,
    load_bank,
    read_example,
)

STORAGE_VERSION = 1
RESERVED_KEYS = frozenset(
    {
        *DETECTABLE_CLASSES,
        LISTENING.key,
        SOUND_LEVEL.key,
        sound_event(()).key,
        *(f"{label}_probability" for label in EVENT_CLASSES),
    }
)
"""The keys of a source's built-in entities: no taught sound's slug may be one of them."""


@dataclass(frozen=True, slots=True)
class StoredSound:
    """One taught sound of a source."""

    slug: str
    """The key of its entities (`<entry id>_<slug>`) and its event type."""
    name: str
    """The user's name for it: its binary sensor's name."""
    sound: TaughtSound
    """Its head, with the model release it was learnt on."""
    sensitivity: str
    """A sensitivity level key (`detection_settings.LEVEL_KEYS`): its threshold is `sound.thresholds[...]`."""
    example_paths: tuple[Path, ...]
    """Its examples, 8 kHz mono 16-bit WAV files, to learn it again from."""

    @property
    def threshold(self) -> float:
        """The probability a window must reach at its sensitivity."""
        return self.sound.thresholds[self.sensitivity]

    def to_json(self) -> dict[str, Any]:
        """The stored record (examples by file name, in the sound's folder)."""
        return {
            "slug": self.slug,
            "name": self.name,
            "sensitivity": self.sensitivity,
            "examples": [path.name for path in self.example_paths],
            "sound": self.sound.to_json(),
        }


def taught_folder(hass: HomeAssistant, entry_id: str) -> Path:
    """Where a source's examples are kept, one folder per sound."""
    return Path(hass.config.path(DOMAIN, "taught", entry_id))


def issue_id(entry_id: str, slug: str) -> str:
    """The repair issue of a taught sound that could not be learnt again."""
    return f"taught_{entry_id}_{slug}"


class TaughtStore:
    """The taught sounds of one config entry (event loop; file work in the executor)."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self.entry_id = entry_id
        self.folder = taught_folder(hass, entry_id)
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, f"{DOMAIN}.taught.{entry_id}")
        self._sounds: dict[str, StoredSound] = {}

    @classmethod
    async def async_load(cls, hass: HomeAssistant, entry_id: str) -> TaughtStore:
        """The entry's store, with what was saved (empty for a source without taught sounds)."""
        store = cls(hass, entry_id)
        data = await store._store.async_load() or {}
        for record in data.get("sounds", []):
            slug = str(record["slug"])
            store._sounds[slug] = StoredSound(
                slug=slug,
                name=str(record["name"]),
                sound=TaughtSound.from_json(record["sound"]),
                sensitivity=str(record.get("sensitivity", DEFAULT_LEVEL)),
                example_paths=tuple(store.folder / slug / str(name) for name in record["examples"]),
            )
        return store

    @property
    def sounds(self) -> list[StoredSound]:
        """The taught sounds, in the order they were taught."""
        return list(self._sounds.values())

    def get(self, slug: str) -> StoredSound | None:
        """A taught sound by slug."""
        return self._sounds.get(slug)

    def slug_for(self, name: str) -> str:
        """The slug a new sound of this name gets: `slugify(name)`, numbered past built-in keys and others'."""
        base = slugify(name) or "sound"
        slug, n = base, 1
        while (
            slug in RESERVED_KEYS or slug in self._sounds or slug.removesuffix("_probability") in self._sounds
        ):
            n += 1
            slug = f"{base}_{n}"
        return slug

    def name_clashes(self, name: str) -> bool:
        """Whether a sound of this name would clash with one taught already (same name or slug)."""
        wanted = name.strip().casefold()
        return any(
            s.name.strip().casefold() == wanted or s.slug == slugify(name) for s in self._sounds.values()
        )

    async def async_add(
        self,
        name: str,
        examples: list[npt.NDArray[np.float32]],
        sound: TaughtSound,
        sensitivity: str = DEFAULT_LEVEL,
    ) -> str:
        """Store a sound learnt from `examples` (8 kHz mono float32); returns its slug.

        The caller reloads the entry to start listening for it. Raises ValueError for an unknown level.
        """
        _check_level(sensitivity)
        slug = self.slug_for(name)
        folder = self.folder / slug
        paths = tuple(folder / f"{index}.wav" for index in range(1, len(examples) + 1))
        await self.hass.async_add_executor_job(_write_examples, folder, paths, examples)
        name = name.strip()
        self._sounds[slug] = StoredSound(
            slug=slug,
            name=name,
            sound=replace(sound, name=name),
            sensitivity=sensitivity,
            example_paths=paths,
        )
        await self._async_save()
        return slug

    async def async_remove(self, slug: str) -> None:
        """Forget a sound and delete its examples (and its repair issue); nothing for an unknown slug."""
        if self._sounds.pop(slug, None) is None:
            return
        await self._async_save()
        await self.hass.async_add_executor_job(shutil.rmtree, self.folder / slug, True)
        ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry_id, slug))

    async def async_set_sensitivity(self, slug: str, level: str) -> None:
        """Change a sound's sensitivity level. Raises KeyError for an unknown slug, ValueError for a level."""
        _check_level(level)
        self._sounds[slug] = replace(self._sounds[slug], sensitivity=level)
        await self._async_save()

    async def async_sounds_for(self, model: LoadedModel, title: str) -> list[StoredSound]:
        """The sounds that can listen on `model`: each learnt on another release or bank is learnt again first.

        The model's taught network is loaded here (in the executor) when there are sounds. A sound that
        cannot be learnt again (its examples are gone, or they no longer teach it), or every sound where
        the network cannot be loaded, is left out, with a repair issue that says why and offers to remove
        it; the others listen.
        """
        info = model.info
        ready: list[StoredSound] = []
        if not self._sounds:
            return ready
        try:
            await self.hass.async_add_executor_job(model.taught_backend)
        except ModelLoadError as err:
            for stored in self.sounds:
                self._async_raise_issue(stored, title, "taught_not_relearnt", str(err))
            return ready
        bank = await self.hass.async_add_executor_job(bank_id, info)
        for stored in self.sounds:
            learnt_on = (stored.sound.model, stored.sound.version, stored.sound.bank)
            if bank is not None and learnt_on == (info.name, info.version, bank):
                ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry_id, stored.slug))
                ready.append(stored)
                continue
            try:
                sound = await self.hass.async_add_executor_job(_relearn, model, stored)
            except (FileNotFoundError, SourceError) as err:
                self._async_raise_issue(stored, title, "taught_examples_missing", str(err))
                continue
            except TeachError as err:
                self._async_raise_issue(stored, title, "taught_not_relearnt", str(err))
                continue
            LOGGER.info(
                "%s: learnt %s again for %s %s, bank %s (it was learnt on %s, bank %s)",
                title,
                stored.name,
                info.name,
                info.version,
                sound.bank,
                stored.sound.version,
                stored.sound.bank or "without an id",
            )
            relearnt = replace(stored, sound=sound)
            self._sounds[stored.slug] = relearnt
            await self._async_save()
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry_id, stored.slug))
            ready.append(relearnt)
        return ready

    async def async_remove_all(self) -> None:
        """Delete every taught sound of the entry, their examples and repair issues (the entry is removed)."""
        for slug in self._sounds:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry_id, slug))
        self._sounds = {}
        await self._store.async_remove()
        await self.hass.async_add_executor_job(shutil.rmtree, self.folder, True)

    def _async_raise_issue(self, stored: StoredSound, title: str, key: str, error: str) -> None:
        LOGGER.warning("%s: %s no longer listens (%s)", title, stored.name, error)
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(self.entry_id, stored.slug),
            data={"entry_id": self.entry_id, "slug": stored.slug},
            is_fixable=True,
            severity=ir.IssueSeverity.WARNING,
            translation_key=key,
            translation_placeholders={"name": title, "sound": stored.name, "error": error},
        )

    async def _async_save(self) -> None:
        await self._store.async_save({"sounds": [s.to_json() for s in self._sounds.values()]})


def _check_level(level: str) -> None:
    if level not in LEVEL_KEYS:
        raise ValueError(f"sensitivity {level!r} is none of {', '.join(LEVEL_KEYS)}")


def _write_examples(folder: Path, paths: tuple[Path, ...], examples: list[npt.NDArray[np.float32]]) -> None:
    """Write each example as 16-bit WAV (blocking), replacing whatever the folder held."""
    shutil.rmtree(folder, ignore_errors=True)
    for path, samples in zip(paths, examples, strict=True):
        pcm = np.round(np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)
        write_wav(path, pcm, OUTPUT_SAMPLE_RATE_HZ)


def _relearn(model: LoadedModel, stored: StoredSound) -> TaughtSound:
    """Learn a stored sound again on `model` from its example files (blocking).

    Raises FileNotFoundError for a missing example, SourceError for an unreadable one, TeachError.
    """
    for path in stored.example_paths:
        if not path.is_file():
            raise FileNotFoundError(f"example {path.name} of {stored.name} is missing")
    bank = load_bank(model.info)
    examples = [read_example(path) for path in stored.example_paths]
    return learn_from_samples(model, bank, stored.name, examples)
