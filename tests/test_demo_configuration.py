"""The demo's configuration (scripts/dev_configuration.yaml, what `scripts/develop` starts) names only what
the demo needs beyond Home Assistant's own defaults, nothing that needs the internet, and keeps what the
demo and its browser test use."""

from __future__ import annotations

from collections.abc import Iterable
import json
from pathlib import Path

from homeassistant import bootstrap, components
from homeassistant.util.yaml import load_yaml
import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGURATION = REPO / "scripts" / "dev_configuration.yaml"
COMPONENTS = Path(components.__file__).parent


def manifest(domain: str) -> dict[str, object]:
    file = COMPONENTS / domain / "manifest.json"
    assert file.is_file(), f"{domain} is not an integration of Home Assistant"
    return json.loads(file.read_text())


def with_dependencies(domains: Iterable[str]) -> set[str]:
    """`domains` and everything they depend on (manifest dependencies, not after_dependencies)."""
    found: set[str] = set()
    todo = list(domains)
    while todo:
        domain = todo.pop()
        if domain not in found:
            found.add(domain)
            todo += manifest(domain).get("dependencies", [])  # type: ignore[arg-type]
    return found


@pytest.fixture
def configuration(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    monkeypatch.setenv("SOUND_SENTRY_DEV_MEDIA", "/tmp/media")  # scripts/develop sets it
    return load_yaml(CONFIGURATION)  # type: ignore[return-value]


def test_the_demo_loads_only_what_it_needs(configuration: dict[str, object]) -> None:
    named = set(configuration) - {"homeassistant"}
    assert "default_config" not in named, "default_config brings integrations that need the internet"
    # One of Home Assistant's defaults is named only to configure it (logger's levels). (What a default
    # depends on may be named: the demo uses media_source itself, whichever default also needs it.)
    redundant = {d for d in named & bootstrap.DEFAULT_INTEGRATIONS if configuration[d] is None}
    assert not redundant, f"Home Assistant sets these up anyway: {sorted(redundant)}"
    cloud = {
        domain
        for domain in with_dependencies(named)
        if str(manifest(domain).get("iot_class", "")).startswith("cloud")
    }
    assert not cloud, f"need the internet: {sorted(cloud)}"
    # What the demo shows and its browser test drives: the frontend, and the Media browser that plays
    # Sound Sentry's clips. (The demo's source is an RTSP URL: it needs no camera entity.)
    wanted = {"frontend", "media_source"}
    set_up = with_dependencies(bootstrap.DEFAULT_INTEGRATIONS | named)
    assert wanted <= set_up, f"not set up: {sorted(wanted - set_up)}"
