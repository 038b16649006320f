"""The add-on's entry point: the add-on's options and the Supervisor's MQTT broker -> sound-sentry serve."""

from __future__ import annotations

import json
import os
from pathlib import Path
import sys
import urllib.request

import yaml

from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo, ModelLoadError

OPTIONS = Path("/data/options.json")
CONFIG = Path("/data/sound-sentry.yaml")
CLIPS = Path("/share/sound_sentry/clips")


def broker() -> dict[str, object]:
    """The MQTT broker the Supervisor offers (the Mosquitto add-on), with a login made for this add-on."""
    request = urllib.request.Request(  # the Supervisor's own address
        "http://supervisor/services/mqtt",
        headers={"Authorization": f"Bearer {os.environ['SUPERVISOR_TOKEN']}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        data = json.load(response)["data"]
    return {
        "host": data["host"],
        "port": int(data["port"]),
        "username": data.get("username"),
        "password": data.get("password"),
        "tls": bool(data.get("ssl", False)),
    }


def sounds(model: str) -> tuple[str, ...]:
    """The sounds a model detects, from its sidecar.

    config.yaml's schema has a `<sound>_threshold` for each sound of the shipped models (the Supervisor's
    schema is static; tests/integration/test_model_contract.py checks it).
    """
    return ModelInfo.load(model_path(model)).events


def service_config(options: dict[str, object], mqtt: dict[str, object]) -> dict[str, object]:
    """The service's YAML from the add-on's options."""
    sources = []
    for option in options.get("sources", []):  # type: ignore[attr-defined]
        source = {
            key: option[key]
            for key in ("name", "url", "username", "password", "transport", "model", "alarms")
            if option.get(key) is not None
        }
        thresholds = {
            sound: option[f"{sound}_threshold"]
            for sound in sounds(str(option.get("model") or DEFAULT_MODEL))
            if option.get(f"{sound}_threshold")
        }
        if thresholds:
            source["thresholds"] = thresholds
        if option.get("clips"):
            source["clips_dir"] = str(CLIPS)
        sources.append(source)
    if options.get("topic_prefix"):
        mqtt = mqtt | {"topic_prefix": options["topic_prefix"]}
    return {"mqtt": {key: value for key, value in mqtt.items() if value is not None}, "sources": sources}


def main() -> None:
    """Write the service's configuration (readable only by the add-on) and run the service."""
    options = json.loads(OPTIONS.read_text())
    if not options.get("sources"):
        sys.exit("Add at least one source in the add-on's configuration (name and url).")
    try:
        config = service_config(options, broker())
    except ModelLoadError as err:  # an unknown model name, or a damaged install
        sys.exit(f"A source's model cannot be read: {err}")
    CONFIG.touch(mode=0o600)
    CONFIG.write_text(yaml.safe_dump(config, sort_keys=False))
    os.execvp("sound-sentry", ["sound-sentry", "serve", "--config", str(CONFIG)])  # noqa: S606, S607 - the image's PATH


if __name__ == "__main__":
    main()
