"""Diagnostics: what the source and the model are doing, with credentials redacted."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant

from .const import CONF_CLIP_KEEP_DAYS, CONF_CLIP_MAX, CONF_MODEL, DEFAULT_CLIP_KEEP_DAYS, DEFAULT_CLIP_MAX
from .engine.redact import redact_url
from .runtime import SoundSentryConfigEntry
from .taught_store import TaughtStore

TO_REDACT = {CONF_PASSWORD, CONF_USERNAME}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: SoundSentryConfigEntry
) -> dict[str, Any]:
    """The entry's settings (redacted), the model and backend, the source's state and recent windows.

    Its taught sounds without their examples' paths (they hold the user's config folder): how many.
    """
    runtime = entry.runtime_data
    data = async_redact_data(dict(entry.data), TO_REDACT)
    if CONF_URL in data:
        data[CONF_URL] = redact_url(data[CONF_URL])
    info = runtime.model.info
    error = runtime.last_error
    outage_since = runtime.availability.outage_since
    clips = runtime.clips
    store = await TaughtStore.async_load(hass, entry.entry_id)
    return {
        "entry": {"title": entry.title, "data": data, "options": dict(entry.options)},
        "model": {
            "choice": entry.options.get(CONF_MODEL),
            "architecture": info.architecture,
            "name": info.name,
            "version": info.version,
            "sha256": info.sha256,
            "licence": info.licence_text,
            "backend": runtime.model.backend.name,
        },
        "source": {
            "connected": runtime.connected,
            "last_error": {"reason": error.reason, "message": redact_url(str(error))} if error else None,
            "outage_since": outage_since.isoformat() if outage_since else None,
            "counters": runtime.counters,
            "windows_classified": runtime.windows_classified,
        },
        "detector": {
            "thresholds": dict(runtime.detector_settings.thresholds),
            "k": runtime.detector_settings.k,
            "n": runtime.detector_settings.n,
            "hold_s": runtime.detector_settings.hold_s,
            "active": dict(runtime.state.active),
        },
        "taught": [
            {
                "name": stored.name,
                "slug": stored.slug,
                "sensitivity": stored.sensitivity,
                "threshold": stored.threshold,
                "examples": len(stored.example_paths),
                "learnt_on": {"model": stored.sound.model, "version": stored.sound.version},
                "listening": stored.slug in runtime.detector_settings.thresholds,
            }
            for stored in store.sounds
        ],
        "alarms": {"labels": list(runtime.alarm_settings.labels) if runtime.alarm_settings else []},
        "clips": {
            "enabled": clips is not None,
            "keep_days": entry.options.get(CONF_CLIP_KEEP_DAYS, DEFAULT_CLIP_KEEP_DAYS),
            "max_clips": entry.options.get(CONF_CLIP_MAX, DEFAULT_CLIP_MAX),
            "saved_since_setup": clips.saved if clips else 0,
            "lost_since_setup": clips.lost if clips else 0,
            "failing": clips.failing if clips else False,
        },
        "recent_windows": [
            {
                "end_s": round(window.end_s, 2),
                "dbfs": round(window.dbfs, 1),
                "probabilities": {label: round(p, 3) for label, p in window.probabilities.items()},
            }
            for window in runtime.monitor.recent_windows
        ],
    }
