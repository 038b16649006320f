"""The add-on's options become a service configuration that `sound-sentry serve` accepts."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import yaml

from custom_components.sound_sentry.engine.service.config import load_config

RUN = Path(__file__).resolve().parents[2] / "addon" / "sound_sentry" / "run.py"


def test_the_add_on_options_and_the_supervisor_broker_make_a_valid_service_config(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("addon_run", RUN)
    assert spec is not None
    assert spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    options = {
        "sources": [
            {
                "name": "Living room",
                "url": "rtsp://192.168.1.20/stream1",
                "username": "u",
                "password": "p",
                "gunshot_threshold": 0.9,
                "clips": True,
            },
            {"name": "Nursery mic", "url": "udp://192.168.1.50:6056?rate=16000", "alarms": False},
        ],
        "topic_prefix": "sound_sentry_pi",
    }
    broker = {"host": "core-mosquitto", "port": 1883, "username": "addons", "password": "x", "tls": False}
    path = tmp_path / "sound-sentry.yaml"
    path.write_text(yaml.safe_dump(run.service_config(options, broker)))
    config = load_config(path)
    assert config.mqtt.host == "core-mosquitto"
    assert config.mqtt.topic_prefix == "sound_sentry_pi"
    living_room, nursery = config.sources
    assert living_room.thresholds == {"gunshot": 0.9}
    assert living_room.clips_dir == run.CLIPS
    assert living_room.password == "p"
    assert nursery.alarms is False
    assert nursery.clips_dir is None
