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
    sound_sentry/living_room/level       {"dbfs": -41.2, "probabilities": {...}}: each 2 s, the level to
                                         show (a change of 3 dB at once, a smaller one once a minute) and
                                         the peak probabilities

What each source shows comes from its `SourceMonitor`, and its entities from the engine's catalogue
(`entities.py`), as in Home Assistant: this module only turns them into topics and payloads.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
import json
import logging
from pathlib import Path
import re
import threading
from typing import Any, Literal

from ..alarm import AlarmSettings
from ..clips import Clip, write_clip
from ..detection_settings import DetectionOverrides, resolve_detector_settings, with_taught
from ..entities import MANUFACTURER, EntitySpec, Shows, device_model, entity_texts, source_entities
from ..events import AlarmEvent, DetectionEvent, event_data
from ..listener import Listener
from ..model import LoadedModel, load_model, model_path
from ..model_info import ModelLoadError
from ..monitor import AvailabilityUpdate, DetectionUpdate, MonitorUpdate, SourceMonitor, StateUpdate
from ..redact import redact_credentials
from ..sources import AudioSource, PacedSource, SourceError, source_for_url, url_with_credentials
from ..sources.av_sources import url_scheme
from ..taught import TaughtSound, TeachError, learn_from_samples, load_bank, read_example
from .config import ServiceConfig, SourceSettings
from .mqtt import OFFLINE, ONLINE, MqttPublisher

_LOGGER = logging.getLogger(__name__)

STOP_TIMEOUT_S = 15.0
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


def event_payload(event: DetectionEvent) -> dict[str, Any]:
    """The event topic's message: the type, what the integration's event entity shows, and when.

    What the event entity shows is `event_data`'s (the clip: its file).
    """
    return {
        "event_type": event.label,
        **event_data(event, event.clip_key),
        "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }


def clip_files(settings: SourceSettings) -> tuple[Callable[[DetectionEvent], str], Callable[[Clip], None]]:
    """(key_for, on_clip) for a source with `clips_dir`: each event's clip is a WAV file, its key the path."""
    assert settings.clips_dir is not None
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
            _LOGGER.warning("%s: cannot write the clip %s (%s)", settings.name, clip.key, err.strerror or err)

    return key_for, on_clip


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
        self._sources: list[tuple[SourceSettings, SourceMonitor]] = []
        self._discovery: dict[str, str] = {}
        self._on_publish = on_publish
        self._texts = entity_texts()
        self.mqtt = MqttPublisher(
            config.mqtt,
            client_id=f"sound_sentry_{self.node_id}",
            on_connected=self._republish,
            on_message=self._on_message,
        )

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Load models, build every source's monitor, connect to the broker, start listening."""
        models: dict[str, LoadedModel] = {}
        for settings in self.config.sources:
            if settings.model not in models:
                try:
                    models[settings.model] = load_model(model_path(settings.model))
                except (ModelLoadError, ValueError) as err:
                    raise ServiceError(f"source {settings.name!r}: {err}") from None
            self._sources.append((settings, self.monitor(settings, models[settings.model])))
        for settings, monitor in self._sources:
            self._discovery |= {
                topic: json.dumps(config)
                for topic, config in self.discovery_configs(settings, monitor).items()
            }
        self.mqtt.start()
        for settings, monitor in self._sources:
            monitor.start()
            _LOGGER.info("Listening to %s (%s)", settings.name, redact_credentials(settings.url))

    @property
    def listeners(self) -> dict[str, Listener]:
        """Each source's listener (built by `start()`) by the source's object id, as in its topics.

        E.g. to watch one with `Listener.add_observer`.
        """
        return {settings.object_id: monitor.listener for settings, monitor in self._sources}

    def stop(self) -> None:
        """Stop every source thread, then say `offline` and disconnect."""
        for _settings, monitor in self._sources:
            monitor.stop(STOP_TIMEOUT_S)
        self.mqtt.stop()

    def monitor(self, settings: SourceSettings, model: LoadedModel) -> SourceMonitor:
        """A source's monitor (not started) publishing to this service; ServiceError if it cannot work."""
        overrides = DetectionOverrides(
            thresholds={label: t for label, t in settings.thresholds.items() if t is not None},
            off=frozenset(label for label, t in settings.thresholds.items() if t is None),
        )
        try:
            detector = resolve_detector_settings(model.info, overrides)
        except ValueError as err:
            raise ServiceError(f"source {settings.name!r}: thresholds: {err}") from None
        taught = self.taught_sounds(settings, model)
        detector = with_taught(
            detector,
            {label: sound.thresholds[level] for label, (sound, level) in taught.items()},
        )
        try:
            factory = source_factory(settings)
        except ValueError as err:
            raise ServiceError(f"source {settings.name!r}: {err}") from None

        def on_update(update: MonitorUpdate) -> None:
            self._on_update(settings, monitor, update)

        monitor = SourceMonitor(
            settings.object_id,
            factory,
            model,
            title=settings.name,
            detector=detector,
            alarms=AlarmSettings(sample_rate_hz=model.info.sample_rate_hz) if settings.alarms else None,
            on_update=on_update,
            clips=clip_files(settings) if settings.clips_dir is not None else None,
            taught={label: sound for label, (sound, _level) in taught.items()},
        )
        return monitor

    def taught_sounds(
        self, settings: SourceSettings, model: LoadedModel
    ) -> dict[str, tuple[TaughtSound, str]]:
        """A source's `taught` sounds learnt from their examples: label -> (head, sensitivity level).

        A sound that cannot be learnt (a name of a built-in entity, an example that does not decode,
        examples that teach nothing, a model without a bank) is logged as an error and left out: the
        source listens for its other sounds.
        """
        taught: dict[str, tuple[TaughtSound, str]] = {}
        if not settings.taught:
            return taught
        built_in = {
            spec.key for spec in source_entities(model.info, (*model.info.labels, *AlarmSettings().labels))
        }
        for sound in settings.taught:
            why = None
            try:
                if sound.object_id in built_in or sound.object_id in model.info.labels:
                    why = f"its name {sound.object_id!r} is taken by a built-in entity; choose another"
                else:
                    bank = load_bank(model.info)
                    examples = [read_example(path) for path in sound.examples]
                    taught[sound.object_id] = (
                        learn_from_samples(model, bank, sound.name, examples),
                        sound.sensitivity,
                    )
            except (TeachError, SourceError) as err:
                why = str(err)
            if why is not None:
                _LOGGER.error("%s: cannot teach %s: %s", settings.name, sound.name, why)
            else:
                _LOGGER.info("%s: taught %s from %d examples", settings.name, sound.name, len(sound.examples))
        return taught

    # -- topics and discovery -------------------------------------------------------------------------

    def topic(self, settings: SourceSettings, leaf: str) -> str:
        """A source's topic: `<topic_prefix>/<source>/<leaf>`."""
        return f"{self.prefix}/{settings.object_id}/{leaf}"

    def discovery_configs(
        self, settings: SourceSettings, monitor: SourceMonitor
    ) -> dict[str, dict[str, Any]]:
        """Discovery topic -> config, for every entity of one source (its catalogue: `monitor.entities`)."""
        info = monitor.model.info
        source_id = f"{self.node_id}_{settings.object_id}"
        device = {
            "identifiers": [source_id],
            "name": settings.name,
            "manufacturer": MANUFACTURER,
            "model": device_model(info),
            "sw_version": info.version,
        }
        service = {"topic": self.mqtt.availability_topic}
        common = {
            "device": device,
            "origin": {"name": MANUFACTURER, "sw_version": VERSION},
            "availability": [service, {"topic": self.topic(settings, "status")}],
            "availability_mode": "all",
            "qos": 1,
        }
        configs: dict[str, dict[str, Any]] = {}
        for spec in monitor.entities:
            config = {"unique_id": f"{source_id}_{spec.key}", **common, "name": self._texts.name(spec)}
            config |= {
                field: value
                for field, value in (
                    ("icon", self._texts.icon(spec)),
                    ("device_class", spec.device_class),
                    ("entity_category", spec.entity_category),
                    ("unit_of_measurement", spec.unit),
                    ("state_class", spec.state_class),
                    ("suggested_display_precision", spec.display_precision),
                )
                if value is not None
            }
            if not spec.enabled_by_default:
                config["enabled_by_default"] = False
            if spec.always_available:
                config["availability"] = [service]
            config |= self._reads(settings, spec)
            configs[
                f"{self.discovery_prefix}/{spec.platform}/{self.node_id}/{settings.object_id}_{spec.key}/config"
            ] = config
        return configs

    def _reads(self, settings: SourceSettings, spec: EntitySpec) -> dict[str, Any]:
        """Where an entity reads what it shows: its state topic, and what of the message."""
        match spec.shows:
            case Shows.SOUND:
                return {"state_topic": self.topic(settings, str(spec.label))}
            case Shows.LISTENING:
                return {"state_topic": self.topic(settings, "listening")}
            case Shows.EVENTS:
                return {"state_topic": self.topic(settings, "event"), "event_types": list(spec.event_types)}
            case Shows.LEVEL:
                return {
                    "state_topic": self.topic(settings, "level"),
                    "value_template": "{{ value_json.dbfs }}",
                }
            case Shows.PROBABILITY:
                return {
                    "state_topic": self.topic(settings, "level"),
                    "value_template": f"{{{{ (value_json.probabilities.{spec.label} * 100) | round(1) }}}}",
                }

    def _publish(self, topic: str, payload: str, *, retain: bool = False) -> None:
        self.mqtt.publish(topic, payload, retain=retain)
        if self._on_publish is not None:
            self._on_publish(topic, payload)

    def _republish(self) -> None:
        """On every connection: discovery, then each source's state (a broker may have lost them)."""
        for topic, config in self._discovery.items():
            self._publish(topic, config, retain=True)
        with self._lock:
            for settings, monitor in self._sources:
                self._publish_state(settings, monitor)
        # Configs under our node id that no source has now: a source (or a sound) taken out of the YAML.
        self.mqtt.subscribe(f"{self.discovery_prefix}/+/{self.node_id}/+/config")

    def _on_message(self, topic: str, payload: bytes) -> None:
        if payload and topic not in self._discovery:
            _LOGGER.info("Removing the entity of %s: no longer in the configuration", topic)
            self._publish(topic, "", retain=True)

    def _publish_state(self, settings: SourceSettings, monitor: SourceMonitor) -> None:
        connected = monitor.availability.connected
        self._publish(self.topic(settings, "listening"), "ON" if connected else "OFF", retain=True)
        for label, active in monitor.state.active.items():
            self._publish(self.topic(settings, label), "ON" if active else "OFF", retain=True)
        self._publish(self.topic(settings, "status"), ONLINE if connected else OFFLINE, retain=True)

    # -- source threads -------------------------------------------------------------------------------

    def _on_update(self, settings: SourceSettings, monitor: SourceMonitor, update: MonitorUpdate) -> None:
        with self._lock:
            match update:
                case AvailabilityUpdate():
                    self._publish_state(settings, monitor)
                case DetectionUpdate(event=event):
                    self._publish(
                        self.topic(settings, event.label), "ON" if event.active else "OFF", retain=True
                    )
                    if event.active:
                        _LOGGER.info("%s: %s", settings.name, event.label)
                        self._publish(self.topic(settings, "event"), json.dumps(event_payload(event)))
                case StateUpdate(level_dbfs=level, peaks=peaks) if peaks is not None:
                    payload = {
                        "dbfs": level,
                        "probabilities": {label: round(p, 4) for label, p in peaks.probabilities.items()},
                    }
                    self._publish(self.topic(settings, "level"), json.dumps(payload))
