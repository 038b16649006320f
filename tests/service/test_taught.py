"""The MQTT service's taught sounds (`taught:` in its YAML), against a real Mosquitto broker and a real
RTSP server playing real audio: learnt at start, discovered and heard like the built-in sounds; a sound
whose examples teach nothing is refused with its reason while the others run."""

from __future__ import annotations

from collections.abc import Callable
import logging
from pathlib import Path

import numpy as np
import pytest

from custom_components.sound_sentry.engine.service.config import ConfigError
from tests.audio import RATE_HZ, write_wav
from tests.peers import Mosquitto, RtspServer
from tests.taught import TaughtPlan, taught_plan

from .conftest import Served, write_config

pytestmark = pytest.mark.usefixtures("socket_enabled")


def test_taught_sounds_from_the_yaml_are_discovered_and_heard(
    *,
    mosquitto: Callable[..., Mosquitto],
    rtsp_server: Callable[..., RtspServer],
    serve: Callable[..., Served],
    data_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    plan: TaughtPlan = taught_plan(data_dir)
    silence = np.zeros(3 * RATE_HZ, np.float32)
    heard = write_wav(tmp_path / "heard.wav", np.concatenate([silence, plan.heard, silence]))
    hum = [write_wav(tmp_path / f"hum{i}.wav", np.zeros(2 * RATE_HZ, np.float32)) for i in range(3)]
    broker = mosquitto()
    server = rtsp_server(codec="l16", source="file", file=heard)
    examples = "\n".join(f"          - {path}" for path in plan.example_paths)
    served = serve(
        broker,
        f"""\
  - name: Bathroom
    url: {server.url()}
    taught:
      - name: Toilet flush
        sensitivity: balanced
        examples:
{examples}
      - name: Hum
        examples: [{", ".join(str(p) for p in hum)}]
""",
    )
    assert [s.object_id for s in served.config.sources[0].taught] == ["toilet_flush", "hum"]
    subscriber = served.subscriber

    subscriber.wait_for(
        lambda m: m.topic == "sound_sentry/bathroom/toilet_flush" and m.payload == "ON", "it on"
    )
    event = subscriber.wait_for(
        lambda m: m.topic == "sound_sentry/bathroom/event" and m.json()["event_type"] == "toilet_flush",
        "its event",
    ).json()
    assert event["confidence"] >= plan.sound.thresholds["balanced"] - 0.0005  # rounded to 3 decimals

    configs = served.discovery()
    sensor = configs["homeassistant/binary_sensor/sound_sentry/bathroom_toilet_flush/config"]
    assert (sensor["name"], sensor["device_class"], sensor["state_topic"]) == (
        "Toilet flush",
        "sound",
        "sound_sentry/bathroom/toilet_flush",
    )
    probability = configs["homeassistant/sensor/sound_sentry/bathroom_toilet_flush_probability/config"]
    assert probability["name"] == "Toilet flush probability"
    assert "toilet_flush" in configs["homeassistant/event/sound_sentry/bathroom_sound/config"]["event_types"]
    # The silent examples were refused, with the reason, and nothing of them was published.
    assert not any("bathroom_hum" in topic for topic in configs)
    assert "Bathroom: cannot teach Hum: Hum: example 1 is silent" in caplog.text


@pytest.mark.parametrize(
    ("taught", "error"),
    [
        ("[{name: Bell}]", "this taught sound needs examples"),
        ("[{name: Bell, examples: [/no/such.wav]}]", "examples: no such file /no/such.wav"),
        (
            "[{name: Bell, examples: [EXAMPLE], sensitivity: loud}]",
            "sensitivity must be strict, balanced, eager",
        ),
        ("[{name: Bell, examples: [EXAMPLE]}, {name: bell, examples: [EXAMPLE]}]", "two taught sounds"),
    ],
)
def test_a_wrong_taught_entry_names_its_line(tmp_path: Path, taught: str, error: str) -> None:
    example = write_wav(tmp_path / "bell.wav", np.zeros(RATE_HZ, np.float32))
    text = f"mqtt: {{host: broker}}\nsources:\n  - name: A\n    url: rtsp://cam/1\n    taught: {taught}\n"
    with pytest.raises(ConfigError, match=error) as caught:
        write_config(tmp_path / "bad.yaml", text.replace("EXAMPLE", str(example)))
    assert str(caught.value).startswith(f"{tmp_path / 'bad.yaml'}:5:")
