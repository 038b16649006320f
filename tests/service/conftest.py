"""Helpers for the MQTT service's tests: a real subscriber, the service's YAML, a smoke alarm recording."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
import json
from pathlib import Path
import threading
import time
from typing import Any

import numpy as np
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
import pytest

from custom_components.sound_sentry.engine.service.config import ServiceConfig, load_config
from custom_components.sound_sentry.engine.service.service import SoundSentryService
from tests.audio import RATE_HZ, T3_PIEZO, alarm_signal, write_wav
from tests.peers import Mosquitto

WAIT_S = 30.0


@dataclass(frozen=True)
class Message:
    topic: str
    payload: str
    retain: bool

    def json(self) -> Any:
        return json.loads(self.payload)


class Subscriber:
    """A real MQTT client that records every message on `topics`, at QoS 1.

    With `session`, a persistent session (clean_session False): the broker keeps the subscription and
    queues messages for it while this client is away, across a broker restart too.
    """

    def __init__(
        self,
        broker: Mosquitto,
        topics: str = "#",
        *,
        session: str | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.messages: list[Message] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=session or "",
            clean_session=session is None,
            protocol=paho.MQTTv311,
        )
        if login is not None:
            self.client.username_pw_set(*login)
        self.client.on_connect = lambda client, *_: client.subscribe(topics, qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()
        assert self._subscribed.wait(WAIT_S)

    def _on_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Message(message.topic, message.payload.decode(), bool(message.retain)))
            self._changed.notify_all()

    def wait_for(self, predicate: Callable[[Message], bool], what: str, timeout: float = WAIT_S) -> Message:
        """The first message (so far or to come) for which `predicate` holds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                left = deadline - time.monotonic()
                if left <= 0:
                    topics = sorted({m.topic for m in self.messages})
                    pytest.fail(f"no message {what} within {timeout} s; topics seen: {topics}")
                self._changed.wait(left)

    def last(self, topic: str) -> str | None:
        """The last payload on `topic`."""
        with self._changed:
            for message in reversed(self.messages):
                if message.topic == topic:
                    return message.payload
        return None

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscribe() -> Iterator[Callable[..., Subscriber]]:
    """Start subscribers; all disconnected at teardown."""
    subscribers: list[Subscriber] = []

    def start(broker: Mosquitto, topics: str = "#", **kwargs: Any) -> Subscriber:
        subscriber = Subscriber(broker, topics, **kwargs)
        subscribers.append(subscriber)
        return subscriber

    yield start
    for subscriber in subscribers:
        subscriber.stop()


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_S) -> None:
    """Poll `condition` until it holds; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} within {timeout} s")
        time.sleep(0.05)


def write_config(path: Path, text: str) -> ServiceConfig:
    """Write the service's YAML and load it, as `sound-sentry serve --config` does."""
    path.write_text(text)
    return load_config(path)


@pytest.fixture
def run_service() -> Iterator[Callable[[ServiceConfig], SoundSentryService]]:
    """Start services in this process; all stopped at teardown."""
    services: list[SoundSentryService] = []

    def start(config: ServiceConfig) -> SoundSentryService:
        service = SoundSentryService(config)
        services.append(service)
        service.start()
        return service

    yield start
    for service in services:
        service.stop()


@dataclass(frozen=True)
class Served:
    """A service started by `serve`: its configuration, and a subscriber to everything on its broker."""

    config: ServiceConfig
    subscriber: Subscriber
    service: SoundSentryService

    def discovery(self) -> dict[str, Any]:
        """The discovery configs received so far, by topic."""
        return {m.topic: m.json() for m in self.subscriber.messages if m.topic.startswith("homeassistant/")}


@pytest.fixture
def serve(
    subscribe: Callable[..., Subscriber],
    run_service: Callable[[ServiceConfig], SoundSentryService],
    tmp_path: Path,
) -> Callable[..., Served]:
    """Write the service's YAML for a broker on this machine, subscribe to everything, start the service.

    `sources` is the YAML below `sources:`, `mqtt` more lines of `mqtt:` (indented by two); `login` the
    subscriber's. Stopped at teardown (`run_service`, `subscribe`).
    """

    def start(
        broker: Mosquitto, sources: str, *, mqtt: str = "", login: tuple[str, str] | None = None
    ) -> Served:
        config = write_config(
            tmp_path / "sound-sentry.yaml",
            f"mqtt:\n  host: 127.0.0.1\n  port: {broker.port}\n{mqtt}sources:\n{sources}",
        )
        subscriber = subscribe(broker, login=login)
        return Served(config, subscriber, run_service(config))

    return start


def smoke_alarm_wav(path: Path, *, lead_s: float = 1.0, cycles: int = 2, tail_s: float = 10.0) -> Path:
    """Quiet noise, two cycles of a T3 smoke alarm (3.1 kHz), then enough quiet for it to end."""
    rng = np.random.default_rng(1)
    alarm = alarm_signal(T3_PIEZO, cycles)
    quiet = lambda s: (rng.standard_normal(round(s * RATE_HZ)) * 0.003).astype(np.float32)  # noqa: E731
    return write_wav(
        path, np.concatenate([quiet(lead_s), alarm + quiet(alarm.size / RATE_HZ), quiet(tail_s)])
    )
