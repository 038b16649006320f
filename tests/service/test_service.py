"""The MQTT service (`sound-sentry serve`) against a real Mosquitto broker, with real audio over a real
RTSP server, without Home Assistant (tests/integration/test_mqtt.py has Home Assistant's side)."""

from __future__ import annotations

from collections.abc import Callable
import json
import logging
from pathlib import Path
import subprocess
import sys

import pytest

from custom_components.sound_sentry.engine.service.config import ConfigError, load_config
from custom_components.sound_sentry.engine.service.service import ServiceError, SoundSentryService
from tests.peers import Mosquitto, RtspServer, free_tcp_port

from .conftest import Message, Served, Subscriber, smoke_alarm_wav, wait_until, write_config

RTSP_PASSWORD = "s3cret-rtsp"
MQTT_PASSWORD = "s3cret-mqtt"
LOGIN = ("sentry", MQTT_PASSWORD)

pytestmark = pytest.mark.usefixtures("socket_enabled")


def is_event(label: str) -> Callable[[Message], bool]:
    return lambda m: m.topic.endswith("/event") and m.json()["event_type"] == label


def test_discovery_states_an_alarm_event_and_a_source_that_is_down(
    *,
    mosquitto: Callable[..., Mosquitto],
    rtsp_server: Callable[..., RtspServer],
    subscribe: Callable[..., Subscriber],
    serve: Callable[..., Served],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = mosquitto(users=dict([LOGIN]))
    (tmp_path / "mqtt_password").write_text(MQTT_PASSWORD + "\n")
    alarm = smoke_alarm_wav(tmp_path / "alarm.wav")
    server = rtsp_server(source="file", file=alarm, user="cam", password=RTSP_PASSWORD)
    served = serve(
        broker,
        f"""\
  - name: Nursery camera
    url: {server.url()}
    username: cam
    password: {RTSP_PASSWORD}
  - name: Garage
    url: rtsp://127.0.0.1:{free_tcp_port()}/stream
""",
        mqtt=f"  username: sentry\n  password_file: {tmp_path / 'mqtt_password'}\n",
        login=LOGIN,
    )
    subscriber = served.subscriber

    smoke = "sound_sentry/nursery_camera/smoke_alarm"
    subscriber.wait_for(is_event("smoke_alarm"), "for the smoke alarm")
    subscriber.wait_for(lambda m: m.topic == smoke and m.payload == "ON", "turning the smoke alarm on")
    wait_until(lambda: subscriber.last(smoke) == "OFF", "the smoke alarm off again")
    assert subscriber.last("sound_sentry/status") == "online"
    assert subscriber.last("sound_sentry/nursery_camera/status") == "online"
    assert subscriber.last("sound_sentry/nursery_camera/listening") == "ON"
    # The source that is down: only its own entities are unavailable.
    wait_until(lambda: subscriber.last("sound_sentry/garage/status") == "offline", "the garage offline")
    assert subscriber.last("sound_sentry/garage/listening") == "OFF"
    level = subscriber.wait_for(lambda m: m.topic == "sound_sentry/nursery_camera/level", "a level").json()
    assert set(level["probabilities"]) >= {"babycry", "glassbreak", "gunshot"}

    # Discovery: one device per source with every entity the integration has, retained.
    configs = served.discovery()
    nursery = {t.split("/")[3]: c for t, c in configs.items() if "/nursery_camera_" in t}
    assert set(nursery) == {
        f"nursery_camera_{key}"
        for key in (
            *("babycry", "glassbreak", "gunshot", "smoke_alarm", "co_alarm", "sound", "sound_level"),
            *("babycry_probability", "glassbreak_probability", "gunshot_probability", "listening"),
        )
    }
    assert nursery["nursery_camera_smoke_alarm"]["device_class"] == "smoke"
    assert nursery["nursery_camera_co_alarm"]["device_class"] == "carbon_monoxide"
    assert nursery["nursery_camera_sound"]["event_types"] == [
        *("babycry", "glassbreak", "gunshot", "smoke_alarm", "co_alarm")
    ]
    assert nursery["nursery_camera_gunshot_probability"]["enabled_by_default"] is False
    assert nursery["nursery_camera_listening"]["entity_category"] == "diagnostic"
    assert len({json.dumps(c["device"]) for c in nursery.values()}) == 1
    assert any("/garage_" in t for t in configs)
    late = subscribe(broker, "homeassistant/#", login=LOGIN)
    late.wait_for(
        lambda m: m.retain and m.topic.endswith("/nursery_camera_gunshot/config"), "a retained config"
    )

    # No credential in any message or log line.
    everything = "\n".join(m.payload for m in subscriber.messages) + caplog.text
    assert RTSP_PASSWORD not in everything
    assert MQTT_PASSWORD not in everything


def test_a_broker_restart_in_the_middle_of_a_stream_loses_no_event(
    mosquitto: Callable[..., Mosquitto],
    rtsp_server: Callable[..., RtspServer],
    subscribe: Callable[..., Subscriber],
    tmp_path: Path,
) -> None:
    broker = mosquitto()
    camera = rtsp_server(source="silence")
    # A persistent session: the broker keeps (and persists) what is published for it while it is away.
    subscriber = subscribe(broker, "sound_sentry/#", session="restart-test")
    config = write_config(
        tmp_path / "sound-sentry.yaml",
        f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nsources: [{{name: Hall, url: '{camera.url()}'}}]\n",
    )
    published: list[tuple[str, str]] = []
    service = SoundSentryService(config, on_publish=lambda topic, payload: published.append((topic, payload)))
    service.start()
    try:
        subscriber.wait_for(
            lambda m: m.topic == "sound_sentry/hall/listening" and m.payload == "ON", "listening"
        )
        broker.stop()
        # With the broker down, the camera (its stream, on the same port) now hears a smoke alarm...
        camera.stop()
        rtsp_server(source="file", file=smoke_alarm_wav(tmp_path / "alarm.wav"), port=camera.port)
        # ... and the service publishes it into its queue, with no broker to take it.
        wait_until(lambda: "sound_sentry/hall/event" in {t for t, _ in published}, "the event published")
        assert not service.mqtt.connected.is_set()
        broker.start()
        subscriber.wait_for(is_event("smoke_alarm"), "for the smoke alarm heard while the broker was down")
    finally:
        service.stop()


def test_a_wrong_broker_password_is_a_clear_error_and_backs_off(
    mosquitto: Callable[..., Mosquitto], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    broker = mosquitto(users=dict([LOGIN]))
    wav = smoke_alarm_wav(tmp_path / "alarm.wav")
    config = write_config(
        tmp_path / "sound-sentry.yaml",
        f"""
mqtt: {{host: 127.0.0.1, port: {broker.port}, username: sentry, password: not-{MQTT_PASSWORD}}}
sources: [{{name: Demo, url: '{wav}'}}]
""",
    )
    service = SoundSentryService(config)
    service.start()
    try:
        wait_until(lambda: service.mqtt.attempts >= 3, "three attempts")
    finally:
        service.stop()
    assert service.mqtt.refused == "Not authorized"
    refusals = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
    assert "check mqtt username and password (or password_file)" in refusals[0]
    # Each attempt waits twice as long as the one before.
    assert [line.rsplit("up to ", 1)[1] for line in refusals[:3]] == ["1 s", "2 s", "4 s"]
    assert f"not-{MQTT_PASSWORD}" not in caplog.text


def test_removing_a_source_from_the_yaml_removes_its_entities(
    mosquitto: Callable[..., Mosquitto],
    subscribe: Callable[..., Subscriber],
    run_service: Callable[..., SoundSentryService],
    tmp_path: Path,
) -> None:
    broker = mosquitto()
    wav = smoke_alarm_wav(tmp_path / "alarm.wav")
    sources = f"  - {{name: Kitchen, url: '{wav}'}}\n  - {{name: Porch, url: '{wav}', alarms: false}}\n"
    yaml_path = tmp_path / "sound-sentry.yaml"
    header = f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\nsources:\n"
    first = SoundSentryService(write_config(yaml_path, header + sources))
    first.start()
    subscriber = subscribe(broker, "homeassistant/#")
    subscriber.wait_for(lambda m: m.topic.endswith("/porch_sound/config"), "the porch's event entity")
    first.stop()

    run_service(write_config(yaml_path, header + sources.splitlines(keepends=True)[0]))
    for key in ("sound", "gunshot", "listening", "sound_level"):
        topic = f"homeassistant/{'event' if key == 'sound' else 'binary_sensor' if key in ('gunshot', 'listening') else 'sensor'}/sound_sentry/porch_{key}/config"
        subscriber.wait_for(lambda m, t=topic: m.topic == t and m.payload == "", f"{topic} emptied")
    assert subscriber.last("homeassistant/event/sound_sentry/kitchen_sound/config")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            "mqtt:\n  host: broker\nsources:\n  - name: A\n    url: rtsp://cam/1\n    thresholds: {gunshot: 2}\n",
            6,
            "threshold of gunshot",
        ),
        (
            "mqtt:\n  host: broker\n  prot: 1883\nsources: [{name: A, url: 'rtsp://cam/1'}]\n",
            3,
            "unknown key 'prot'",
        ),
        ("mqtt:\n  host: broker\nsources:\n  - name: A\n    url: rtsp://me:pw@cam/1\n", 5, "not in the URL"),
        ("mqtt:\n  host: broker\nsources:\n  - name: A\n  url: rtsp://cam/1\n", 5, "not valid YAML"),
        (
            "mqtt: {host: broker}\nsources:\n  - {name: A, url: 'rtsp://cam/1'}\n  - {name: a, url: 'rtsp://cam/2'}\n",
            4,
            "same id",
        ),
        ("mqtt: {host: broker\nsources: []\n", 2, "not valid YAML"),
        (
            "mqtt: {host: broker, password: a, password_file: /x}\nsources: [{name: A, url: 'rtsp://cam'}]\n",
            1,
            "not both",
        ),
        ("mqtt: {port: 1883}\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "needs a host"),
        ("mqtt: broker\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "must be a mapping"),
        ("mqtt: {host: broker, port: 70000}\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "port must be"),
        ("mqtt: {host: broker, tls: maybe}\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "true or false"),
        ("mqtt: {host: [a, b]}\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "a single value"),
        ("mqtt: {host: ''}\nsources: [{name: A, url: 'rtsp://cam'}]\n", 1, "non-empty text"),
        (
            "mqtt: {host: broker, topic_prefix: 'home/#'}\nsources: [{name: A, url: 'rtsp://cam'}]\n",
            1,
            "without #",
        ),
        (
            "mqtt: {host: broker, password_file: /nonexistent/pw}\nsources: [{name: A, url: 'rtsp://cam'}]\n",
            1,
            "cannot read password_file",
        ),
        ("mqtt: {host: broker}\n", 1, "needs sources"),
        ("mqtt: {host: broker}\nsources: {name: A}\n", 2, "a list of sources"),
        ("mqtt: {host: broker}\nsources:\n  - {url: 'rtsp://cam'}\n", 3, "needs a name"),
        ("mqtt: {host: broker}\nsources:\n  - {name: A, url: 'ftp://cam'}\n", 3, "ftp:// is not a source"),
        ("mqtt: {host: broker}\nsources:\n  - {name: A, url: /no/such.wav}\n", 3, "no such file"),
        (
            "mqtt: {host: broker}\nsources:\n  - {name: A, url: 'udp://0.0.0.0:6055?bits=16'}\n",
            3,
            "takes rate, width and channels",
        ),
        (
            "mqtt: {host: broker}\nsources:\n  - {name: A, url: 'rtsp://cam', transport: http}\n",
            3,
            "tcp or udp",
        ),
        ("mqtt: {host: broker}\nsources:\n  - {name: '!!', url: 'rtsp://cam'}\n", 3, "at least one letter"),
        (
            "mqtt: {host: broker}\nsources:\n  - {name: A, url: 'rtsp://cam', thresholds: 0.5}\n",
            3,
            "thresholds must be a mapping",
        ),
    ],
)
def test_a_bad_yaml_file_gives_an_error_naming_the_line(
    tmp_path: Path, text: str, line: int, message: str
) -> None:
    path = tmp_path / "sound-sentry.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}:{line}: .*{message}"):
        load_config(path)


@pytest.mark.parametrize("threshold", ["0.5", "off"])
def test_a_sound_the_model_does_not_have_is_a_clear_error(tmp_path: Path, threshold: str) -> None:
    """Checked against the model when the service starts (the file alone cannot know its sounds)."""
    config = write_config(
        tmp_path / "sound-sentry.yaml",
        f"mqtt: {{host: 127.0.0.1}}\nsources:\n  - {{name: A, url: 'rtsp://cam/1', thresholds: {{doorbell: {threshold}}}}}\n",
    )
    with pytest.raises(
        ServiceError, match=r"^source 'A': thresholds: 'doorbell' is not a sound of model .*; it has babycry"
    ):
        SoundSentryService(config).start()


def test_an_empty_or_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "sound-sentry.yaml"
    with pytest.raises(ConfigError, match=r"^cannot read .*sound-sentry\.yaml: No such file"):
        load_config(path)
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="the file is empty; it needs mqtt: and sources:"):
        load_config(path)


def test_a_full_file_reads_as_written(tmp_path: Path) -> None:
    secret = tmp_path / "mqtt-password"
    secret.write_text("from-a-file\nignored second line\n")
    clip = tmp_path / "demo.wav"
    clip.write_bytes(b"RIFF")
    path = tmp_path / "sound-sentry.yaml"
    path.write_text(
        f"mqtt:\n  host: broker.lan\n  tls: true\n  username: sentry\n  password_file: {secret}\n"
        "  discovery_prefix: ha\n  topic_prefix: sentry/attic\n"
        "sources:\n"
        "  - name: Nursery Cam\n    url: rtsps://cam.lan/live\n    username: viewer\n    password: pw\n"
        "    transport: udp\n    model: compact\n    thresholds: {babycry: 0.8, gunshot: off}\n"
        f"    alarms: false\n    clips_dir: {tmp_path}/clips\n"
        "  - name: Garage mic\n    url: 'udp://0.0.0.0:6055?rate=8000&width=4&channels=2'\n"
        f"  - name: Demo\n    url: {clip}\n"
    )
    config = load_config(path)
    assert config.mqtt.host == "broker.lan"
    assert config.mqtt.port == 8883  # TLS's port unless one is given
    assert (config.mqtt.username, config.mqtt.password) == ("sentry", "from-a-file")
    assert (config.mqtt.discovery_prefix, config.mqtt.topic_prefix) == ("ha", "sentry/attic")
    nursery, garage, demo = config.sources
    assert nursery.object_id == "nursery_cam"
    assert (nursery.username, nursery.password, nursery.transport) == ("viewer", "pw", "udp")
    assert nursery.model == "compact"
    assert nursery.thresholds == {"babycry": 0.8, "gunshot": None}
    assert nursery.alarms is False
    assert nursery.clips_dir == tmp_path / "clips"
    assert "pw" not in repr(nursery)
    assert "from-a-file" not in repr(config.mqtt)
    assert garage.pcm is not None
    assert (garage.pcm.sample_rate_hz, garage.pcm.sample_width, garage.pcm.channels) == (8000, 4, 2)
    assert demo.url == str(clip)
    assert demo.model == "accurate"


def test_serve_on_the_command_line_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "sound-sentry.yaml"
    path.write_text("mqtt:\n  host: broker\nsources:\n  - name: A\n    url: ftp://cam/1\n")
    result = subprocess.run(
        [sys.executable, "-m", "custom_components.sound_sentry.engine", "serve", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert (
        result.stderr
        == f"error: {path}:5: url: ftp:// is not a source; use rtsp, rtsps, http, https, udp or a file\n"
    )
