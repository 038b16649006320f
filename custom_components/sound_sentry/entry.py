"""The Home Assistant side of a config entry, called from __init__.py: set up, migrate, unload, remove."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryError
from homeassistant.helpers import entity_registry as er, issue_registry as ir

from .clip_store import ClipStore, remove_clips
from .const import (
    ALARM_CLASSES,
    CONF_CLIP_KEEP_DAYS,
    CONF_CLIP_MAX,
    CONF_CLIPS,
    CONF_ENABLED_CLASSES,
    CONF_MODEL,
    CONF_OVERRIDES_FOR,
    CONF_SOURCE_TYPE,
    DEFAULT_CLIP_KEEP_DAYS,
    DEFAULT_CLIP_MAX,
    DETECTABLE_CLASSES,
    DOMAIN,
    SourceType,
)
from .detection_options import detector_settings, drop_copied_defaults, outdated_overrides, release_of
from .engine.alarm import AlarmSettings
from .engine.detection_settings import with_taught
from .engine.model_info import ModelInfo, ModelLoadError
from .entry_source import source_factory, unique_id_for
from .model_store import async_get_model
from .runtime import SoundSentryConfigEntry, SoundSentryRuntime
from .taught_store import RESERVED_KEYS, TaughtStore

PLATFORMS = [Platform.BINARY_SENSOR, Platform.EVENT, Platform.SENSOR]


def alarm_settings(entry: ConfigEntry) -> AlarmSettings | None:
    """The smoke and CO alarms the entry listens for (None: neither)."""
    labels = [label for label in ALARM_CLASSES if label in entry.options[CONF_ENABLED_CLASSES]]
    return AlarmSettings(labels=labels) if labels else None


async def async_create_runtime(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> SoundSentryRuntime:
    """Load the shared model and build the source's runtime, not yet listening.

    An unusable model fails setup for good (ConfigEntryError). The source is not tried here: a camera that
    is off at startup is retried by the source thread (see quality_scale.yaml, test-before-setup).
    """
    try:
        model = await async_get_model(hass, entry.options[CONF_MODEL])
    except ModelLoadError as err:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="model_unavailable",
            translation_placeholders={"error": str(err)},
        ) from err
    clips = ClipStore(
        hass,
        entry.entry_id,
        entry.title,
        keep_days=int(entry.options.get(CONF_CLIP_KEEP_DAYS, DEFAULT_CLIP_KEEP_DAYS)),
        max_clips=int(entry.options.get(CONF_CLIP_MAX, DEFAULT_CLIP_MAX)),
    )
    await clips.async_prune()  # also with clips off: what was kept earlier still expires
    _async_check_overrides(hass, entry, model.info)
    store = await TaughtStore.async_load(hass, entry.entry_id)
    taught = await store.async_sounds_for(model, entry.title)
    return SoundSentryRuntime(
        hass,
        entry_id=entry.entry_id,
        title=entry.title,
        model=model,
        source_factory=source_factory(hass, entry.data),
        detector=with_taught(
            detector_settings(entry.options, model.info), {s.slug: s.threshold for s in taught}
        ),
        alarms=alarm_settings(entry),
        # A camera entity's credentials belong to its integration: no reauth flow here, a repair issue.
        on_invalid_auth=None
        if entry.data[CONF_SOURCE_TYPE] == SourceType.CAMERA
        else lambda: entry.async_start_reauth(hass),
        clips=clips if entry.options.get(CONF_CLIPS, False) else None,
        taught={s.slug: s.sound for s in taught},
    )


async def async_start(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """Add the entities of the entry's runtime (`entry.runtime_data`) and start listening."""
    runtime = entry.runtime_data
    _async_remove_disabled_class_sensors(hass, entry)
    await _async_remove_untaught_entities(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    runtime.start()

    async def _async_stop(_event: Event) -> None:
        await runtime.async_stop()  # Home Assistant stops without unloading entries

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_stop))
    entry.async_on_unload(entry.add_update_listener(_async_options_updated))


async def async_migrate_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Bring an entry of an older version up to date; False for one from a newer major version."""
    if entry.version > 1:
        return False  # made by a newer Sound Sentry: this one cannot know what it holds
    if entry.minor_version < 2:
        # 1.2: the unique id of an RTSP stream keeps its query (NVR channels), rtsps defaults to port 322.
        hass.config_entries.async_update_entry(entry, unique_id=unique_id_for(entry.data), minor_version=2)
    if entry.minor_version < 3:
        # 1.3: smoke and CO alarms, on for every source (as for new ones); "Sounds to detect" turns them off.
        enabled = [*entry.options[CONF_ENABLED_CLASSES], *ALARM_CLASSES]
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_ENABLED_CLASSES: enabled}, minor_version=3
        )
    if entry.minor_version < 4:
        # 1.4: two models; a source made before keeps the one its thresholds were chosen for.
        hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_MODEL: "compact"}, minor_version=4
        )
    if entry.minor_version < 5:
        # 1.5: the options hold only what the user changed, and the model release it was changed for.
        try:
            release: dict[str, str] | None = release_of(
                (await async_get_model(hass, entry.options[CONF_MODEL])).info
            )
        except ModelLoadError:
            release = None  # setup says why; the numbers kept are then for an unknown release
        hass.config_entries.async_update_entry(
            entry, options=drop_copied_defaults(entry.options, release), minor_version=5
        )
    return True


async def async_unload_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> bool:
    """Stop the source thread and remove the entities."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """A removed source's clips and taught sounds go with it: nothing would delete them any more."""
    ir.async_delete_issue(hass, DOMAIN, outdated_overrides_issue_id(entry.entry_id))
    await hass.async_add_executor_job(remove_clips, hass, entry.entry_id)
    await (await TaughtStore.async_load(hass, entry.entry_id)).async_remove_all()


def _async_remove_disabled_class_sensors(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """A sound taken out of the options loses its binary sensor (rather than leaving it unavailable)."""
    registry = er.async_get(hass)
    sounds = {*DETECTABLE_CLASSES, *entry.runtime_data.model.info.events}
    for label in sounds - set(entry.options[CONF_ENABLED_CLASSES]):
        unique_id = f"{entry.entry_id}_{label}"
        if entity_id := registry.async_get_entity_id(Platform.BINARY_SENSOR, DOMAIN, unique_id):
            registry.async_remove(entity_id)


async def _async_remove_untaught_entities(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """A taught sound that was removed loses its entities (one still stored keeps them while its repair is open)."""
    store = await TaughtStore.async_load(hass, entry.entry_id)
    keep = {
        *RESERVED_KEYS,
        *(spec.key for spec in entry.runtime_data.monitor.entities),
        *(key for s in store.sounds for key in (s.slug, f"{s.slug}_probability")),
    }
    registry = er.async_get(hass)
    prefix = f"{entry.entry_id}_"
    for registered in er.async_entries_for_config_entry(registry, entry.entry_id):
        key = registered.unique_id.removeprefix(prefix)
        if registered.unique_id.startswith(prefix) and key not in keep:
            registry.async_remove(registered.entity_id)


async def _async_options_updated(hass: HomeAssistant, entry: SoundSentryConfigEntry) -> None:
    """Options change detection and entities: apply them by reloading."""
    await hass.config_entries.async_reload(entry.entry_id)


def outdated_overrides_issue_id(entry_id: str) -> str:
    """The repair issue of a source whose tuned numbers were chosen for another model release."""
    return f"outdated_overrides_{entry_id}"


def _async_check_overrides(hass: HomeAssistant, entry: SoundSentryConfigEntry, info: ModelInfo) -> None:
    """A repair issue while the entry's thresholds, k, n or hold time were chosen for another model release.

    They still apply (the user chose them), but the installed model may be surer or slower than the one
    they were tuned for; the repair offers its defaults, or to keep them for this release.
    """
    issue_id = outdated_overrides_issue_id(entry.entry_id)
    if not outdated_overrides(entry.options, info):
        ir.async_delete_issue(hass, DOMAIN, issue_id)
        return
    made_for = entry.options.get(CONF_OVERRIDES_FOR) or {}
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id,
        data={"entry_id": entry.entry_id},
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="outdated_overrides",
        translation_placeholders={
            "name": entry.title,
            "old_version": str(made_for.get("version", "?")),
            "version": info.version,
        },
    )
