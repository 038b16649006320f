"""The service's MQTT connection: QoS 1, a last will, reconnects with backoff, nothing lost while away."""

from __future__ import annotations

from collections.abc import Callable
import contextlib
import logging
import ssl
import threading

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from .config import MqttSettings

_LOGGER = logging.getLogger(__name__)

QOS = 1
RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 60
"""Reconnect delays double from RECONNECT_MIN_S up to this, as paho's own backoff does."""
ONLINE = "online"
OFFLINE = "offline"

_REFUSED_LOGIN = {"Bad user name or password", "Not authorized"}


class MqttPublisher:
    """One paho client in its own network thread.

    Every message is QoS 1. A message published while the broker is away waits in paho's queue and goes
    out, in order, once the connection is back (no limit on the queue). `on_connected` runs on every
    (re)connection, in paho's thread: the service republishes its discovery and states there, so a broker
    that restarted without its retained messages gets them again. The availability topic says `online`
    once connected; the broker says `offline` for us (the last will) when the connection drops.
    """

    def __init__(
        self,
        settings: MqttSettings,
        *,
        client_id: str,
        on_connected: Callable[[], None],
        on_message: Callable[[str, bytes], None],
    ) -> None:
        self.settings = settings
        self.availability_topic = f"{settings.topic_prefix}/status"
        self._on_connected = on_connected
        self._on_message_callback = on_message
        self.connected = threading.Event()
        self.refused: str | None = None
        """Why the broker refused the last connection attempt (None once it accepted one)."""
        self.attempts = 0
        """Connection attempts that the broker answered (accepted or refused)."""
        self._client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        if settings.username:
            self._client.username_pw_set(settings.username, settings.password)
        if settings.tls:
            self._client.tls_set(
                ca_certs=str(settings.ca_file) if settings.ca_file else None, cert_reqs=ssl.CERT_REQUIRED
            )
        self._client.will_set(self.availability_topic, OFFLINE, qos=QOS, retain=True)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.max_queued_messages_set(0)  # no limit: events while the broker is away all wait
        self._client.on_connect = self._handle_connect
        self._client.on_disconnect = self._handle_disconnect
        self._client.on_message = self._handle_message
        self._client.on_connect_fail = self._handle_connect_fail
        self._delay_s = 0.0
        self._lost_logged = False

    @property
    def where(self) -> str:
        """The broker as logs show it (no credentials)."""
        return f"{'mqtts' if self.settings.tls else 'mqtt'}://{self.settings.host}:{self.settings.port}"

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until `stop()`."""
        self._client.connect_async(self.settings.host, self.settings.port, keepalive=30)
        self._client.loop_start()

    def stop(self) -> None:
        """Say `offline`, wait for what is queued to go out (if connected), and disconnect."""
        if self.connected.is_set():
            info = self._client.publish(self.availability_topic, OFFLINE, qos=QOS, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(5.0)
        self.connected.clear()  # our own disconnection: not "lost"
        self._client.disconnect()
        self._client.loop_stop()

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        """Publish at QoS 1; while the broker is away the message waits for it."""
        self._client.publish(topic, payload, qos=QOS, retain=retain)

    def subscribe(self, topic: str) -> None:
        """Subscribe (call from `on_connected`: subscriptions do not outlive a connection)."""
        self._client.subscribe(topic, qos=QOS)

    def _handle_connect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.ConnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        self.attempts += 1
        if reason.is_failure:
            self.refused = str(reason)
            self._delay_s = min(RECONNECT_MAX_S, max(RECONNECT_MIN_S, 2 * self._delay_s))
            hint = (
                "check mqtt username and password (or password_file) in the configuration"
                if self.refused in _REFUSED_LOGIN
                else "check the broker's log"
            )
            _LOGGER.error(
                "MQTT broker %s refused the connection: %s; %s. Trying again in up to %.0f s",
                self.where,
                self.refused,
                hint,
                self._delay_s,
            )
            return
        self.refused = None
        self._delay_s = 0.0
        self._lost_logged = False
        _LOGGER.info("Connected to the MQTT broker %s", self.where)
        client.publish(self.availability_topic, ONLINE, qos=QOS, retain=True)
        self.connected.set()
        self._on_connected()

    def _handle_connect_fail(self, client: paho.Client, userdata: object) -> None:
        if not self._lost_logged:
            self._lost_logged = True
            _LOGGER.warning("Cannot reach the MQTT broker %s; trying again with backoff", self.where)

    def _handle_disconnect(
        self,
        client: paho.Client,
        userdata: object,
        flags: paho.DisconnectFlags,
        reason: ReasonCode,
        properties: Properties | None,
    ) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if was_connected and not self._lost_logged:
            self._lost_logged = True
            _LOGGER.warning(
                "Lost the MQTT broker %s (%s); reconnecting, events are kept until it is back",
                self.where,
                reason,
            )

    def _handle_message(self, client: paho.Client, userdata: object, message: paho.MQTTMessage) -> None:
        try:
            self._on_message_callback(message.topic, message.payload)
        except Exception:  # a bug here must not stop paho's thread
            _LOGGER.exception("Error handling an MQTT message on %s", message.topic)
