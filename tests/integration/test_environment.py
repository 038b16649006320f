"""The test environment holds what the Home Assistant components the tests load ask for.

The test plugin runs Home Assistant with `skip_pip`: a requirement missing from requirements/*.lock
shows only as an ImportError somewhere, or not at all on a machine where a Home Assistant once
installed it. This sets up the components the tests use, as they do, and checks every loaded
component's manifest requirements against the installed packages, with Home Assistant's own check.
"""

from __future__ import annotations

from homeassistant.core import HomeAssistant
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from homeassistant.util.package import is_installed
from packaging.requirements import Requirement

# What the tests set up themselves (the config flow, the blueprint test's phone and automation, the
# diagnostics and camera tests); the components these depend on are loaded with them.
ROOTS = ("camera", "diagnostics", "automation", "input_boolean", "mobile_app", "stream")

# Installed at another version than the component pins, on purpose: Home Assistant 2026.10.4 pins
# pymicro-vad/pyspeex-noise releases that have no Python 3.14 wheels (requirements/latest.txt takes newer
# ones with the same API); av and numpy are the integration's own requirements, whose range's newest
# (latest) and oldest (minimum) releases the two environments test.
OTHER_VERSION = {"pymicro-vad", "pyspeex-noise", "av", "numpy"}


async def test_loaded_components_requirements_are_installed(hass: HomeAssistant) -> None:
    for domain in ROOTS:
        assert await async_setup_component(hass, domain, {}), domain
    await hass.async_block_till_done()

    loaded = sorted({component.partition(".")[0] for component in hass.config.components})
    missing = []
    for domain in loaded:
        integration = await async_get_integration(hass, domain)
        for requirement in integration.requirements:
            name = Requirement(requirement).name.lower()
            if not is_installed(name if name in OTHER_VERSION else requirement):
                missing.append(f"{domain}: {requirement}")
    assert "camera" in loaded
    assert "mobile_app" in loaded
    assert not missing, f"add to requirements/*.txt and run scripts/lock: {missing}"
