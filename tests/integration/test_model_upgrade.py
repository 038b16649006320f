"""A model upgrade reaches every source that did not tune it; a tuned one keeps its numbers and gets a repair
issue that offers the new defaults; entries from before 1.5 (a copy of every default) are converted."""

from __future__ import annotations

import json
from pathlib import Path
import shutil
from typing import Any
from unittest.mock import patch

from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sound_sentry.const import (
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_MODEL,
    CONF_N,
    CONF_OVERRIDES_FOR,
    DOMAIN,
    EVENT_CLASSES,
)
from custom_components.sound_sentry.detection_options import PAST_DEFAULTS
from custom_components.sound_sentry.engine import model as engine_model
from custom_components.sound_sentry.engine.detection_settings import level_points
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.model_store import DATA_MODELS
from tests.entries import RELEASES, TEST_MODEL, rtsp_entry

NEW_VERSION = "99.0.0"
NEW_THRESHOLDS = {"babycry": 0.91, "glassbreak": 0.92, "gunshot": 0.93}
"""The upgraded model's defaults: none of them any default a shipped model had."""


def install_upgrade(hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> ModelInfo:
    """Install a newer release of the test model (its files with a new version and new defaults in the
    sidecar), as an update of the integration does; the sources pick it up when they are set up again."""
    shipped = engine_model.model_path(TEST_MODEL)
    for file in shipped.parent.glob(f"{shipped.stem}*"):  # the model, its sidecar and any file of its own
        shutil.copy(file, tmp_path / file.name)
    sidecar = tmp_path / shipped.with_suffix(".json").name
    raw = json.loads(sidecar.read_text())
    raw["version"] = NEW_VERSION
    raw["detection"]["thresholds"] = NEW_THRESHOLDS
    sidecar.write_text(json.dumps(raw))
    monkeypatch.setitem(engine_model.SHIPPED_MODELS, TEST_MODEL, str(tmp_path / shipped.name))
    hass.data.pop(DATA_MODELS, None)  # as after a restart: the next setup loads the installed files
    return ModelInfo.load(tmp_path / shipped.name)


def issue_id(entry: MockConfigEntry) -> str:
    return f"outdated_overrides_{entry.entry_id}"


async def set_up(hass: HomeAssistant, *entries: MockConfigEntry) -> None:
    """Nothing answers at these URLs: the entries load and retry in the background (enough here)."""
    for entry in entries:
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()


async def reload(hass: HomeAssistant, *entries: MockConfigEntry) -> None:
    for entry in entries:
        assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()


async def test_an_upgrade_reaches_untouched_sources_and_asks_about_tuned_ones(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    installed = ModelInfo.load(engine_model.model_path(TEST_MODEL))
    [(label, level)] = [
        (label, next(iter(points)))
        for label in EVENT_CLASSES
        if (points := level_points(installed.operating_curve, label))
    ][:1]
    untouched = rtsp_entry("rtsp://127.0.0.1:9/a", title="Untouched", threshold=None)
    tuned = rtsp_entry("rtsp://127.0.0.1:9/b", title="Tuned", threshold=None, threshold_babycry=0.8)
    leveled = rtsp_entry(
        "rtsp://127.0.0.1:9/c", title="Levelled", threshold=None, **{f"sensitivity_{label}": level}
    )
    await set_up(hass, untouched, tuned, leveled)
    assert untouched.runtime_data.detector_settings == installed.detector_settings()
    assert tuned.runtime_data.detector_settings.thresholds["babycry"] == 0.8
    registry = ir.async_get(hass)
    assert not [issue for issue in registry.issues.values() if issue.domain == DOMAIN]

    upgrade = install_upgrade(hass, monkeypatch, tmp_path)
    await reload(hass, untouched, tuned, leveled)
    # The untouched source runs the new defaults: it stored none of the old ones.
    assert dict(untouched.runtime_data.detector_settings.thresholds) == NEW_THRESHOLDS
    assert untouched.runtime_data.model.info.version == NEW_VERSION
    # The tuned one keeps its number (and takes the new defaults for the rest); a repair issue says so.
    assert dict(tuned.runtime_data.detector_settings.thresholds) == {**NEW_THRESHOLDS, "babycry": 0.8}
    issue = registry.async_get_issue(DOMAIN, issue_id(tuned))
    assert issue is not None
    assert issue.is_fixable
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_key == "outdated_overrides"
    assert issue.translation_placeholders == {
        "name": "Tuned",
        "old_version": installed.version,
        "version": NEW_VERSION,
    }
    # A level means the same for any model: read off the new one's curve, no issue.
    assert leveled.runtime_data.detector_settings.thresholds[label] == (
        level_points(upgrade.operating_curve, label)[level].threshold
    )
    assert registry.async_get_issue(DOMAIN, issue_id(untouched)) is None
    assert registry.async_get_issue(DOMAIN, issue_id(leveled)) is None

    # Removing the source removes its issue.
    assert await hass.config_entries.async_remove(tuned.entry_id)
    assert registry.async_get_issue(DOMAIN, issue_id(tuned)) is None
    for entry in (untouched, leveled):
        assert await hass.config_entries.async_unload(entry.entry_id)


async def start_repair(client: Any, entry: MockConfigEntry) -> dict[str, Any]:
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": issue_id(entry)}
    )
    assert response.status == 200
    return dict(await response.json())


async def choose(client: Any, flow_id: str, step: str) -> dict[str, Any]:
    response = await client.post(f"/api/repairs/issues/fix/{flow_id}", json={"next_step_id": step})
    assert response.status == 200
    return dict(await response.json())


async def tuned_after_upgrade(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> MockConfigEntry:
    """A source tuned for the installed model (a threshold, k, n, hold), then the model upgraded."""
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream", threshold=0.5, enabled_classes=["babycry", "gunshot"])
    await set_up(hass, entry)
    install_upgrade(hass, monkeypatch, tmp_path)
    await reload(hass, entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry)) is not None
    assert await async_setup_component(hass, "repairs", {})
    return entry


async def test_the_repair_resets_the_tuned_values_to_the_new_defaults(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = await tuned_after_upgrade(hass, monkeypatch, tmp_path)
    client = await hass_client()
    flow = await start_repair(client, entry)
    assert flow["type"] == "menu"
    assert flow["menu_options"] == ["reset", "keep"]
    assert flow["description_placeholders"]["version"] == NEW_VERSION
    result = await choose(client, flow["flow_id"], "reset")
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    # Back at the model's defaults (the entry reloaded); the sounds to detect stay.
    assert entry.options == {CONF_MODEL: TEST_MODEL, CONF_ENABLED_CLASSES: ["babycry", "gunshot"]}
    upgrade = entry.runtime_data.model.info
    assert entry.runtime_data.detector_settings == DetectorSettings(
        thresholds={"babycry": NEW_THRESHOLDS["babycry"], "gunshot": NEW_THRESHOLDS["gunshot"]},
        k=upgrade.k,
        n=upgrade.n,
        hold_s=upgrade.hold_s,
    )
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry)) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_the_repair_can_keep_the_tuned_values_for_the_new_release(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = await tuned_after_upgrade(hass, monkeypatch, tmp_path)
    client = await hass_client()
    flow = await start_repair(client, entry)
    result = await choose(client, flow["flow_id"], "keep")
    assert result["type"] == "create_entry"
    await hass.async_block_till_done()
    assert entry.options[CONF_OVERRIDES_FOR] == {"name": RELEASES[TEST_MODEL]["name"], "version": NEW_VERSION}
    assert entry.options["threshold_babycry"] == 0.5
    assert dict(entry.runtime_data.detector_settings.thresholds) == {"babycry": 0.5, "gunshot": 0.5}
    # Set up again (as after a restart): the values are now the installed release's, no issue comes back.
    await reload(hass, entry)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry)) is None
    assert await hass.config_entries.async_unload(entry.entry_id)


def raise_issue(hass: HomeAssistant, entry_id: str) -> None:
    """The issue as entry.py raises it, for an entry that need not be set up."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        f"outdated_overrides_{entry_id}",
        data={"entry_id": entry_id},
        is_fixable=True,
        severity=ir.IssueSeverity.WARNING,
        translation_key="outdated_overrides",
        translation_placeholders={"name": "Gone", "old_version": "1.0.0", "version": "2.0.0"},
    )


@pytest.mark.parametrize("step", ["reset", "keep"])
async def test_the_repair_of_a_removed_source_aborts(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, step: str
) -> None:
    assert await async_setup_component(hass, DOMAIN, {})  # loaded, as when its entries raise the issue
    assert await async_setup_component(hass, "repairs", {})
    client = await hass_client()
    raise_issue(hass, "no-such-entry")
    response = await client.post(
        "/api/repairs/issues/fix", json={"handler": DOMAIN, "issue_id": "outdated_overrides_no-such-entry"}
    )
    assert (await response.json())["reason"] == "entry_removed"
    # Removed while its repair is open.
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream")
    entry.add_to_hass(hass)
    raise_issue(hass, entry.entry_id)
    flow = await start_repair(client, entry)
    assert flow["type"] == "menu"
    assert await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry)) is None
    result = await choose(client, flow["flow_id"], step)
    assert (result["type"], result["reason"]) == ("abort", "entry_removed")


# -- Migration to 1.5: entries that copied every default ------------------------------------------------


def options_of_1_4(values: dict[str, Any], model: str = TEST_MODEL) -> dict[str, Any]:
    """Options as 1.4 stored them: the model, every threshold, k, n and hold, and no model release."""
    return {
        CONF_MODEL: model,
        CONF_ENABLED_CLASSES: list(EVENT_CLASSES),
        **{f"threshold_{label}": values[label] for label in EVENT_CLASSES},
        **{key: values[key] for key in (CONF_K, CONF_N, CONF_HOLD_S)},
    }


def entry_of_1_4(hass: HomeAssistant, options: dict[str, Any]) -> MockConfigEntry:
    entry = rtsp_entry("rtsp://127.0.0.1:9/stream", threshold=None)
    entry.add_to_hass(hass)
    hass.config_entries.async_update_entry(entry, options=options, minor_version=4)
    return entry


async def migrate(hass: HomeAssistant, options: dict[str, Any]) -> MockConfigEntry:
    """Migrate an entry of 1.4 with `options` (its setup left out)."""
    entry = entry_of_1_4(hass, options)
    with patch("custom_components.sound_sentry.async_setup_entry", return_value=True):
        assert await hass.config_entries.async_setup(entry.entry_id)
    assert (entry.version, entry.minor_version) == (1, 5)
    return entry


@pytest.mark.parametrize(
    ("model", "defaults"),
    [(model, defaults) for model, past in PAST_DEFAULTS.items() for defaults in past],
)
async def test_an_untouched_entry_of_1_4_keeps_no_copy(
    hass: HomeAssistant, model: str, defaults: dict[str, Any]
) -> None:
    """Whichever release the values were copied from, they are all dropped: the entry follows its model."""
    entry = await migrate(hass, options_of_1_4(dict(defaults), model))
    assert entry.options == {CONF_MODEL: model, CONF_ENABLED_CLASSES: list(EVENT_CLASSES)}


async def test_a_tuned_entry_of_1_4_keeps_what_the_user_chose(hass: HomeAssistant) -> None:
    """A value that no release of its model had for that setting is the user's: kept, recorded for the
    installed release. The rest were copies (of 2.0.0 here, and glass break's 0.99 of 3.0.0): dropped."""
    values = {**PAST_DEFAULTS["compact"][2], "babycry": 0.8, "glassbreak": 0.99, CONF_K: 2}
    entry = await migrate(hass, options_of_1_4(values))
    assert entry.options == {
        CONF_MODEL: TEST_MODEL,
        CONF_ENABLED_CLASSES: list(EVENT_CLASSES),
        "threshold_babycry": 0.8,  # glass break's 0.99 is 3.0.0's default: dropped
        CONF_K: 2,  # 2 of 5 was never a default: k of n stays, as one setting
        CONF_N: 5,
        CONF_OVERRIDES_FOR: RELEASES[TEST_MODEL],
    }


async def test_an_accurate_entry_of_1_4_is_checked_against_its_own_model(hass: HomeAssistant) -> None:
    """The compact model's defaults are no defaults of the accurate one."""
    values = {**PAST_DEFAULTS["accurate"][0], "babycry": 0.97}  # compact 3.0.0's babycry
    entry = await migrate(hass, options_of_1_4(values, "accurate"))
    assert entry.options == {
        CONF_MODEL: "accurate",
        CONF_ENABLED_CLASSES: list(EVENT_CLASSES),
        "threshold_babycry": 0.97,
        CONF_OVERRIDES_FOR: RELEASES["accurate"],
    }


async def test_a_1_4_entry_whose_model_cannot_load_keeps_its_values_for_an_unknown_release(
    hass: HomeAssistant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Migrated all the same (setup then says the model is missing); once it is back, the kept values are
    for an unknown release: the repair issue asks about them."""
    installed = engine_model.SHIPPED_MODELS[TEST_MODEL]
    monkeypatch.setitem(engine_model.SHIPPED_MODELS, TEST_MODEL, "/nonexistent/sound_sentry_resnetse.onnx")
    entry = entry_of_1_4(hass, options_of_1_4({**PAST_DEFAULTS["compact"][3], "gunshot": 0.5}))
    assert not await hass.config_entries.async_setup(entry.entry_id)
    assert entry.state is config_entries.ConfigEntryState.SETUP_ERROR
    assert entry.minor_version == 5
    assert entry.options["threshold_gunshot"] == 0.5
    assert CONF_OVERRIDES_FOR not in entry.options
    monkeypatch.setitem(engine_model.SHIPPED_MODELS, TEST_MODEL, installed)
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is config_entries.ConfigEntryState.LOADED
    issue = ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry))
    assert issue is not None
    assert issue.translation_placeholders["old_version"] == "?"
    assert await hass.config_entries.async_unload(entry.entry_id)
