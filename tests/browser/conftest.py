"""Fixtures for the browser test: the real Home Assistant of `scripts/develop` and a headless Chromium.

The Home Assistant test environments have no Playwright: there this folder is skipped, and
`scripts/test_browser` runs it in its own venv (pytest + Playwright, `scripts/setup browser`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
import importlib.util
import os
from pathlib import Path
import shutil
import signal
import socket
import subprocess
import time
from typing import Any

import pytest

if importlib.util.find_spec("playwright") is None:
    collect_ignore_glob = ["test_*.py"]

REPO = Path(__file__).resolve().parents[2]
DEV_DIR = REPO / ".dev" / "browser"
"""The test's own `scripts/develop` folder (config, demo recording, log), new for each run."""
SCREENSHOTS = Path(os.environ.get("SOUND_SENTRY_SCREENSHOTS") or DEV_DIR / "screenshots")
"""Where the screenshots go; `SOUND_SENTRY_SCREENSHOTS=docs/images` refreshes the README's."""
CHROMIUM = os.environ.get("SOUND_SENTRY_CHROMIUM", "/usr/bin/chromium")
READY_LINE = "Sound Sentry demo: open"
START_TIMEOUT_S = 600.0  # a first run installs the frontend and builds the demo recording
# Debian's Chromium, headless, as root, on a machine whose only network is loopback: without the
# background-networking flags its own connections to Google fail and slow it down.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
FIELD_ENGINE = """{
  queryAll(root, label) {
    const found = [];
    const walk = (node) => {
      for (const el of node.querySelectorAll('*')) {
        if (el.tagName === 'HA-SELECTOR' && typeof el.label === 'string'
            && el.label.replace(/[*]$/, '').trim() === label) found.push(el);
        if (el.shadowRoot) walk(el.shadowRoot);
      }
    };
    walk(root);
    return found;
  },
  query(root, label) { return this.queryAll(root, label)[0] || null; }
}"""
"""`field=LABEL`: a form field of Home Assistant by its label. The label is a property that the
frontend renders straight into a shadow root (no element holds its text), so text locators miss it."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DemoHomeAssistant:
    """The running `scripts/develop`: Home Assistant and the demo camera's RTSP stream."""

    url: str
    rtsp_url: str
    dev_dir: Path
    log: Path


@pytest.fixture(scope="session")
def home_assistant() -> Iterator[DemoHomeAssistant]:
    """`scripts/develop` on a fresh config and free ports, without the demo entry (the test adds it
    through the UI); stopped with SIGTERM, Home Assistant's clean stop, like Ctrl-C."""
    shutil.rmtree(DEV_DIR / "config", ignore_errors=True)
    DEV_DIR.mkdir(parents=True, exist_ok=True)
    ha_port, rtsp_port = free_port(), free_port()
    env = {
        **os.environ,
        "SOUND_SENTRY_DEV_DIR": str(DEV_DIR),
        "SOUND_SENTRY_DEV_PORT": str(ha_port),
        "DEMO_RTSP_PORT": str(rtsp_port),
        "SOUND_SENTRY_DEV_ADD_DEMO": "0",
    }
    log = DEV_DIR / "develop.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(REPO / "scripts" / "develop")],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while READY_LINE not in log.read_text(errors="replace"):
            if process.poll() is not None:
                pytest.fail(f"scripts/develop exited ({process.returncode}); see {log}")
            if time.monotonic() > deadline:
                pytest.fail(f"scripts/develop was not ready within {START_TIMEOUT_S:.0f} s; see {log}")
            time.sleep(0.5)
        yield DemoHomeAssistant(
            url=f"http://127.0.0.1:{ha_port}",
            rtsp_url=f"rtsp://127.0.0.1:{rtsp_port}/stream",
            dev_dir=DEV_DIR,
            log=log,
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (no browser download)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        playwright.selectors.register("field", FIELD_ENGINE)
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test item, for the `page` fixture to see a failure."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A new page (fresh profile) with a desktop-sized window; on failure its screenshot is saved as
    SCREENSHOTS/failed-TEST.png."""
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    context.set_default_timeout(30_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=SCREENSHOTS / f"failed-{request.node.name}.png")
    context.close()


@pytest.fixture
def screenshot(page: Any) -> Any:
    """`screenshot(name)` saves the page as SCREENSHOTS/name.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=path)
        return path

    return take
