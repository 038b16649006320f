"""The service's YAML file: what it holds, checked with errors that name the file and line."""

from __future__ import annotations

from dataclasses import dataclass, field
import math
from pathlib import Path
import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import yaml

from ..detection_settings import LEVEL_KEYS
from ..model import DEFAULT_MODEL
from ..sources import PcmFormat
from ..taught import DEFAULT_LEVEL, MAX_EXAMPLES

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883
SOURCE_SCHEMES = ("rtsp", "rtsps", "http", "https", "udp")
UDP_QUERY = {"rate": "sample_rate_hz", "width": "sample_width", "channels": "channels"}
"""A udp:// URL's query: the microphone's PCM format (`?rate=16000&width=2&channels=1`)."""
_SLUG = re.compile(r"[^a-z0-9]+")


class ConfigError(Exception):
    """The YAML file is wrong; the message says where (file:line) and what to change."""


@dataclass(frozen=True, kw_only=True)
class MqttSettings:
    """How to reach the broker, and where to publish."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False
    ca_file: Path | None = None
    """With `tls`: the CA that signed the broker's certificate (default: the system's CAs)."""
    discovery_prefix: str = "homeassistant"
    topic_prefix: str = "sound_sentry"
    """The service's own topics; one per machine (each service's availability topic is under it)."""


@dataclass(frozen=True, kw_only=True)
class TaughtSettings:
    """A sound to teach a source at start, from example recordings."""

    name: str
    object_id: str
    """Its topic, entity key and event type (the name in lower case, `_` for anything else)."""
    examples: list[Path]
    """Audio files of the sound (anything PyAV decodes)."""
    sensitivity: str = DEFAULT_LEVEL
    """A sensitivity level key (strict, balanced, eager)."""


@dataclass(frozen=True, kw_only=True)
class SourceSettings:
    """One source: a device in Home Assistant."""

    name: str
    object_id: str
    """The name as it appears in topics and unique ids (lower case, `_` for anything else)."""
    url: str
    """As written, without credentials (they are `username` / `password`)."""
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    transport: str = "tcp"
    pcm: PcmFormat | None = None
    """A udp:// source's PCM format (from the URL's query)."""
    model: str = DEFAULT_MODEL
    thresholds: dict[str, float | None] = field(default_factory=dict)
    """Per sound: a probability that overrides the model's default, or None (`off`: not detected)."""
    alarms: bool = True
    clips_dir: Path | None = None
    taught: list[TaughtSettings] = field(default_factory=list)
    """Sounds taught from examples at start (the accurate model only)."""


@dataclass(frozen=True, kw_only=True)
class ServiceConfig:
    """The whole file."""

    mqtt: MqttSettings
    sources: list[SourceSettings]


def slug(name: str) -> str:
    """`Living room` -> `living_room`."""
    return _SLUG.sub("_", name.lower()).strip("_")


class _Reader:
    """Checks one YAML file's nodes; every error names the file and the line of the offending node."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def error(self, node: yaml.Node, message: str) -> ConfigError:
        return ConfigError(f"{self.path}:{node.start_mark.line + 1}: {message}")

    def mapping(
        self, node: yaml.Node, what: str, allowed: set[str]
    ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, f"{what} must be a mapping (key: value lines)")
        items: dict[str, tuple[yaml.Node, yaml.Node]] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name not in allowed:
                raise self.error(
                    key, f"unknown key {name!r} in {what}; expected one of {', '.join(sorted(allowed))}"
                )
            if name in items:
                raise self.error(key, f"{name!r} appears twice in {what}")
            items[name] = (key, value)
        return items

    def scalar(self, node: yaml.Node) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            raise self.error(node, "expected a single value here, not a list or mapping")
        return yaml.SafeLoader("").construct_object(node, deep=True)

    def string(self, node: yaml.Node, what: str) -> str:
        value = self.scalar(node)
        if not isinstance(value, str | int) or isinstance(value, bool) or not str(value).strip():
            raise self.error(node, f"{what} must be a non-empty text")
        return str(value).strip()

    def boolean(self, node: yaml.Node, what: str) -> bool:
        value = self.scalar(node)
        if not isinstance(value, bool):
            raise self.error(node, f"{what} must be true or false")
        return value

    def port(self, node: yaml.Node) -> int:
        value = self.scalar(node)
        if not isinstance(value, int) or isinstance(value, bool) or not 0 < value < 65536:
            raise self.error(node, "port must be a number from 1 to 65535")
        return value

    def secret(self, items: dict[str, tuple[yaml.Node, yaml.Node]], what: str) -> str | None:
        """`password`, or the first line of the file `password_file` names (never both)."""
        if "password" in items and "password_file" in items:
            raise self.error(items["password_file"][0], f"{what}: give password or password_file, not both")
        if "password" in items:
            return self.string(items["password"][1], "password")
        if "password_file" in items:
            node = items["password_file"][1]
            file = Path(self.string(node, "password_file")).expanduser()
            try:
                lines = file.read_text(encoding="utf-8").splitlines()
            except OSError as err:
                raise self.error(node, f"cannot read password_file {file}: {err.strerror or err}") from None
            if not lines or not lines[0]:
                raise self.error(node, f"password_file {file} is empty")
            return lines[0]
        return None

    def mqtt(self, node: yaml.Node) -> MqttSettings:
        keys = {"host", "port", "username", "password", "password_file", "tls", "ca_file"}
        keys |= {"discovery_prefix", "topic_prefix"}
        items = self.mapping(node, "mqtt", keys)
        if "host" not in items:
            raise self.error(node, "mqtt needs a host (the broker's name or address)")
        tls = self.boolean(items["tls"][1], "tls") if "tls" in items else False
        prefixes = {}
        for key in ("discovery_prefix", "topic_prefix"):
            if key in items:
                value = self.string(items[key][1], key)
                if any(c in value for c in "#+") or value.startswith("/") or value.endswith("/"):
                    raise self.error(
                        items[key][1], f"{key} must be a topic without #, + or a leading/trailing /"
                    )
                prefixes[key] = value
        return MqttSettings(
            host=self.string(items["host"][1], "host"),
            port=self.port(items["port"][1])
            if "port" in items
            else DEFAULT_TLS_PORT
            if tls
            else DEFAULT_PORT,
            username=self.string(items["username"][1], "username") if "username" in items else None,
            password=self.secret(items, "mqtt"),
            tls=tls,
            ca_file=Path(self.string(items["ca_file"][1], "ca_file")) if "ca_file" in items else None,
            **prefixes,
        )

    def thresholds(self, node: yaml.Node) -> dict[str, float | None]:
        if not isinstance(node, yaml.MappingNode):
            raise self.error(node, "thresholds must be a mapping, e.g. {babycry: 0.9, gunshot: off}")
        result: dict[str, float | None] = {}
        for key, value_node in node.value:
            label = self.string(key, "a sound's name")
            value = self.scalar(value_node)
            if value is False:
                result[label] = None
            elif (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and 0 < value <= 1
            ):
                result[label] = float(value)
            else:
                raise self.error(value_node, f"threshold of {label}: a probability in (0, 1], or off")
        return result

    def taught(self, node: yaml.Node) -> list[TaughtSettings]:
        if not isinstance(node, yaml.SequenceNode):
            raise self.error(node, "taught must be a list of sounds, each {name, examples, sensitivity}")
        sounds: list[TaughtSettings] = []
        for item in node.value:
            items = self.mapping(item, "a taught sound", {"name", "examples", "sensitivity"})
            for key in ("name", "examples"):
                if key not in items:
                    raise self.error(item, f"this taught sound needs {key}")
            name = self.string(items["name"][1], "name")
            object_id = slug(name)
            if not object_id:
                raise self.error(items["name"][1], "name needs at least one letter or digit")
            if object_id in {s.object_id for s in sounds}:
                raise self.error(items["name"][1], f"two taught sounds of this source are named {name!r}")
            examples_node = items["examples"][1]
            if not isinstance(examples_node, yaml.SequenceNode) or not examples_node.value:
                raise self.error(examples_node, "examples must be a list of audio files")
            if len(examples_node.value) > MAX_EXAMPLES:
                raise self.error(examples_node, f"examples: at most {MAX_EXAMPLES} files")
            examples = []
            for example in examples_node.value:
                path = Path(self.string(example, "an example")).expanduser()
                if not path.is_file():
                    raise self.error(example, f"examples: no such file {path}")
                examples.append(path)
            sensitivity = DEFAULT_LEVEL
            if "sensitivity" in items:
                sensitivity = self.string(items["sensitivity"][1], "sensitivity")
                if sensitivity not in LEVEL_KEYS:
                    raise self.error(items["sensitivity"][1], f"sensitivity must be {', '.join(LEVEL_KEYS)}")
            sounds.append(
                TaughtSettings(name=name, object_id=object_id, examples=examples, sensitivity=sensitivity)
            )
        return sounds

    def source(self, node: yaml.Node) -> SourceSettings:
        keys = {"name", "url", "username", "password", "password_file", "transport", "model", "thresholds"}
        keys |= {"alarms", "clips_dir", "taught"}
        items = self.mapping(node, "a source", keys)
        for key in ("name", "url"):
            if key not in items:
                raise self.error(node, f"this source needs a {key}")
        name = self.string(items["name"][1], "name")
        url_node = items["url"][1]
        url = self.string(url_node, "url")
        scheme = url.partition("://")[0].lower() if "://" in url else ""
        if scheme and scheme not in SOURCE_SCHEMES:
            raise self.error(
                url_node, f"url: {scheme}:// is not a source; use {', '.join(SOURCE_SCHEMES)} or a file"
            )
        if "@" in url.partition("://")[2].partition("/")[0]:
            raise self.error(
                url_node, "url: put the user name and password in username and password, not in the URL"
            )
        if not scheme and not Path(url).expanduser().is_file():
            raise self.error(url_node, f"url: no such file {url} (a local file is played at real-time pace)")
        pcm = None
        if scheme == "udp":
            fields: dict[str, int] = {}
            for key, value in parse_qsl(urlsplit(url).query):
                if key not in UDP_QUERY or not value.isdigit():
                    raise self.error(
                        url_node, f"url: a udp:// URL's query takes rate, width and channels, not {key}"
                    )
                fields[UDP_QUERY[key]] = int(value)
            pcm = PcmFormat(**fields)
        transport = self.string(items["transport"][1], "transport") if "transport" in items else "tcp"
        if transport not in ("tcp", "udp"):
            raise self.error(items["transport"][1], "transport must be tcp or udp")
        object_id = slug(name)
        if not object_id:
            raise self.error(items["name"][1], "name needs at least one letter or digit")
        return SourceSettings(
            name=name,
            object_id=object_id,
            url=url,
            username=self.string(items["username"][1], "username") if "username" in items else None,
            password=self.secret(items, "source"),
            transport=transport,
            pcm=pcm,
            model=self.string(items["model"][1], "model") if "model" in items else DEFAULT_MODEL,
            thresholds=self.thresholds(items["thresholds"][1]) if "thresholds" in items else {},
            alarms=self.boolean(items["alarms"][1], "alarms") if "alarms" in items else True,
            clips_dir=Path(self.string(items["clips_dir"][1], "clips_dir")).expanduser()
            if "clips_dir" in items
            else None,
            taught=self.taught(items["taught"][1]) if "taught" in items else [],
        )

    def config(self, root: yaml.Node | None) -> ServiceConfig:
        if root is None:
            raise ConfigError(f"{self.path}: the file is empty; it needs mqtt: and sources:")
        items = self.mapping(root, "the file", {"mqtt", "sources"})
        for key in ("mqtt", "sources"):
            if key not in items:
                raise self.error(root, f"the file needs {key}:")
        sources_node = items["sources"][1]
        if not isinstance(sources_node, yaml.SequenceNode) or not sources_node.value:
            raise self.error(sources_node, "sources must be a list of sources (lines starting with -)")
        sources: list[SourceSettings] = []
        seen: dict[str, str] = {}
        for node in sources_node.value:
            source = self.source(node)
            if source.object_id in seen:
                raise self.error(
                    node, f"source {source.name!r} has the same id as {seen[source.object_id]!r}"
                )
            seen[source.object_id] = source.name
            sources.append(source)
        return ServiceConfig(mqtt=self.mqtt(items["mqtt"][1]), sources=sources)


def load_config(path: Path | str) -> ServiceConfig:
    """Read and check the YAML file at `path`; raises ConfigError naming the line of what is wrong."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror or err}") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML ({err.problem or err.context})") from None
    return _Reader(path).config(root)
