"""The service's wiring: a `Listener` per source (as in Home Assistant), its events and states to MQTT.

Home Assistant's MQTT discovery makes each source a device with the entities the integration has: a
binary sensor per sound and per alarm, an event entity, the sound level, the probabilities (disabled by
default) and a "Listening" diagnostic. Topics, for `topic_prefix` `sound_sentry` and a source
`living_room`:

    sound_sentry/status                  online / offline (the last will): the service
    sound_sentry/living_room/status      online / offline: the source's audio (its entities' availability)
    sound_sentry/living_room/listening   ON / OFF (retained)
    sound_sentry/living_room/<sound>     ON / OFF per sound and alarm (retained)
    sound_sentry/living_room/event       {"event_type": "gunshot", "confidence": 0.97, "clip": ..., "time": ...}
    sound_sentry/living_room/level       {"dbfs": -41.2, "probabilities": {...}}: peaks of each 2 s
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
import json
import logging
from pathlib import Path
import re
import threading
import time
from typing import Any, Literal

from ..alarm import AlarmSettings
from ..clips import Clip, write_clip
from ..detection_settings import DetectionOverrides, resolve_detector_settings
from ..detector import DetectorSettings
from ..events import AlarmEvent, DetectionEvent, event_data
from ..listener import Listener
from ..model import LoadedModel, load_model, model_path
from ..model_info import ModelLoadError
from ..pipeline import PipelineOutput, WindowResult
from ..redact import redact_credentials
from ..sources import AudioSource, PacedSource, SourceError, source_for_url, url_with_credentials
from ..sources.av_sources import url_scheme
from .config import ServiceConfig, SourceSettings
from .mqtt import OFFLINE, ONLINE, MqttPublisher

_LOGGER = logging.getLogger(__name__)

STATE_INTERVAL_S = 2.0
"""The level and probabilities are published as the peaks of each interval this long."""
STOP_TIMEOUT_S = 15.0
TRANSLATIONS = Path(__file__).resolve().parents[2] / "translations" / "en.json"
"""The integration's entity names, so that both front ends name entities alike."""
ALARM_DEVICE_CLASSES = {"smoke_alarm": "smoke", "co_alarm": "carbon_monoxide"}
try:
    from importlib.metadata import PackageNotFoundError, version

    VERSION = version("sound-sentry")
except PackageNotFoundError:
    VERSION = "dev"


def source_factory(settings: SourceSettings) -> Callable[[], AudioSource]:
    """A fresh source for each (re)connect: the URL with its credentials; a local file at real-time pace.

    Raises ValueError (without credentials in its message) when the URL cannot work.
    """
    url = url_with_credentials(settings.url, settings.username, settings.password)
    local = not url_scheme(url)
    transport: Literal["tcp", "udp"] = "udp" if settings.transport == "udp" else "tcp"

    def factory() -> AudioSource:
        source = source_for_url(url, transport=transport, pcm=settings.pcm)
        return PacedSource(source) if local else source

    try:
        factory()  # the constructors check their arguments (e.g. the sender address); nothing opens yet
    except ValueError as err:
        raise ValueError(f"{redact_credentials(settings.url)}: {err}") from None
    return factory


class ServiceError(Exception):
    """The service cannot start (a model, a source's settings); the message says which and why."""


def entity_names() -> dict[str, dict[str, str]]:
    """Entity names by platform and key, from the integration's English translations."""
    try:
        raw = json.loads(TRANSLATIONS.read_text(encoding="utf-8"))["entity"]
    except (OSError, ValueError, KeyError):
        return {}
    return {platform: {key: value["name"] for key, value in keys.items()} for platform, keys in raw.items()}


def event_payload(event: DetectionEvent) -> dict[str, Any]:
    """The event topic's message: the type, what the integration's event entity shows, and when.

    What the event entity shows is `event_data`'s (the clip: its file).
    """
    return {
        "event_type": event.label,
        **event_data(event, event.clip_key),
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


@dataclass
class _SourceState:
    """One source's state as published; touched from its source thread and (to republish) paho's."""

    settings: SourceSettings
    model: LoadedModel
    detector: DetectorSettings
    alarms: AlarmSettings | None
    connected: bool = False
    active: dict[str, bool] = field(default_factory=dict)
    pending: list[WindowResult] = field(default_factory=list)
    last_level: float = 0.0
    listener: Listener | None = None

    @property
    def labels(self) -> list[str]:
        """Every sound with a binary sensor and an event type: the model's enabled ones, then alarms."""
        return [*self.detector.thresholds, *(self.alarms.labels if self.alarms else ())]


class SoundSentryService:
    """Listen to every source of `config` and publish to MQTT until `stop()`.

    `start()` loads the models, checks every source (raising ServiceError for one that cannot work),
    connects to the broker in the background and starts a source thread per source. Each source
    reconnects on its own; when its audio is lost only its entities become unavailable.
    """

    def __init__(
        self, config: ServiceConfig, *, on_publish: Callable[[str, str], None] | None = None
    ) -> None:
        self.config = config
        self.prefix = config.mqtt.topic_prefix
        self.discovery_prefix = config.mqtt.discovery_prefix
        self.node_id = re.sub(r"[^A-Za-z0-9_-]", "_", self.prefix)
        """The discovery topics' node id: this service's entities, and only these, are under it."""
        self._lock = threading.Lock()
        self._sources: list[_SourceState] = []
        self._discovery: dict[str, str] = {}
        self._on_publish = on_publish
        self._names = entity_names()
        self.mqtt = MqttPublisher(
            config.mqtt,
            client_id=f"sound_sentry_{self.node_id}",
            on_connected=self._republish,
            on_message=self._on_message,
        )

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load models, build every source's listener, connect to the broker, start listening."""
        models: dict[str, LoadedModel] = {}
        for settings in self.config.sources:
            if settings.model not in models:
                try:
                    models[settings.model] = load_model(model_path(settings.model))
                except (ModelLoadError, ValueError) as err:
                    raise ServiceError(f"source {settings.name!r}: {err}") from None
            self._sources.append(self._source_state(settings, models[settings.model]))
        for state in self._sources:
            self._discovery |= self._discovery_configs(state)
        self.mqtt.start()
        for state in self._sources:
            assert state.listener is not None
            state.listener.start()
            _LOGGER.info("Listening to %s (%s)", state.settings.name, redact_credentials(state.settings.url))

    @property
    def listeners(self) -> dict[str, Listener]:
        """Each source's listener (built by `start()`) by the source's object id, as in its topics.

        E.g. to watch one with `Listener.add_observer`.
        """
        return {
            state.settings.object_id: state.listener for state in self._sources if state.listener is not None
        }

    def stop(self) -> None:
        """Stop every source thread, then say `offline` and disconnect."""
        for state in self._sources:
            if state.listener is not None:
                state.listener.stop(STOP_TIMEOUT_S)
        self.mqtt.stop()

    def _source_state(self, settings: SourceSettings, model: LoadedModel) -> _SourceState:
        info = model.info
        overrides = DetectionOverrides(
            thresholds={label: t for label, t in settings.thresholds.items() if t is not None},
            off=frozenset(label for label, t in settings.thresholds.items() if t is None),
        )
        try:
            detector = resolve_detector_settings(info, overrides)
        except ValueError as err:
            raise ServiceError(f"source {settings.name!r}: thresholds: {err}") from None
        state = _SourceState(
            settings=settings,
            model=model,
            detector=detector,
            alarms=AlarmSettings(sample_rate_hz=info.sample_rate_hz) if settings.alarms else None,
        )
        state.active = dict.fromkeys(state.labels, False)
        try:
            factory = source_factory(settings)
        except ValueError as err:
            raise ServiceError(f"source {settings.name!r}: {err}") from None
        clips = None
        if settings.clips_dir is not None:
            folder = settings.clips_dir / settings.object_id

            def key_for(event: DetectionEvent) -> str:
                confidence = 100 if isinstance(event, AlarmEvent) else round(100 * event.peak_probability)
                stem = f"{datetime.now().strftime('%Y-%m-%d_%H-%M-%S')}_{event.label}_{confidence}"
                path, n = folder / f"{stem}.wav", 1
                while path.exists():
                    n += 1
                    path = folder / f"{stem}_{n}.wav"
                return str(path)

            def on_clip(clip: Clip) -> None:
                try:
                    write_clip(clip, Path(clip.key))
                except OSError as err:
                    _LOGGER.warning(
                        "%s: cannot write the clip %s (%s)", settings.name, clip.key, err.strerror or err
                    )

            clips = (key_for, on_clip)
        state.listener = Listener.for_model(
            settings.object_id,
            factory,
            model,
            detector=state.detector,
            alarms=state.alarms,
            on_output=lambda output: self._on_output(state, output),
            on_status=lambda connected, error: self._on_status(state, connected, error),
            clips=clips,
        )
        return state

    # -- topics and discovery -------------------------------------------------------------------------

    def topic(self, state: _SourceState, leaf: str) -> str:
        """A source's topic: `<topic_prefix>/<source>/<leaf>`."""
        return f"{self.prefix}/{state.settings.object_id}/{leaf}"

    def _discovery_configs(self, state: _SourceState) -> dict[str, str]:
        """Discovery topic -> retained config, for every entity of one source."""
        settings, info = state.settings, state.model.info
        source_id = f"{self.node_id}_{settings.object_id}"
        device = {
            "identifiers": [source_id],
            "name": settings.name,
            "manufacturer": "Sound Sentry",
            "model": f"{info.name} {info.version}",
            "sw_version": VERSION,
        }
        origin = {"name": "Sound Sentry", "sw_version": VERSION}
        service = {"topic": self.mqtt.availability_topic}
        availability = [service, {"topic": self.topic(state, "status")}]
        names = self._names
        configs: dict[str, dict[str, Any]] = {}

        def add(component: str, key: str, config: dict[str, Any]) -> None:
            unique_id = f"{source_id}_{key}"
            configs[
                f"{self.discovery_prefix}/{component}/{self.node_id}/{settings.object_id}_{key}/config"
            ] = {
                "unique_id": unique_id,
                "device": device,
                "origin": origin,
                "availability": availability,
                "availability_mode": "all",
                "qos": 1,
                **config,
            }

        for label in state.labels:
            add(
                "binary_sensor",
                label,
                {
                    "name": names.get("binary_sensor", {}).get(label, label),
                    "state_topic": self.topic(state, label),
                    "device_class": ALARM_DEVICE_CLASSES.get(label, "sound"),
                },
            )
        add(
            "event",
            "sound",
            {
                "name": names.get("event", {}).get("sound", "Sound"),
                "state_topic": self.topic(state, "event"),
                "event_types": state.labels,
            },
        )
        add(
            "sensor",
            "sound_level",
            {
                "name": names.get("sensor", {}).get("sound_level", "Sound level"),
                "state_topic": self.topic(state, "level"),
                "value_template": "{{ value_json.dbfs }}",
                "unit_of_measurement": "dBFS",
                "state_class": "measurement",
                "suggested_display_precision": 0,
            },
        )
        for label in info.labels:
            if label == "background":
                continue
            add(
                "sensor",
                f"{label}_probability",
                {
                    "name": names.get("sensor", {}).get(f"{label}_probability", f"{label} probability"),
                    "state_topic": self.topic(state, "level"),
                    "value_template": f"{{{{ (value_json.probabilities.{label} * 100) | round(1) }}}}",
                    "unit_of_measurement": "%",
                    "state_class": "measurement",
                    "entity_category": "diagnostic",
                    "enabled_by_default": False,
                    "suggested_display_precision": 0,
                },
            )
        add(
            "binary_sensor",
            "listening",
            {
                "name": names.get("binary_sensor", {}).get("listening", "Listening"),
                "state_topic": self.topic(state, "listening"),
                "device_class": "connectivity",
                "entity_category": "diagnostic",
                "availability": [service],  # it says whether the source is up: never unavailable with it
            },
        )
        return {topic: json.dumps(config) for topic, config in configs.items()}

    def _publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        self.mqtt.publish(topic, payload, retain=retain)
        if self._on_publish is not None:
            self._on_publish(topic, payload)

    def _republish(self) -> None:
        """On every connection: discovery, then each source's state (a broker may have lost them)."""
        for topic, config in self._discovery.items():
            self._publish(topic, config, retain=True)
        with self._lock:
            for state in self._sources:
                self._publish_state(state)
        # Configs under our node id that no source has now: a source (or a sound) taken out of the YAML.
        self.mqtt.subscribe(f"{self.discovery_prefix}/+/{self.node_id}/+/config")

    def _on_message(self, topic: str, payload: bytes) -> None:
        if payload and topic not in self._discovery:
            _LOGGER.info("Removing the entity of %s: no longer in the configuration", topic)
            self._publish(topic, "", retain=True)

    def _publish_state(self, state: _SourceState) -> None:
        self._publish(self.topic(state, "listening"), "ON" if state.connected else "OFF", retain=True)
        for label, active in state.active.items():
            self._publish(self.topic(state, label), "ON" if active else "OFF", retain=True)
        self._publish(self.topic(state, "status"), ONLINE if state.connected else OFFLINE, retain=True)

    # -- source threads -------------------------------------------------------------------------------

    def _on_output(self, state: _SourceState, output: PipelineOutput) -> None:
        with self._lock:
            for event in output.events:
                state.active[event.label] = event.active
                self._publish(self.topic(state, event.label), "ON" if event.active else "OFF", retain=True)
                if event.active:
                    _LOGGER.info("%s: %s", state.settings.name, event.label)
                    self._publish(self.topic(state, "event"), json.dumps(event_payload(event)))
            state.pending.extend(output.windows)
            now = time.monotonic()
            if state.pending and now - state.last_level >= STATE_INTERVAL_S:
                level = {
                    "dbfs": round(max(window.dbfs for window in state.pending), 1),
                    "probabilities": {
                        label: round(max(window.probabilities[label] for window in state.pending), 4)
                        for label in state.model.info.labels
                    },
                }
                state.pending.clear()
                state.last_level = now
                self._publish(self.topic(state, "level"), json.dumps(level))

    def _on_status(self, state: _SourceState, connected: bool, error: SourceError | None) -> None:
        with self._lock:
            if connected:
                _LOGGER.info("%s: audio is flowing", state.settings.name)
            elif error is not None:
                _LOGGER.warning("%s: no audio (%s); retrying in the background", state.settings.name, error)
            state.connected = connected
            if not connected:
                state.active = dict.fromkeys(state.active, False)
                state.pending.clear()
            self._publish_state(state)
