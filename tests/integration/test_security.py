"""No credential anywhere: everything Home Assistant and Sound Sentry say about sources with a password,
across the fault scenarios, searched for the password and the URL's user-info.

Collected: every log record of every logger at DEBUG level (messages, arguments and tracebacks), what
the process wrote to stdout and stderr at the file-descriptor level (FFmpeg's own log lines included),
diagnostics of every entry, the state and attributes of every entity, the errors of config, reauth and
reconfigure flows, repair issues, and each source's error with its chained exceptions.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
import traceback
from urllib.parse import quote

from homeassistant import config_entries
from homeassistant.const import CONF_NAME, CONF_PASSWORD, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component import plugins
from pytest_homeassistant_custom_component.components.diagnostics import get_diagnostics_for_config_entry
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.sound_sentry.const import CONF_TRANSPORT, DOMAIN
from tests.entries import rtsp_entry
from tests.peers import RtspServer

from .conftest import fire_repair_timer, wait_for

pytestmark = pytest.mark.usefixtures("no_blocking_calls")

USER = "nanny.cam"
PASSWORD = "S3cr3t/Pa55@word#"  # characters that URL-quoting changes: both spellings are searched


def secrets() -> list[str]:
    return [
        PASSWORD,
        quote(PASSWORD, safe=""),
        quote(PASSWORD),
        f"{USER}:",
        f"{quote(USER, safe='')}:",
    ]


def exception_text(error: BaseException | None) -> str:
    """An exception with everything chained to it, as a traceback prints it."""
    return "".join(traceback.format_exception(error)) if error is not None else ""


async def test_no_credentials_anywhere(
    hass: HomeAssistant,
    *,
    socket_enabled: None,
    rtsp_server: Callable[..., RtspServer],
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    if (real := getattr(plugins, "_real_getaddrinfo", None)) is not None:
        monkeypatch.setattr("socket.getaddrinfo", real)  # a real lookup of the unresolvable host
    assert await async_setup_component(hass, "diagnostics", {})
    collected: list[str] = []

    # A camera with the right password, one with the wrong one, one that goes away, one that stalls,
    # and a host name that does not resolve: all with the same user name and password.
    good = rtsp_server(codec="pcmu", user=USER, password=PASSWORD)
    refused = rtsp_server(codec="pcmu", user=USER, password="another-password")
    leaving = rtsp_server(codec="aac", user=USER, password=PASSWORD)
    stalling = rtsp_server(codec="pcma", user=USER, password=PASSWORD, stall_after_s=1.0)
    urls = {
        "good": good.url(),
        "refused": refused.url(),
        "leaving": leaving.url(),
        "stalling": stalling.url(),
        "unresolvable": "rtsp://camera.invalid:554/stream",
    }
    entries = {
        name: rtsp_entry(url, username=USER, password=PASSWORD, title=f"{name} camera")
        for name, url in urls.items()
    }
    for entry in entries.values():
        entry.add_to_hass(hass)
        assert await hass.config_entries.async_setup(entry.entry_id)
    runtime = {name: entry.runtime_data for name, entry in entries.items()}
    await wait_for(hass, lambda: runtime["good"].windows_classified > 4)
    await wait_for(hass, lambda: runtime["leaving"].connected)
    await hass.async_add_executor_job(leaving.stop)
    await wait_for(
        hass,
        lambda: all(
            runtime[n].last_error is not None for n in ("refused", "leaving", "stalling", "unresolvable")
        ),
    )
    assert runtime["refused"].last_error.reason == "invalid_auth"
    assert runtime["stalling"].last_error.reason == "timeout"
    issues = ir.async_get(hass)
    fire_repair_timer(hass)
    await hass.async_block_till_done()
    assert all(issues.async_get_issue(DOMAIN, runtime[n].issue_id) for n in ("leaving", "unresolvable"))

    # The config flow, given the same credentials: accepted, refused (401), and put into the URL.
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {"next_step_id": "rtsp"})
    flow_id = result["flow_id"]
    for url, user, password in [
        # Channel 2 of each: channel 1 (the bare URL) is configured already.
        (refused.url(path="/stream?channel=2"), USER, PASSWORD),
        (good.url(user=USER, password=quote(PASSWORD, safe=""), path="/stream?channel=2"), "", ""),
        ("rtsp://camera.invalid/stream?channel=2", USER, PASSWORD),
    ]:
        result = await hass.config_entries.flow.async_configure(
            flow_id,
            {
                CONF_NAME: "New camera",
                CONF_URL: url,
                CONF_USERNAME: user,
                CONF_PASSWORD: password,
                CONF_TRANSPORT: "tcp",
            },
        )
        assert result["errors"], result
        collected.append(
            json.dumps({"errors": result["errors"], "placeholders": result.get("description_placeholders")})
        )
    hass.config_entries.flow.async_abort(flow_id)
    # The reauth flow the 401 started, answered wrongly once.
    [reauth] = [
        f
        for f in hass.config_entries.flow.async_progress_by_handler(DOMAIN)
        if f["context"]["source"] == "reauth"
    ]
    result = await hass.config_entries.flow.async_configure(
        reauth["flow_id"], {CONF_USERNAME: USER, CONF_PASSWORD: PASSWORD}
    )
    assert result["errors"] == {"base": "invalid_auth"}
    collected.append(
        json.dumps({"errors": result["errors"], "placeholders": result.get("description_placeholders")})
    )

    # Everything Home Assistant shows or keeps about them.
    for entry in entries.values():
        collected.append(json.dumps(await get_diagnostics_for_config_entry(hass, hass_client, entry)))
        collected.append(str(entry.reason))
        error = entry.runtime_data.last_error
        collected += [str(error), repr(error), exception_text(error)]
    collected += [json.dumps(state.as_dict(), default=str) for state in hass.states.async_all()]
    collected += [json.dumps(issue.to_json(), default=str) for issue in issues.issues.values()]

    hass.config_entries.flow.async_abort(reauth["flow_id"])
    for entry in entries.values():
        assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()

    # Every log record, with its arguments and traceback, and the process's own stdout and stderr.
    for record in caplog.records:
        collected += [record.getMessage(), repr(record.args), record.exc_text or ""]
        if record.exc_info and record.exc_info[1] is not None:
            collected.append(exception_text(record.exc_info[1]))
    collected.append(caplog.text)
    out, err = capfd.readouterr()
    collected += [out, err]

    text = "\n".join(collected)
    assert "invalid_auth" in text  # the sweep did see the scenarios
    assert "camera.invalid" in text
    assert len(caplog.records) > 100
    found = {secret: text.count(secret) for secret in secrets() if secret in text}
    where = [line for line in text.splitlines() if any(secret in line for secret in found)][:5]
    assert not found, f"credentials found: {found} in {where}"
