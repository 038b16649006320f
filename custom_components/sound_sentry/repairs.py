"""Repairs: tuned detection numbers made for another model release; a taught sound not learnt again."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from homeassistant.components.repairs import RepairsFlow
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from .const import CONF_MODEL, CONF_OVERRIDES_FOR, DOMAIN
from .detection_options import release_of, without_overrides
from .model_store import async_get_model
from .taught_store import TaughtStore

if TYPE_CHECKING:  # Home Assistant 2025.4 has no RepairsFlowResult: importing it there broke this platform
    from homeassistant.components.repairs import RepairsFlowResult


class OutdatedOverridesRepairFlow(RepairsFlow):
    """Reset the source's thresholds, k of n and hold time to the installed model's defaults, or keep them."""

    def __init__(self, entry_id: str) -> None:
        self._entry_id = entry_id

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Reset or keep."""
        if self.hass.config_entries.async_get_entry(self._entry_id) is None:
            return self.async_abort(reason="entry_removed")
        issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
        return self.async_show_menu(
            step_id="init",
            menu_options=["reset", "keep"],
            # Older frontends fill in only the step's placeholders, not the issue's.
            description_placeholders=issue.translation_placeholders if issue is not None else None,
        )

    async def async_step_reset(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Back to the model's defaults (the sounds to detect and clips stay); the entry reloads."""
        if (entry := self.hass.config_entries.async_get_entry(self._entry_id)) is None:
            return self.async_abort(reason="entry_removed")
        self.hass.config_entries.async_update_entry(entry, options=without_overrides(entry.options))
        return self.async_create_entry(data={})

    async def async_step_keep(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Keep the numbers, now recorded as chosen for the installed release."""
        if (entry := self.hass.config_entries.async_get_entry(self._entry_id)) is None:
            return self.async_abort(reason="entry_removed")
        info = (await async_get_model(self.hass, entry.options[CONF_MODEL])).info
        self.hass.config_entries.async_update_entry(
            entry, options={**entry.options, CONF_OVERRIDES_FOR: release_of(info)}
        )
        return self.async_create_entry(data={})


class TaughtSoundRepairFlow(RepairsFlow):
    """Remove a taught sound that no longer listens (its examples and entities go too); the entry reloads."""

    def __init__(self, entry_id: str, slug: str) -> None:
        self._entry_id = entry_id
        self._slug = slug

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Ask to confirm."""
        return await self.async_step_confirm()

    async def async_step_confirm(self, user_input: dict[str, Any] | None = None) -> RepairsFlowResult:
        """Remove the sound once confirmed."""
        if self.hass.config_entries.async_get_entry(self._entry_id) is None:
            return self.async_abort(reason="entry_removed")
        if user_input is None:
            issue = ir.async_get(self.hass).async_get_issue(DOMAIN, self.issue_id)
            return self.async_show_form(
                step_id="confirm",
                description_placeholders=issue.translation_placeholders if issue is not None else None,
            )
        store = await TaughtStore.async_load(self.hass, self._entry_id)
        await store.async_remove(self._slug)
        await self.hass.config_entries.async_reload(self._entry_id)
        return self.async_create_entry(data={})


async def async_create_fix_flow(
    hass: HomeAssistant, issue_id: str, data: dict[str, str | int | float | None] | None
) -> RepairsFlow:
    """The fix flow of an issue: a taught sound's (its data names the slug) or `outdated_overrides`."""
    data = data or {}
    if (slug := data.get("slug")) is not None:
        return TaughtSoundRepairFlow(str(data.get("entry_id")), str(slug))
    return OutdatedOverridesRepairFlow(str(data.get("entry_id")))
