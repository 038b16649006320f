"""The example ESPHome microphone (esphome/) validates with `esphome config` and streams the audio format
that Sound Sentry's UDP source expects by default.

ESPHome lives in its own venv (`scripts/setup esphome`): found through SOUND_SENTRY_ESPHOME or the cache
path. Missing, the tests fail, except in the latest environment, which may run in the forky rootfs
without the host's venv: they skip there, and the minimum environment runs them on the host.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from custom_components.sound_sentry.config_flow import _udp_schema
from custom_components.sound_sentry.const import CONF_CHANNELS, CONF_SAMPLE_BITS, CONF_SAMPLE_RATE

REPO = Path(__file__).resolve().parents[1]
DEVICE_YAML = REPO / "esphome" / "sound-sentry-mic.yaml"
SECRETS_EXAMPLE = REPO / "esphome" / "secrets.yaml.example"
# Where scripts/setup puts it (scripts/lib.sh: CACHE).
CACHE = Path(
    os.environ.get("SOUND_SENTRY_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sound-sentry"
)
ESPHOME = Path(os.environ.get("SOUND_SENTRY_ESPHOME") or CACHE / "venv-esphome" / "bin" / "esphome")


class _TaggedLoader(yaml.SafeLoader):
    """Reads `esphome config` output: tagged values (!secret, !lambda) as their plain text."""


_TaggedLoader.add_multi_constructor("!", lambda loader, _tag, node: loader.construct_scalar(node))


def _secrets_used() -> set[str]:
    return set(re.findall(r"!secret\s+(\w+)", DEVICE_YAML.read_text()))


def _esphome_config(directory: Path) -> subprocess.CompletedProcess[str]:
    """Run `esphome config` on the device YAML in `directory` (it writes its .esphome/ there)."""
    if not os.access(ESPHOME, os.X_OK):
        message = f"esphome not found at {ESPHOME}: run `scripts/setup esphome` or set SOUND_SENTRY_ESPHOME"
        if os.environ.get("SOUND_SENTRY_ENV") == "latest":
            # ESPHome's venv is on the host; the latest environment may run in the forky rootfs without it.
            pytest.skip(f"{message} (the minimum environment runs it on the host)")
        pytest.fail(message)
    return subprocess.run(
        [str(ESPHOME), "config", "sound-sentry-mic.yaml"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


@pytest.fixture
def device_dir(tmp_path: Path) -> Path:
    """The device YAML beside a secrets.yaml made from the example, with a real random API key."""
    shutil.copy(DEVICE_YAML, tmp_path)
    secrets = yaml.safe_load(SECRETS_EXAMPLE.read_text())
    secrets["api_encryption_key"] = base64.b64encode(os.urandom(32)).decode()
    (tmp_path / "secrets.yaml").write_text(yaml.safe_dump(secrets))
    return tmp_path


def test_secrets_example_names_every_secret() -> None:
    """A user who copies the example gets every secret the device YAML asks for, and no stale one."""
    assert set(yaml.safe_load(SECRETS_EXAMPLE.read_text())) == _secrets_used()


def test_device_yaml_streams_the_udp_source_default_format(device_dir: Path) -> None:
    """Valid for ESPHome, and the microphone's datagrams match the UDP config flow's defaults."""
    result = _esphome_config(device_dir)
    assert result.returncode == 0, result.stderr
    config: dict[str, Any] = yaml.load(result.stdout, Loader=_TaggedLoader)

    flow_defaults = {str(key): key.default() for key in _udp_schema({}, with_name=False).schema}
    (mic,) = config["microphone"]
    assert mic["sample_rate"] == int(flow_defaults[CONF_SAMPLE_RATE])
    assert mic["bits_per_sample"] == int(flow_defaults[CONF_SAMPLE_BITS])
    assert mic["num_channels"] == int(flow_defaults[CONF_CHANNELS])

    # Every chunk the microphone reads goes, as it is, to the UDP component on Sound Sentry's port.
    ((write,),) = [automation["then"] for automation in mic["on_data"]]
    (udp,) = config["udp"]
    assert write["udp.write"]["id"] == udp["id"]
    assert write["udp.write"]["data"].strip() == "return x;"
    assert udp["port"] == flow_defaults["port"]
    # ...from boot on.
    boot_actions = [action for automation in config["esphome"]["on_boot"] for action in automation["then"]]
    assert {"microphone.capture": {"id": mic["id"]}} in boot_actions


def test_esphome_config_rejects_a_broken_device(device_dir: Path) -> None:
    """The check above means something: a pin the ESP32 does not have fails validation."""
    path = device_dir / DEVICE_YAML.name
    path.write_text(path.read_text().replace("i2s_din_pin: GPIO33", "i2s_din_pin: GPIO99"))
    result = _esphome_config(device_dir)
    assert result.returncode != 0
    assert "i2s_din_pin" in result.stdout + result.stderr
