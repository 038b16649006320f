"""Helpers for `scripts/develop`: install the pinned frontend; prepare a fresh config's storage; onboard it
once and add the demo camera to Sound Sentry through its config flow, as a user would.

    python scripts/dev_home_assistant.py install-frontend
    python scripts/dev_home_assistant.py prepare-config CONFIG_DIR PORT
    python scripts/dev_home_assistant.py onboard CONFIG_DIR BASE_URL [DEMO_RTSP_URL]

BASE_URL is Home Assistant's, e.g. http://127.0.0.1:8123. Without DEMO_RTSP_URL (or with an empty one)
nothing is added to Sound Sentry: the browser test adds the demo stream through the UI.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from pathlib import Path
import subprocess
import sys

import aiohttp

DEMO_USER, DEMO_PASSWORD = "demo", "sound-sentry-demo"
INSTALLATION_METHOD_ISSUE = "deprecated_method"
"""Home Assistant's repair for its Core installation method (homeassistant/components/homeassistant)."""


def install_frontend() -> None:
    """Install the frontend package that this Home Assistant's frontend integration asks for."""
    from homeassistant.components import frontend

    manifest = json.loads((Path(frontend.__file__).parent / "manifest.json").read_text())
    wanted = [req for req in manifest["requirements"] if req.startswith("home-assistant-frontend")]
    name, _, version = wanted[0].partition("==")
    try:
        if importlib.metadata.version(name) == version:
            return
    except importlib.metadata.PackageNotFoundError:
        pass
    print(f"installing {wanted[0]} (once)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", *wanted], check=True)


def _write_store(config: Path, key: str, version: int, minor_version: int, data: object) -> None:
    """Write one of Home Assistant's storage files (.storage/`key`), unless the config has it already."""
    path = config / ".storage" / key
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    store = {"version": version, "minor_version": minor_version, "key": key, "data": data}
    path.write_text(json.dumps(store, indent=2))


def prepare_config(config: Path, port: int) -> None:
    """A fresh config's storage, written before Home Assistant first starts, each in Home Assistant's own
    format (its constants and schema), so that the demo's log and Settings show only what matters:

    - HTTP on 127.0.0.1:`port` from the first start, without a trial to confirm in the UI. Since 2026.x
      Home Assistant keeps its HTTP settings in storage: settings from YAML are a pending trial that the
      user must confirm in a dialog within 5 minutes, or Home Assistant reverts them and restarts.
    - Onboarding's "core config" step done: finishing it sets up Google Translate, Met.no (the weather,
      which fails without the internet), Radio Browser and a shopping list, none of which the demo uses.
      The location it would ask for is in the demo's configuration.yaml.
    - Home Assistant's repair "Unsupported installation method" ignored, as the user would in its dialog:
      the demo runs Home Assistant Core in a venv, which Home Assistant does not support since 2025.12.
    """
    from homeassistant.components import onboarding
    from homeassistant.components.http.config import (
        HTTP_STORAGE_SCHEMA,
        STORAGE_KEY,
        STORAGE_MINOR_VERSION,
        STORAGE_VERSION,
    )
    from homeassistant.components.onboarding.const import STEP_CORE_CONFIG
    from homeassistant.const import __version__ as ha_version
    from homeassistant.helpers import issue_registry
    from homeassistant.util import dt as dt_util

    now = dt_util.utcnow()
    stable = HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    stable |= {"created_at": now.isoformat(), "error": None, "error_message": None}
    http = {"stable": stable, "pending": None, "yaml_migration_done": True}
    _write_store(config, STORAGE_KEY, STORAGE_VERSION, STORAGE_MINOR_VERSION, http)
    steps = {"done": [STEP_CORE_CONFIG]}
    _write_store(config, onboarding.STORAGE_KEY, onboarding.STORAGE_VERSION, 1, steps)
    ignored = issue_registry.IssueEntry(
        active=False,
        breaks_in_ha_version=None,
        created=now,
        data=None,
        dismissed_version=ha_version,
        domain="homeassistant",
        is_fixable=False,
        is_persistent=False,
        issue_domain=None,
        issue_id=INSTALLATION_METHOD_ISSUE,
        learn_more_url=None,
        severity=None,
        translation_key=None,
        translation_placeholders=None,
    )
    _write_store(
        config,
        issue_registry.STORAGE_KEY,
        issue_registry.STORAGE_VERSION_MAJOR,
        issue_registry.STORAGE_VERSION_MINOR,
        {"issues": [ignored.to_json()]},
    )


async def _wait_for_api(session: aiohttp.ClientSession, base: str) -> None:
    for _ in range(600):
        try:
            async with session.get(f"{base}/api/onboarding") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.5)
    raise SystemExit(f"Home Assistant did not answer at {base} within 5 minutes")


async def _login(session: aiohttp.ClientSession, base: str) -> dict[str, str]:
    """Log in as the demo user through the login flow; the Authorization header."""
    flow_request = {"client_id": f"{base}/", "handler": ["homeassistant", None], "redirect_uri": f"{base}/"}
    async with session.post(f"{base}/auth/login_flow", json=flow_request) as response:
        flow_id = (await response.json())["flow_id"]
    login = {"client_id": f"{base}/", "username": DEMO_USER, "password": DEMO_PASSWORD}
    async with session.post(f"{base}/auth/login_flow/{flow_id}", json=login) as response:
        code = (await response.json())["result"]
    token_request = {"grant_type": "authorization_code", "code": code, "client_id": f"{base}/"}
    async with session.post(f"{base}/auth/token", data=token_request) as response:
        response.raise_for_status()
        return {"Authorization": f"Bearer {(await response.json())['access_token']}"}


async def add_demo_camera(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], url: str
) -> None:
    """Add the demo RTSP stream to Sound Sentry through its config flow, unless an entry exists."""
    async with session.get(f"{base}/api/config/config_entries/entry", headers=headers) as response:
        entries = await response.json()
    if any(entry["domain"] == "sound_sentry" for entry in entries):
        return
    flows = f"{base}/api/config/config_entries/flow"
    async with session.post(flows, json={"handler": "sound_sentry"}, headers=headers) as response:
        flow_id = (await response.json())["flow_id"]
    demo = {"name": "Demo camera", "url": url, "transport": "tcp"}
    for step in ({"next_step_id": "rtsp"}, demo, {}):
        async with session.post(f"{flows}/{flow_id}", json=step, headers=headers) as response:
            result = await response.json()
        if result.get("errors"):
            print(f"could not add the demo camera: {result['errors']}", file=sys.stderr)
            return
    print(f"  Sound Sentry listens to the demo camera {url}", file=sys.stderr)


async def onboard(config: Path, base: str, demo_url: str) -> None:
    """Create the demo owner and finish onboarding once (on a config from `prepare_config`); add the demo
    camera to Sound Sentry."""
    async with aiohttp.ClientSession() as session:
        await _wait_for_api(session, base)
        async with session.get(f"{base}/api/onboarding") as response:
            steps = {step["step"]: step["done"] for step in await response.json()}
        if not steps.get("user", True):
            user = {"client_id": f"{base}/", "name": "Demo", "username": DEMO_USER,
                    "password": DEMO_PASSWORD, "language": "en"}  # fmt: skip
            async with session.post(f"{base}/api/onboarding/users", json=user) as response:
                response.raise_for_status()
                code = (await response.json())["auth_code"]
            token_request = {"grant_type": "authorization_code", "code": code, "client_id": f"{base}/"}
            async with session.post(f"{base}/auth/token", data=token_request) as response:
                response.raise_for_status()
                token = (await response.json())["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            for step, body in (  # core_config is done already (prepare_config)
                ("analytics", {}),
                ("integration", {"client_id": f"{base}/", "redirect_uri": f"{base}/?auth_callback=1"}),
            ):
                async with session.post(
                    f"{base}/api/onboarding/{step}", json=body, headers=headers
                ) as response:
                    if response.status not in (200, 403):  # 403: step already done
                        response.raise_for_status()
        if demo_url:
            headers = await _login(session, base)
            await add_demo_camera(session, base, headers, demo_url)
    print(
        f"\n  Sound Sentry demo: open {base} and log in as '{DEMO_USER}' / '{DEMO_PASSWORD}'"
        f"  (config: {config})\n",
        file=sys.stderr,
        flush=True,
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["install-frontend"]:
        install_frontend()
    elif sys.argv[1:2] == ["prepare-config"]:
        prepare_config(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["onboard"]:
        asyncio.run(onboard(Path(sys.argv[2]), sys.argv[3], (sys.argv[4:5] or [""])[0]))
    else:
        raise SystemExit(__doc__)
