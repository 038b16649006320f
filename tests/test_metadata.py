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
