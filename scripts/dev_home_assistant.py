"""Helpers for `scripts/develop`: install the pinned frontend; onboard a fresh config once and add the
demo camera to Sound Sentry through its config flow, as a user would.

    python scripts/dev_home_assistant.py install-frontend
    python scripts/dev_home_assistant.py http-config CONFIG_DIR PORT
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


def write_http_config(config: Path, port: int) -> None:
    """Listen on 127.0.0.1:`port` from the first start, without a trial to confirm in the UI.

    Since 2026.x Home Assistant keeps its HTTP settings in storage: settings from YAML are a pending
    trial that the user must confirm in a dialog within 5 minutes, or Home Assistant reverts them and
    restarts. A fresh config gets them as its confirmed ("stable") settings instead, completed with
    Home Assistant's own defaults by its own schema.
    """
    from homeassistant.components.http.config import (
        HTTP_STORAGE_SCHEMA,
        STORAGE_KEY,
        STORAGE_MINOR_VERSION,
        STORAGE_VERSION,
    )
    from homeassistant.util import dt as dt_util

    path = config / ".storage" / STORAGE_KEY
    if path.exists():
        return
    stable = HTTP_STORAGE_SCHEMA({"server_host": ["127.0.0.1"], "server_port": port})
    stable |= {"created_at": dt_util.utcnow().isoformat(), "error": None, "error_message": None}
    data = {"stable": stable, "pending": None, "yaml_migration_done": True}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps(
            {
                "version": STORAGE_VERSION,
                "minor_version": STORAGE_MINOR_VERSION,
                "key": STORAGE_KEY,
                "data": data,
            },
            indent=2,
        )
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


CLOUD_DOMAINS = {"met", "radio_browser", "google_translate", "shopping_list"}
"""What onboarding adds that needs the internet (this demo runs without it): removed again."""


async def remove_cloud_entries(
    session: aiohttp.ClientSession, base: str, headers: dict[str, str], *, just_onboarded: bool
) -> None:
    """Remove the internet-only entries onboarding creates, so the demo log shows only what matters.

    Onboarding adds them in the background after it answers: right after it, look for up to 15 seconds.
    """
    removed: set[str] = set()
    for _ in range(30 if just_onboarded else 1):
        async with session.get(f"{base}/api/config/config_entries/entry", headers=headers) as response:
            entries = await response.json()
        for entry in entries:
            if entry["domain"] in CLOUD_DOMAINS:
                url = f"{base}/api/config/config_entries/entry/{entry['entry_id']}"
                async with session.delete(url, headers=headers) as response:
                    response.raise_for_status()
                removed.add(entry["domain"])
        if removed == CLOUD_DOMAINS:
            return
        await asyncio.sleep(0.5)


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
    """Create the demo owner and finish onboarding once; add the demo camera to Sound Sentry."""
    async with aiohttp.ClientSession() as session:
        await _wait_for_api(session, base)
        async with session.get(f"{base}/api/onboarding") as response:
            steps = {step["step"]: step["done"] for step in await response.json()}
        just_onboarded = not steps.get("user", True)
        if just_onboarded:
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
            for step, body in (
                ("core_config", {}),
                ("analytics", {}),
                ("integration", {"client_id": f"{base}/", "redirect_uri": f"{base}/?auth_callback=1"}),
            ):
                async with session.post(
                    f"{base}/api/onboarding/{step}", json=body, headers=headers
                ) as response:
                    if response.status not in (200, 403):  # 403: step already done
                        response.raise_for_status()
        headers = await _login(session, base)
        await remove_cloud_entries(session, base, headers, just_onboarded=just_onboarded)
        if demo_url:
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
    elif sys.argv[1:2] == ["http-config"]:
        write_http_config(Path(sys.argv[2]), int(sys.argv[3]))
    elif sys.argv[1:2] == ["onboard"]:
        asyncio.run(onboard(Path(sys.argv[2]), sys.argv[3], (sys.argv[4:5] or [""])[0]))
    else:
        raise SystemExit(__doc__)
