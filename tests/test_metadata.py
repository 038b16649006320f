"""manifest.json, hacs.json and LICENSE pass the checks hassfest and HACS make, as far as they run here.

quality_scale.yaml is checked in test_quality_scale.py.
"""

from __future__ import annotations

import json
from pathlib import Path
import re
import tomllib

from awesomeversion import AwesomeVersion
from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.util.package import is_installed
from packaging.requirements import Requirement
import voluptuous as vol

from custom_components.sound_sentry.const import DOMAIN

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "custom_components" / DOMAIN
MANIFEST = json.loads((PACKAGE / "manifest.json").read_text())
HACS = json.loads((REPO / "hacs.json").read_text())

IOT_CLASSES = {"assumed_state", "cloud_polling", "cloud_push", "local_polling", "local_push", "calculated"}
INTEGRATION_TYPES = {"device", "entity", "hardware", "helper", "hub", "service", "system", "virtual"}

# HACS's schema of hacs.json (custom_components/hacs/utils/validate.py): these keys and types, no others.
HACS_JSON = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Optional("content_in_root"): bool,
        vol.Optional("country"): vol.Any(str, [str]),
        vol.Optional("filename"): str,
        vol.Optional("hacs"): str,
        vol.Optional("hide_default_branch"): bool,
        vol.Optional("homeassistant"): str,
        vol.Optional("persistent_directory"): str,
        vol.Optional("render_readme"): bool,
        vol.Optional("zip_release"): bool,
    },
    extra=vol.PREVENT_EXTRA,
)
# HACS's schema of an integration's manifest.json (the same module): required keys.
HACS_MANIFEST = vol.Schema(
    {
        vol.Required("codeowners"): [str],
        vol.Required("documentation"): vol.Match(r"^https://"),
        vol.Required("domain"): str,
        vol.Required("issue_tracker"): vol.Match(r"^https://"),
        vol.Required("name"): str,
        vol.Required("version"): str,
    },
    extra=vol.ALLOW_EXTRA,
)


def test_manifest_passes_hassfest_and_hacs() -> None:
    HACS_MANIFEST(MANIFEST)
    assert MANIFEST["domain"] == PACKAGE.name  # the folder HACS installs and Home Assistant loads
    keys = list(MANIFEST)  # hassfest: domain and name first, then the other keys sorted
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert MANIFEST["iot_class"] in IOT_CLASSES
    assert MANIFEST["integration_type"] in INTEGRATION_TYPES
    assert all(re.fullmatch(r"@[\w-]+(/[\w-]+)?", owner) for owner in MANIFEST["codeowners"])
    # Custom integrations need a version that AwesomeVersion understands (loader rule).
    assert AwesomeVersion(MANIFEST["version"]).strategy != "unknown"
    assert MANIFEST["version"] == tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def test_requirements_are_installable_everywhere() -> None:
    """Lower bounds only (an upper bound can clash with Home Assistant's constraints), and never
    onnxruntime: it has no musl wheels (Home Assistant OS, Container, Supervised)."""
    for text in MANIFEST["requirements"]:
        requirement = Requirement(text)
        assert requirement.specifier, text
        assert all(spec.operator == ">=" for spec in requirement.specifier), text
        assert "onnx" not in requirement.name.lower(), text


def test_requirements_satisfied_in_this_environment() -> None:
    for req in MANIFEST["requirements"]:
        assert is_installed(req), req


def test_requirements_lower_bounds_are_what_the_minimum_environment_tests() -> None:
    """The oldest av and numpy the manifest allows are the ones the minimum environment runs."""
    lock = (REPO / "requirements" / "minimum.lock").read_text()
    for text in MANIFEST["requirements"]:
        requirement = Requirement(text)
        [bound] = [spec.version for spec in requirement.specifier if spec.operator == ">="]
        assert f"\n{requirement.name}=={bound}\n" in lock, (
            f"minimum.lock does not test {requirement.name} {bound}"
        )


def test_hacs_json_passes_hacs_and_names_the_oldest_tested_home_assistant() -> None:
    HACS_JSON(HACS)
    assert HACS["name"] == MANIFEST["name"]
    # The oldest Home Assistant that HACS offers Sound Sentry to is the one the minimum environment tests.
    tested = re.search(
        r"^homeassistant==(\d+)\.(\d+)\.", (REPO / "requirements" / "minimum.lock").read_text(), re.M
    )
    assert tested is not None
    assert AwesomeVersion(HACS["homeassistant"]) == AwesomeVersion(f"{tested[1]}.{tested[2]}.0")
    assert f"needs Home Assistant {tested[1]}.{tested[2]} or newer" in (REPO / "README.md").read_text()


def test_licence_is_the_mit_licence_pyproject_declares() -> None:
    """HACS refuses a repository without a licence that GitHub recognises in a LICENSE file at the root."""
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["license"] == "MIT"
    text = " ".join((REPO / "LICENSE").read_text().split())
    assert text.startswith("MIT License Copyright (c) ")
    assert "Permission is hereby granted, free of charge, to any person obtaining a copy" in text
    assert text.endswith("OTHER DEALINGS IN THE SOFTWARE.")


def test_translations_match_strings() -> None:
    strings = json.loads((PACKAGE / "strings.json").read_text())
    english = json.loads((PACKAGE / "translations" / "en.json").read_text())
    assert strings == english


async def test_home_assistant_loads_the_manifest(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    assert integration.name == MANIFEST["name"]
    assert str(integration.version) == MANIFEST["version"]
    assert integration.config_flow is True
    assert str(integration.file_path) == str(PACKAGE)
    assert integration.requirements == MANIFEST["requirements"]
