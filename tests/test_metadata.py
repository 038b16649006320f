"""manifest.json and hacs.json follow the rules of hassfest and HACS that can be checked here."""

from __future__ import annotations

import json
from pathlib import Path
import re

from awesomeversion import AwesomeVersion
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.util.package import is_installed
from packaging.requirements import Requirement
import pytest

from custom_components.sound_sentry.const import DOMAIN
from custom_components.sound_sentry.engine.sources.runner import AUTH_RETRY_S

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "custom_components" / DOMAIN
MANIFEST = json.loads((PACKAGE / "manifest.json").read_text())
HACS = json.loads((REPO / "hacs.json").read_text())

IOT_CLASSES = {"assumed_state", "cloud_polling", "cloud_push", "local_polling", "local_push", "calculated"}
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system", "virtual"}
HACS_KEYS = {"name", "content_in_root", "zip_release", "filename", "hide_default_branch", "country",
             "homeassistant", "hacs", "persistent_directory", "render_readme"}  # fmt: skip


def test_manifest_fields() -> None:
    assert MANIFEST["domain"] == DOMAIN == PACKAGE.name
    assert MANIFEST["name"] == "Sound Sentry"
    # hassfest: domain and name first, then the other keys sorted.
    keys = list(MANIFEST)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert MANIFEST["config_flow"] is True
    assert (PACKAGE / "config_flow.py").is_file()
    assert MANIFEST["iot_class"] == "local_push"
    assert MANIFEST["iot_class"] in IOT_CLASSES
    assert MANIFEST["integration_type"] in INTEGRATION_TYPES
    assert all(re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner) for owner in MANIFEST["codeowners"])
    for key in ("documentation", "issue_tracker"):
        assert MANIFEST[key].startswith("https://")
    # "loggers" names the third-party libraries' loggers (the integration's own is debugged anyway):
    # PyAV ("av") and the FFmpeg messages PyAV forwards ("libav.<component>").
    assert MANIFEST["loggers"] == ["av", "libav"]
    # Custom integrations need a version that AwesomeVersion understands (loader rule).
    assert AwesomeVersion(MANIFEST["version"]).strategy != "unknown"


def test_requirements_are_installable_everywhere() -> None:
    """Lower bounds only, and never onnxruntime: it has no musl wheels (HA OS, Container)."""
    requirements = [Requirement(req) for req in MANIFEST["requirements"]]
    assert {req.name for req in requirements} == {"av", "numpy"}
    for req in requirements:
        assert all(spec.operator == ">=" for spec in req.specifier), req
    assert not any("onnx" in req.lower() for req in MANIFEST["requirements"])


def test_requirements_satisfied_in_this_environment() -> None:
    for req in MANIFEST["requirements"]:
        assert is_installed(req), req


def test_hacs_json() -> None:
    assert set(HACS) <= HACS_KEYS
    assert HACS["name"] == MANIFEST["name"]
    assert HACS["render_readme"] is True
    assert AwesomeVersion(HACS["homeassistant"]) == AwesomeVersion("2025.4.0")


@pytest.mark.parametrize("name", ["icon.png", "logo.png"])
def test_brand_images(name: str) -> None:
    data = (PACKAGE / "brand" / name).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20]), int.from_bytes(data[20:24])
    assert (width, height) == (256, 256)


def test_translations_match_strings() -> None:
    strings = json.loads((PACKAGE / "strings.json").read_text())
    english = json.loads((PACKAGE / "translations" / "en.json").read_text())
    assert strings == english


async def test_home_assistant_loads_the_manifest(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.name == "Sound Sentry"
    assert str(integration.version) == MANIFEST["version"]
    assert integration.config_flow is True
    assert str(integration.file_path) == str(PACKAGE)


def test_quality_scale_is_complete_and_explained() -> None:
    """Every rule of the quality scale has a status; every exemption and todo says why."""
    import yaml

    rules = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]
    assert len(rules) >= 50
    for name, rule in rules.items():
        status = rule if isinstance(rule, str) else rule["status"]
        assert status in {"done", "exempt", "todo"}, name
        if status != "done":
            assert isinstance(rule, dict), name
            assert len(rule.get("comment", "")) > 20, name


# -- quality_scale.yaml: each `done` rule's claim, checked where a check can be made here ---------------


def _source(name: str) -> str:
    return (PACKAGE / name).read_text()


def _readme_sections() -> set[str]:
    return {
        line.lstrip("#").strip()
        for line in (REPO / "README.md").read_text().splitlines()
        if line.startswith("#")
    }


def _platform_modules() -> list[str]:
    return [name for name in ("binary_sensor.py", "event.py", "sensor.py") if (PACKAGE / name).is_file()]


STRINGS = json.loads((PACKAGE / "strings.json").read_text())

RULE_CHECKS = {
    "config-flow": lambda: MANIFEST["config_flow"] and "async_step_user" in _source("config_flow.py"),
    "entity-unique-id": lambda: "self._attr_unique_id = " in _source("entity.py"),
    "has-entity-name": lambda: "_attr_has_entity_name = True" in _source("entity.py"),
    "runtime-data": lambda: (
        "entry.runtime_data = " in _source("entry.py")
        and "ConfigEntry[SoundSentryRuntime]" in _source("runtime.py")
    ),
    "unique-config-entry": lambda: "_abort_if_unique_id_configured" in _source("config_flow.py"),
    "test-before-configure": lambda: "errors[" in _source("config_flow.py"),
    "config-entry-unloading": lambda: "async def async_unload_entry" in _source("entry.py"),
    "integration-owner": lambda: bool(MANIFEST["codeowners"]),
    "parallel-updates": lambda: all("PARALLEL_UPDATES = " in _source(name) for name in _platform_modules()),
    "reauthentication-flow": lambda: (
        "async_step_reauth_confirm" in _source("config_flow.py")
        and AUTH_RETRY_S >= 3600  # refused logins: at most one retry an hour until reauth
        and "camera_invalid_auth" in STRINGS["issues"]
    ),
    "reconfiguration-flow": lambda: "async_step_reconfigure" in _source("config_flow.py"),
    "diagnostics": lambda: "async_get_config_entry_diagnostics" in _source("diagnostics.py"),
    "devices": lambda: "DeviceInfo(" in _source("entity.py"),
    "entity-category": lambda: "entity_category=EntityCategory.DIAGNOSTIC" in _source("sensor.py"),
    "entity-device-class": lambda: "device_class=BinarySensorDeviceClass" in _source("binary_sensor.py"),
    "entity-disabled-by-default": lambda: "entity_registry_enabled_default=False" in _source("sensor.py"),
    "entity-translations": lambda: all(
        set(STRINGS["entity"][platform]) >= set(icons)
        for platform, icons in json.loads(_source("icons.json"))["entity"].items()
    ),
    "icon-translations": lambda: bool(json.loads(_source("icons.json"))["entity"]),
    "exception-translations": lambda: all(
        key in STRINGS["exceptions"]
        for path in PACKAGE.glob("*.py")
        for key in re.findall(r'translation_domain=DOMAIN,\s*translation_key="(\w+)"', path.read_text())
    ),
    "repair-issues": lambda: set(STRINGS["issues"]) >= {"source_down", "no_audio"},
    "dependency-transparency": lambda: all(Requirement(req).specifier for req in MANIFEST["requirements"]),
    "strict-typing": lambda: "strict = true" in (REPO / "pyproject.toml").read_text(),
    "brands": lambda: (
        (PACKAGE / "brand" / "icon.png").is_file()
        and AwesomeVersion(HACS["homeassistant"]) >= AwesomeVersion("2026.3.0")
    ),
    "docs-installation-instructions": lambda: "Install" in _readme_sections(),
    "docs-removal-instructions": lambda: "To remove it" in (REPO / "README.md").read_text(),
    "docs-troubleshooting": lambda: "Troubleshooting" in _readme_sections(),
    "docs-examples": lambda: "Automations" in _readme_sections(),
    "docs-supported-devices": lambda: "Supported cameras and devices" in _readme_sections(),
    "docs-known-limitations": lambda: "<!-- model-metrics -->" in (REPO / "README.md").read_text(),
    "docs-configuration-parameters": lambda: "Tuning" in _readme_sections(),
    "docs-data-update": lambda: "How often the entities update" in _readme_sections(),
}
"""A check of what each rule claims; the others (log-when-unavailable, config-flow-test-coverage...) are
judged by the tests that exercise them."""


def test_done_rules_hold() -> None:
    """Every rule marked `done` that has a check here passes it; and a `done` rule's check can fail."""
    import yaml

    rules = yaml.safe_load((PACKAGE / "quality_scale.yaml").read_text())["rules"]
    done = {name for name, rule in rules.items() if rule == "done" or rule.get("status") == "done"}
    assert set(RULE_CHECKS) <= set(rules), set(RULE_CHECKS) - set(rules)
    failing = sorted(name for name in done & set(RULE_CHECKS) if not RULE_CHECKS[name]())
    assert not failing, f"quality_scale.yaml claims these done, but they are not: {failing}"


def test_no_triggers_or_conditions_of_its_own() -> None:
    """docs-triggers / docs-conditions are exempt because the integration registers none."""
    names = {path.name for path in PACKAGE.glob("*.py")}
    assert not names & {"trigger.py", "condition.py", "device_trigger.py", "device_condition.py"}
