"""Config, options, reconfigure and reauth flows: pick a source, try it, then choose how sensitive it is."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
import ipaddress
import traceback
from typing import Any

from homeassistant.components.file_upload import process_uploaded_file
from homeassistant.config_entries import ConfigEntryState, ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.const import CONF_NAME, CONF_PASSWORD, CONF_PORT, CONF_URL, CONF_USERNAME
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector, translation
import homeassistant.helpers.entity_registry as er
from homeassistant.helpers.entity_registry import async_validate_entity_id
from homeassistant.util import slugify
import numpy as np
import numpy.typing as npt

try:  # Home Assistant 2026.x validates forms with probatio, earlier versions with voluptuous
    import probatio as vol
except ImportError:  # pragma: no cover - exercised on the minimum Home Assistant
    import voluptuous as vol  # type: ignore[no-redef, unused-ignore]

from . import const
from .const import (
    ALARM_CLASSES,
    CONF_CAMERA,
    CONF_CHANNELS,
    CONF_CLIP_KEEP_DAYS,
    CONF_CLIP_MAX,
    CONF_CLIPS,
    CONF_DEVICE_ADDRESS,
    CONF_ENABLED_CLASSES,
    CONF_HOLD_S,
    CONF_K,
    CONF_MODEL,
    CONF_N,
    CONF_SAMPLE_BITS,
    CONF_SAMPLE_RATE,
    CONF_SENSITIVITY_PREFIX,
    CONF_SOURCE_TYPE,
    CONF_THRESHOLD_PREFIX,
    CONF_TRANSPORT,
    DEFAULT_CLIP_KEEP_DAYS,
    DEFAULT_CLIP_MAX,
    DEFAULT_UDP_PORT,
    DOMAIN,
    LOGGER,
    UDP_SAMPLE_RATES,
    SourceType,
)
from .detection_options import overrides_from_options, with_overrides
from .engine.detection_settings import (
    LEVEL_KEYS,
    DetectionOverrides,
    curve_point,
    level_points,
    resolve_detector_settings,
    with_taught,
)
from .engine.examples import cut_examples
from .engine.listening import ListeningReport, listening_test
from .engine.model import DEFAULT_MODEL, SHIPPED_MODELS, LoadedModel
from .engine.model_info import ModelInfo, ModelLoadError
from .engine.redact import redact_credentials
from .engine.sources import SourceError
from .engine.taught import (
    DEFAULT_LEVEL,
    MAX_EXAMPLES,
    MIN_EXAMPLES,
    TaughtSound,
    TeachError,
    check_samples,
    learn_from_samples,
    load_bank,
    read_example,
    teachable,
)
from .entry_source import NoCameraStreamError, async_probe, unique_id_for, validate_rtsp_url
from .model_store import async_get_model
from .runtime import RecordError, SoundSentryConfigEntry, SoundSentryRuntime
from .taught_store import RESERVED_KEYS, TaughtStore

FLOW_ERRORS = {"invalid_url", "cannot_connect", "invalid_auth", "no_audio", "port_in_use"}
CAMERA_ERRORS = {"invalid_url": "camera_stream_unsupported", "invalid_auth": "camera_invalid_auth"}
"""Errors of a camera entity's stream, worded for a camera: the user never typed its URL or login."""

SENSITIVITY_DEFAULT = "default"
"""A sound's sensitivity choice: the model's own threshold (no override)."""
SENSITIVITY_CUSTOM = "custom"
"""A sound's sensitivity choice: a threshold typed in the next step."""

TRANSPORT_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(options=["tcp", "udp"], translation_key="transport")
)

# Taught sounds and the listening test (options flow)
CONF_FILE = "file"
CONF_METHOD = "method"
CONF_SECONDS = "seconds"
CONF_SOUND = "sound"
TEACH_METHODS = ("upload", "record")
"""How the examples of a sound to teach are given: uploaded files, or a recording from the source."""
LISTEN_SECONDS = (5, 30, 15)
"""The listening test's length: at least, at most, by default."""
RECORD_SECONDS = (10, 60, 20)
"""A recording of the sound made several times: at least, at most, by default."""
AUDIO_FILES = "audio/*,.wav,.mp3,.m4a,.ogg,.flac"
NEW_SOUND = "new_sound"
"""A taught sound's label in the listening test before it is saved (no stored sound has it)."""


def _seconds_field(seconds: tuple[int, int, int], default: float | None = None) -> dict[Any, Any]:
    low, high, usual = seconds
    return {
        vol.Required(CONF_SECONDS, default=default or usual): selector.NumberSelector(
            selector.NumberSelectorConfig(
                min=low, max=high, step=1, unit_of_measurement="s", mode=selector.NumberSelectorMode.BOX
            )
        )
    }


def _read_upload(hass: HomeAssistant, file_id: str) -> npt.NDArray[np.float32]:
    """An uploaded example decoded by the engine, as 8 kHz mono (executor); the upload is removed after.

    Raises ValueError for an upload that is gone, SourceError for a file that is no audio.
    """
    with process_uploaded_file(hass, file_id) as path:
        return read_example(path)


async def _async_builtin_names(hass: HomeAssistant) -> dict[str, str]:
    """The names of the built-in sounds' binary sensors, by key, in the user's language."""
    strings = await translation.async_get_translations(hass, hass.config.language, "entity", {DOMAIN})
    prefix = f"component.{DOMAIN}.entity.binary_sensor."
    return {
        key.removeprefix(prefix).removesuffix(".name"): name
        for key, name in strings.items()
        if key.startswith(prefix) and key.endswith(".name")
    }


def _report_lines(report: ListeningReport, names: Mapping[str, str]) -> str:
    """The listening test's result per sound, one line each (the sound's name, its score, the verdict)."""
    lines = []
    for sound in report.sounds:
        mark = "✅" if sound.detected else "❌"
        name = names.get(sound.label, sound.label)
        if sound.peak is None or sound.threshold is None:  # an alarm pattern has no score
            lines.append(f"- {mark} {name}")
        else:
            lines.append(f"- {mark} {name}: {sound.peak:.3f} / {sound.threshold:.3f}")
    return "\n".join(lines)


async def _async_level_names(hass: HomeAssistant) -> dict[str, str]:
    """The sensitivity levels' names (`LEVEL_KEYS`), as the sensitivity selector shows them, by key."""
    strings = await translation.async_get_translations(hass, hass.config.language, "selector", {DOMAIN})
    prefix = f"component.{DOMAIN}.selector.sensitivity.options."
    return {key: strings.get(prefix + key, key) for key in LEVEL_KEYS}


def _sound_selector(store: TaughtStore) -> selector.SelectSelector:
    """A choice of the store's taught sounds, by name."""
    return selector.SelectSelector(
        selector.SelectSelectorConfig(
            options=[selector.SelectOptionDict(value=s.slug, label=s.name) for s in store.sounds]
        )
    )


def _rtsp_schema(defaults: Mapping[str, Any], *, with_name: bool) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if with_name:
        fields[vol.Required(CONF_NAME, default=defaults.get(CONF_NAME, ""))] = str
    fields |= {
        vol.Required(CONF_URL, default=defaults.get(CONF_URL, "")): selector.TextSelector(),
        vol.Optional(CONF_USERNAME, description={"suggested_value": defaults.get(CONF_USERNAME)}): str,
        vol.Optional(CONF_PASSWORD, description={"suggested_value": defaults.get(CONF_PASSWORD)}): (
            selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))
        ),
        vol.Required(CONF_TRANSPORT, default=defaults.get(CONF_TRANSPORT, "tcp")): TRANSPORT_SELECTOR,
    }
    return vol.Schema(fields)


def _camera_schema(defaults: Mapping[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_CAMERA, default=defaults.get(CONF_CAMERA, vol.UNDEFINED)
            ): selector.EntitySelector(selector.EntitySelectorConfig(domain="camera")),
            vol.Required(CONF_TRANSPORT, default=defaults.get(CONF_TRANSPORT, "tcp")): TRANSPORT_SELECTOR,
        }
    )


def _udp_schema(defaults: Mapping[str, Any], *, with_name: bool) -> vol.Schema:
    fields: dict[Any, Any] = {}
    if with_name:
        fields[vol.Required(CONF_NAME, default=defaults.get(CONF_NAME, ""))] = str
    fields |= {
        vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_UDP_PORT)): selector.NumberSelector(
            selector.NumberSelectorConfig(min=1024, max=65535, mode=selector.NumberSelectorMode.BOX)
        ),
        vol.Required(CONF_DEVICE_ADDRESS, default=defaults.get(CONF_DEVICE_ADDRESS, "")): str,
        vol.Required(
            CONF_SAMPLE_RATE, default=str(defaults.get(CONF_SAMPLE_RATE, 16000))
        ): selector.SelectSelector(
            selector.SelectSelectorConfig(options=[str(rate) for rate in UDP_SAMPLE_RATES])
        ),
        vol.Required(
            CONF_SAMPLE_BITS, default=str(defaults.get(CONF_SAMPLE_BITS, 16))
        ): selector.SelectSelector(selector.SelectSelectorConfig(options=["16", "32"])),
        vol.Required(CONF_CHANNELS, default=str(defaults.get(CONF_CHANNELS, 1))): selector.SelectSelector(
            selector.SelectSelectorConfig(options=["1", "2"])
        ),
    }
    return vol.Schema(fields)


def _sensitivity_fields(info: ModelInfo, choices: Mapping[str, str]) -> dict[Any, Any]:
    """A select per sound: the model's default, each level its operating curve offers, a custom threshold."""
    fields: dict[Any, Any] = {}
    for label in info.events:
        offered = [SENSITIVITY_DEFAULT, *level_points(info.operating_curve, label), SENSITIVITY_CUSTOM]
        choice = choices.get(label, SENSITIVITY_DEFAULT)
        key = vol.Required(
            f"{CONF_SENSITIVITY_PREFIX}{label}", default=choice if choice in offered else SENSITIVITY_DEFAULT
        )
        fields[key] = selector.SelectSelector(
            selector.SelectSelectorConfig(
                options=offered, translation_key="sensitivity", mode=selector.SelectSelectorMode.DROPDOWN
            )
        )
    return fields


def _sensitivity_placeholders(info: ModelInfo) -> dict[str, str]:
    """What each choice was measured to hear ("-": not measured), for the sensitivity fields' texts.

    Per sound: the share of test sounds heard at each level and at the model's default, and the default's
    false alarms per day; the hours of background and the k of n the curve was measured in.
    """
    curve = info.operating_curve
    placeholders = {
        "curve_hours": f"{curve.background_hours:.1f}" if curve is not None else "-",
        "curve_k": str(curve.k if curve is not None else info.k),
        "curve_n": str(curve.n if curve is not None else info.n),
        "hop_s": f"{info.hop_s:g}",
    }
    for label in info.events:
        points = level_points(curve, label)
        for key in LEVEL_KEYS:
            placeholders[f"{label}_{key}"] = f"{points[key].recall:.0%}" if key in points else "-"
        default = curve_point(curve, label, info.thresholds[label])
        placeholders[f"{label}_default"] = f"{default.recall:.0%}" if default is not None else "-"
        placeholders[f"{label}_default_per_day"] = (
            f"{default.false_alarms_per_day:.2g}" if default is not None else "-"
        )
    return placeholders


def _choices(info: ModelInfo, user_input: Mapping[str, Any]) -> dict[str, str]:
    """The sensitivity form's choice per sound of the model."""
    return {label: str(user_input[f"{CONF_SENSITIVITY_PREFIX}{label}"]) for label in info.events}


def _current_choices(info: ModelInfo, overrides: DetectionOverrides) -> dict[str, str]:
    """The choice per sound of the model that stored overrides stand for."""
    return {
        label: SENSITIVITY_CUSTOM
        if label in overrides.thresholds
        else overrides.levels.get(label, SENSITIVITY_DEFAULT)
        for label in info.events
    }


def _sounds_to_detect(info: ModelInfo) -> list[str]:
    """What "Sounds to detect" offers for a model: its sounds, then the smoke and CO alarms (no model)."""
    return [*info.events, *ALARM_CLASSES]


def _custom(choices: Mapping[str, str]) -> list[str]:
    """The sounds whose threshold is typed (the custom thresholds step)."""
    return [label for label, choice in choices.items() if choice == SENSITIVITY_CUSTOM]


def _overrides(
    choices: Mapping[str, str], thresholds: Mapping[str, float], **numbers: Any
) -> DetectionOverrides:
    """What the forms' choices override: levels, the typed thresholds, and k, n and hold (options only)."""
    return DetectionOverrides(
        thresholds=dict(thresholds),
        levels={label: choice for label, choice in choices.items() if choice in LEVEL_KEYS},
        **numbers,
    )


def _threshold_fields(defaults: Mapping[str, float]) -> dict[Any, Any]:
    """A threshold per sound of `defaults` (those set to a custom threshold)."""
    return {
        vol.Required(f"{CONF_THRESHOLD_PREFIX}{label}", default=default): selector.NumberSelector(
            # Up to 0.999 in steps of 0.001: useful thresholds sit close to 1 (the model's defaults do).
            selector.NumberSelectorConfig(
                min=0.05, max=0.999, step=0.001, mode=selector.NumberSelectorMode.SLIDER
            )
        )
        for label, default in defaults.items()
    }


def _is_ip_address(text: str) -> bool:
    """Datagrams are accepted by sender address, so the device must be given by its IP address."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _placeholders() -> dict[str, str]:
    """What the error texts quote (read at call time: the tests shorten the probe)."""
    return {"probe_seconds": f"{const.PROBE_TIMEOUT_S:g}"}


async def _async_try(hass: HomeAssistant, data: Mapping[str, Any]) -> str | None:
    """Try the source: None if audio arrived, else the form error key."""
    try:
        await async_probe(hass, data)
    except NoCameraStreamError as err:
        LOGGER.debug("Trying the camera failed: %s", err)
        return "camera_no_stream"
    except SourceError as err:
        LOGGER.debug("Trying %s failed: %s (%s)", data[CONF_SOURCE_TYPE], err.reason, err)
        error = err.reason if err.reason in FLOW_ERRORS else "cannot_connect"
        if data[CONF_SOURCE_TYPE] == SourceType.CAMERA:
            return CAMERA_ERRORS.get(error, error)
        return error
    except Exception as err:  # noqa: BLE001 - a bug must show as "unknown" in the form, not a broken flow
        # Redacted: an exception from a library may quote a URL with its password.
        details = redact_credentials("".join(traceback.format_exception(err)))
        LOGGER.error("Unexpected error trying %s:\n%s", data[CONF_SOURCE_TYPE], details)
        return "unknown"
    return None


class _InvalidFieldError(Exception):
    """A form field whose value cannot make a source; `error` is its translation key."""

    def __init__(self, field: str, error: str) -> None:
        super().__init__(field, error)
        self.field = field
        self.error = error


def _source_data(
    hass: HomeAssistant, source_type: SourceType, user_input: Mapping[str, Any]
) -> dict[str, Any]:
    """A source form's values as the entry stores them (adding and reconfiguring alike).

    Raises _InvalidFieldError for a value that cannot make a source.
    """
    match source_type:
        case SourceType.CAMERA:
            try:
                entity_id = async_validate_entity_id(er.async_get(hass), user_input[CONF_CAMERA])
            except vol.Invalid:
                raise _InvalidFieldError(CONF_CAMERA, "camera_not_found") from None
            if hass.states.get(entity_id) is None:
                raise _InvalidFieldError(CONF_CAMERA, "camera_not_found")
            return {
                CONF_SOURCE_TYPE: source_type,
                CONF_CAMERA: entity_id,
                CONF_TRANSPORT: user_input[CONF_TRANSPORT],
            }
        case SourceType.RTSP:
            try:
                url = validate_rtsp_url(user_input[CONF_URL])
            except SourceError:
                raise _InvalidFieldError(CONF_URL, "invalid_url") from None
            return {
                CONF_SOURCE_TYPE: source_type,
                CONF_URL: url,
                CONF_USERNAME: user_input.get(CONF_USERNAME) or "",
                CONF_PASSWORD: user_input.get(CONF_PASSWORD) or "",
                CONF_TRANSPORT: user_input[CONF_TRANSPORT],
            }
        case SourceType.UDP:
            address = user_input[CONF_DEVICE_ADDRESS].strip()
            if not _is_ip_address(address):
                raise _InvalidFieldError(CONF_DEVICE_ADDRESS, "invalid_address")
            return {  # selects give strings
                CONF_SOURCE_TYPE: source_type,
                CONF_PORT: int(user_input[CONF_PORT]),
                CONF_DEVICE_ADDRESS: address,
                CONF_SAMPLE_RATE: int(user_input[CONF_SAMPLE_RATE]),
                CONF_SAMPLE_BITS: int(user_input[CONF_SAMPLE_BITS]),
                CONF_CHANNELS: int(user_input[CONF_CHANNELS]),
            }


def _model_summary(info: ModelInfo) -> str:
    """A model's measured figures for the model choice: recall per sound at its defaults, false alarms, CPU.

    From the test streams in which the loudness of a sound gives nothing away (`training.streams`).
    """
    streams = info.metrics.get("streams", {}).get("no_level_cue", {})
    recall = streams.get("recall", {})
    recalls = " / ".join(f"{recall[label]:.0%}" if label in recall else "-" for label in info.events)
    alarms = streams.get("false_alarms_per_hour", {})
    cpu = info.metrics.get("cpu_ms_per_audio_s", {})
    text = f"hears {recalls} of test cries / glass breaks / gunshots in a room's noise at its defaults"
    if alarms:
        text += f", {sum(alarms.values()):.1f} false alarms per hour of background"
    if cpu:
        text += "; CPU per second of audio " + ", ".join(f"{ms:.1f} ms ({name})" for name, ms in cpu.items())
    return text


async def _async_model_placeholders(hass: HomeAssistant) -> dict[str, str]:
    """Each shipped model's figures and the licence of its weights, for the model choice's description."""
    placeholders = {}
    for name in SHIPPED_MODELS:
        try:
            info = (await async_get_model(hass, name)).info
        except ModelLoadError:
            placeholders[f"model_{name}"] = placeholders[f"licence_{name}"] = "not installed"
        else:
            placeholders[f"model_{name}"] = _model_summary(info)
            placeholders[f"licence_{name}"] = info.licence_text
    return placeholders


def _curve_placeholders(info: ModelInfo, thresholds: Mapping[str, float]) -> dict[str, str]:
    """The model's measured operating curve for the threshold fields (threshold → false alarms, recall)."""
    curve = info.operating_curve
    if curve is None:
        return {
            "curve_hours": "-",
            "curve_k": "-",
            "curve_n": "-",
            "hop_s": f"{info.hop_s:g}",
            **{f"curve_{label}": "-" for label in info.events},
        }
    return {
        "curve_hours": f"{curve.background_hours:.1f}",
        "hop_s": f"{info.hop_s:g}",
        "curve_k": str(curve.k),
        "curve_n": str(curve.n),
        **{
            f"curve_{label}": curve.summary(label, float(thresholds.get(label, info.thresholds[label])))
            for label in info.events
        },
    }


class SoundSentryConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add an audio source: a camera entity, an RTSP URL or an ESPHome microphone over UDP."""

    VERSION = 1
    MINOR_VERSION = 5
    """1.2: an RTSP entry's unique id keeps the URL's query (NVR channels); rtsps defaults to port 322.
    1.3: smoke and CO alarms among the sounds to detect (on). 1.4: the model (existing sources: compact).
    1.5: the options hold only overrides of the model's defaults, and the model release they were made for."""

    def __init__(self) -> None:
        self._data: dict[str, Any] = {}
        self._title = ""
        self._choices: dict[str, str] = {}

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: SoundSentryConfigEntry) -> SoundSentryOptionsFlow:
        """Thresholds, debouncing and classes."""
        return SoundSentryOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Choose the kind of source."""
        try:
            await async_get_model(self.hass, DEFAULT_MODEL)
        except ModelLoadError as err:
            LOGGER.error("Sound Sentry cannot load its model: %s", err)
            return self.async_abort(reason="model_unavailable")
        return self.async_show_menu(step_id="user", menu_options=[kind.value for kind in SourceType])

    async def async_step_camera(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """A camera entity of Home Assistant; its stream URL is looked up at each connect."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = _source_data(self.hass, SourceType.CAMERA, user_input)
            except _InvalidFieldError as err:
                errors[err.field] = err.error
            else:
                state = self.hass.states.get(data[CONF_CAMERA])
                title = state.name if state is not None else data[CONF_CAMERA]
                if (result := await self._async_set_source(data, title, errors)) is not None:
                    return result
        return self.async_show_form(
            step_id="camera",
            data_schema=_camera_schema(user_input or {}),
            errors=errors,
            description_placeholders=_placeholders(),
        )

    async def async_step_rtsp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """An RTSP URL with optional credentials."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = _source_data(self.hass, SourceType.RTSP, user_input)
            except _InvalidFieldError as err:
                errors[err.field] = err.error
            else:
                if (result := await self._async_set_source(data, user_input[CONF_NAME], errors)) is not None:
                    return result
        return self.async_show_form(
            step_id="rtsp",
            data_schema=_rtsp_schema(user_input or {}, with_name=True),
            errors=errors,
            description_placeholders=_placeholders(),
        )

    async def async_step_udp(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Raw PCM datagrams from an ESPHome microphone."""
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = _source_data(self.hass, SourceType.UDP, user_input)
            except _InvalidFieldError as err:
                errors[err.field] = err.error
            else:
                if (result := await self._async_set_source(data, user_input[CONF_NAME], errors)) is not None:
                    return result
        return self.async_show_form(
            step_id="udp",
            data_schema=_udp_schema(user_input or {}, with_name=True),
            errors=errors,
            description_placeholders={"port": str(DEFAULT_UDP_PORT), **_placeholders()},
        )

    async def _async_set_source(
        self, data: dict[str, Any], title: str, errors: dict[str, str]
    ) -> ConfigFlowResult | None:
        """Check that the source is new and delivers audio; then go on to the thresholds."""
        await self.async_set_unique_id(unique_id_for(data))
        self._abort_if_unique_id_configured()
        if (error := await _async_try(self.hass, data)) is not None:
            errors["base"] = error
            return None
        self._data, self._title = data, title.strip() or unique_id_for(data)
        return await self.async_step_thresholds()

    async def async_step_thresholds(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """How sensitive each sound is: the model's default, a level of false alarms, or a threshold."""
        info = (await async_get_model(self.hass, DEFAULT_MODEL)).info
        if user_input is not None:
            self._choices = _choices(info, user_input)
            if _custom(self._choices):
                return await self.async_step_custom_thresholds()
            return self._async_create_source(info, {})
        return self.async_show_form(
            step_id="thresholds",
            data_schema=vol.Schema(_sensitivity_fields(info, {})),
            description_placeholders=_sensitivity_placeholders(info),
        )

    async def async_step_custom_thresholds(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How sure the model must be for each sound set to a custom threshold."""
        info = (await async_get_model(self.hass, DEFAULT_MODEL)).info
        custom = _custom(self._choices)
        if user_input is not None:
            thresholds = {label: float(user_input[f"{CONF_THRESHOLD_PREFIX}{label}"]) for label in custom}
            return self._async_create_source(info, thresholds)
        defaults = {label: float(info.thresholds[label]) for label in custom}
        return self.async_show_form(
            step_id="custom_thresholds",
            data_schema=vol.Schema(_threshold_fields(defaults)),
            description_placeholders=_curve_placeholders(info, defaults),
        )

    def _async_create_source(self, info: ModelInfo, thresholds: Mapping[str, float]) -> ConfigFlowResult:
        """The new entry: every sound on, the default model, only the choices that override it."""
        options = with_overrides(
            {CONF_MODEL: DEFAULT_MODEL, CONF_ENABLED_CLASSES: _sounds_to_detect(info)},
            _overrides(self._choices, thresholds),
            info,
        )
        return self.async_create_entry(title=self._title, data=self._data, options=options)

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Change where the audio comes from (URL, credentials, port...) without losing the device."""
        entry = self._get_reconfigure_entry()
        source_type = SourceType(entry.data[CONF_SOURCE_TYPE])
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                data = _source_data(self.hass, source_type, user_input)
            except _InvalidFieldError as err:
                errors[err.field] = err.error
            else:
                if unique_id_for(data) != entry.unique_id:
                    await self.async_set_unique_id(unique_id_for(data))
                    self._abort_if_unique_id_configured()
                if (error := await _async_try(self.hass, data)) is None:
                    return self.async_update_reload_and_abort(entry, unique_id=unique_id_for(data), data=data)
                errors["base"] = error
        defaults = user_input or entry.data
        schema = {
            SourceType.UDP: _udp_schema(defaults, with_name=False),
            SourceType.CAMERA: _camera_schema(defaults),
            SourceType.RTSP: _rtsp_schema(defaults, with_name=False),
        }[source_type]
        return self.async_show_form(
            step_id="reconfigure", data_schema=schema, errors=errors, description_placeholders=_placeholders()
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The camera refused the credentials (401)."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for new credentials and try them."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            data = {
                **entry.data,
                CONF_USERNAME: user_input[CONF_USERNAME],
                CONF_PASSWORD: user_input[CONF_PASSWORD],
            }
            if (error := await _async_try(self.hass, data)) is None:
                return self.async_update_reload_and_abort(entry, data=data)
            errors["base"] = error
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_USERNAME, default=entry.data.get(CONF_USERNAME, "")): str,
                    vol.Required(CONF_PASSWORD): selector.TextSelector(
                        selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD)
                    ),
                }
            ),
            errors=errors,
            description_placeholders={"name": entry.title, **_placeholders()},
        )


class SoundSentryOptionsFlow(OptionsFlow):
    """The source's options: its model and detection settings, teaching it a sound, a listening test.

    Settings: choose the model, then tune detection (sensitivity, k-of-n, hold time, sounds to detect,
    clips). Teaching: a name, 3 to 10 examples (uploaded files, or a recording from the source cut by
    level), learnt against the model's background bank, then a listening test on fresh audio that must
    hear it before it can be saved. The listening test of every sound: the source records while the user
    makes the sound, and each sound's highest score is shown beside its threshold.
    """

    _model: str
    _form: dict[str, Any]
    _choices: dict[str, str]

    def __init__(self) -> None:
        self._seconds = float(LISTEN_SECONDS[2])
        self._task: asyncio.Task[Any] | None = None
        self._errors: dict[str, str] = {}
        self._error_placeholders: dict[str, str] = {}
        self._report: ListeningReport | None = None
        self._name = ""
        self._sensitivity = DEFAULT_LEVEL
        self._examples: list[npt.NDArray[np.float32]] = []
        self._sound: TaughtSound | None = None

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """What to do: the settings, teach a sound, a listening test, forget a taught sound.

        Teaching and the test listen to the running source: a source that is not set up offers neither.
        Sounds are taught on the accurate model's embedding: the compact model says so instead.
        """
        options = ["model"]
        if self.config_entry.state is ConfigEntryState.LOADED:
            runtime = self._runtime
            options.append("teach_name" if teachable(runtime.model.info) else "teach_needs_accurate")
            options.append("listening_test")
            if (await self._async_store()).sounds:
                options += ["taught_sensitivity", "forget"]
        return self.async_show_menu(step_id="init", menu_options=options)

    async def async_step_model(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Which model listens; each choice shows what it was measured to hear and to cost.

        A model that cannot load (its files missing or damaged) is refused here, with the reason, so that
        the source keeps its model and options; the choice stays in the form.
        """
        errors: dict[str, str] = {}
        placeholders = await _async_model_placeholders(self.hass)
        if user_input is not None:
            model = str(user_input[CONF_MODEL])
            try:
                await async_get_model(self.hass, model)
            except ModelLoadError as err:
                LOGGER.error("Sound Sentry cannot load its %s model: %s", model, err)
                errors[CONF_MODEL] = "model_unavailable"
                placeholders["error"] = str(err)
            else:
                self._model = model
                return await self.async_step_detection()
        chosen = user_input[CONF_MODEL] if user_input is not None else self.config_entry.options[CONF_MODEL]
        schema = vol.Schema(
            {
                vol.Required(CONF_MODEL, default=chosen): selector.SelectSelector(
                    selector.SelectSelectorConfig(options=list(SHIPPED_MODELS), translation_key="model")
                )
            }
        )
        return self.async_show_form(
            step_id="model", data_schema=schema, errors=errors, description_placeholders=placeholders
        )

    def _current(self, info: ModelInfo) -> DetectionOverrides:
        """The entry's overrides for the chosen model (`info`).

        Another model starts from its own defaults; a level means the same for any model and stays.
        """
        overrides = overrides_from_options(self.config_entry.options, info)
        if self._model != self.config_entry.options[CONF_MODEL]:
            return DetectionOverrides(levels=overrides.levels)
        return overrides

    async def async_step_detection(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Every detection setting in one form; changes apply by reloading the entry.

        Stored are only the values that differ from the model's defaults, so that a new model's defaults
        reach the settings the user left alone.
        """
        info = (await async_get_model(self.hass, self._model)).info
        errors: dict[str, str] = {}
        if user_input is not None:
            if int(user_input[CONF_K]) > int(user_input[CONF_N]):
                errors[CONF_K] = "k_greater_than_n"
            elif not user_input[CONF_ENABLED_CLASSES]:
                errors[CONF_ENABLED_CLASSES] = "no_classes"
            else:
                self._form, self._choices = user_input, _choices(info, user_input)
                if _custom(self._choices):
                    return await self.async_step_custom_thresholds()
                return self._async_save(info, {})
        current = self._current(info)
        settings = resolve_detector_settings(info, current)
        values = {
            CONF_CLIPS: False,
            CONF_CLIP_KEEP_DAYS: DEFAULT_CLIP_KEEP_DAYS,
            CONF_CLIP_MAX: DEFAULT_CLIP_MAX,
            **self.config_entry.options,
            **{
                f"{CONF_SENSITIVITY_PREFIX}{label}": c for label, c in _current_choices(info, current).items()
            },
            CONF_K: settings.k,
            CONF_N: settings.n,
            CONF_HOLD_S: settings.hold_s,
            **(user_input or {}),
        }
        schema = vol.Schema(
            {
                **_sensitivity_fields(
                    info, {label: values[f"{CONF_SENSITIVITY_PREFIX}{label}"] for label in info.events}
                ),
                vol.Required(
                    CONF_ENABLED_CLASSES,
                    default=[
                        label for label in values[CONF_ENABLED_CLASSES] if label in _sounds_to_detect(info)
                    ],
                ): selector.SelectSelector(
                    selector.SelectSelectorConfig(
                        options=_sounds_to_detect(info), multiple=True, translation_key="sound_class"
                    )
                ),
                vol.Required(CONF_K, default=values[CONF_K]): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=1, max=10, step=1, mode=selector.NumberSelectorMode.BOX)
                ),
                vol.Required(CONF_N, default=values[CONF_N]): selector.NumberSelector(
                    selector.NumberSelectorConfig(min=1, max=10, step=1, mode=selector.NumberSelectorMode.BOX)
                ),
                vol.Required(CONF_HOLD_S, default=values[CONF_HOLD_S]): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=0,
                        max=60,
                        step=0.25,
                        unit_of_measurement="s",
                        mode=selector.NumberSelectorMode.BOX,
                    )
                ),
                # Off by default: clips are recordings of the home, kept on this machine's disk.
                vol.Required(CONF_CLIPS, default=values[CONF_CLIPS]): selector.BooleanSelector(),
                vol.Required(
                    CONF_CLIP_KEEP_DAYS, default=values[CONF_CLIP_KEEP_DAYS]
                ): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=1, max=365, step=1, unit_of_measurement="d", mode=selector.NumberSelectorMode.BOX
                    )
                ),
                vol.Required(CONF_CLIP_MAX, default=values[CONF_CLIP_MAX]): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=1, max=1000, step=1, mode=selector.NumberSelectorMode.BOX
                    )
                ),
            }
        )
        return self.async_show_form(
            step_id="detection",
            data_schema=schema,
            errors=errors,
            description_placeholders=_sensitivity_placeholders(info),
        )

    async def async_step_custom_thresholds(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """How sure the model must be for each sound set to a custom threshold."""
        info = (await async_get_model(self.hass, self._model)).info
        custom = _custom(self._choices)
        if user_input is not None:
            thresholds = {label: float(user_input[f"{CONF_THRESHOLD_PREFIX}{label}"]) for label in custom}
            return self._async_save(info, thresholds)
        current = self._current(info).thresholds
        defaults = {label: float(current.get(label, info.thresholds[label])) for label in custom}
        return self.async_show_form(
            step_id="custom_thresholds",
            data_schema=vol.Schema(_threshold_fields(defaults)),
            description_placeholders=_curve_placeholders(info, defaults),
        )

    def _async_save(self, info: ModelInfo, thresholds: Mapping[str, float]) -> ConfigFlowResult:
        """The new options: the model, sounds and clips, and only the detection values that override it."""
        form = self._form
        options = {
            CONF_MODEL: self._model,
            CONF_ENABLED_CLASSES: list(form[CONF_ENABLED_CLASSES]),
            CONF_CLIPS: bool(form[CONF_CLIPS]),
            CONF_CLIP_KEEP_DAYS: int(form[CONF_CLIP_KEEP_DAYS]),
            CONF_CLIP_MAX: int(form[CONF_CLIP_MAX]),
        }
        overrides = _overrides(
            self._choices,
            thresholds,
            k=int(form[CONF_K]),
            n=int(form[CONF_N]),
            hold_s=float(form[CONF_HOLD_S]),
        )
        return self.async_create_entry(data=with_overrides(options, overrides, info))

    # -- teaching a sound, and the listening test --------------------------------------------------

    @property
    def _runtime(self) -> SoundSentryRuntime:
        entry: SoundSentryConfigEntry = self.config_entry
        return entry.runtime_data

    async def _async_store(self) -> TaughtStore:
        return await TaughtStore.async_load(self.hass, self.config_entry.entry_id)

    def _take_errors(self) -> tuple[dict[str, str], dict[str, str]]:
        """The errors (and their placeholders) that a finished recording left for the next form."""
        errors, placeholders = self._errors, self._error_placeholders
        self._errors, self._error_placeholders = {}, {}
        return errors, placeholders

    def _fail(self, error: str, **placeholders: str) -> None:
        self._errors = {"base": error}
        self._error_placeholders = placeholders

    async def _async_recording(
        self,
        step_id: str,
        use: Callable[[npt.NDArray[np.float32]], Coroutine[Any, Any, bool]],
        done: str,
        failed: str,
    ) -> ConfigFlowResult:
        """Record `_seconds` of the source as the progress step `step_id`, then `use` the audio.

        Then on to `done`; or to `failed` (its errors set) where the recording cannot be had or `use`
        returns False (having set its errors).
        """

        async def record_and_use() -> bool:
            try:
                samples = await self._runtime.async_record(self._seconds)
            except RecordError as err:
                LOGGER.debug("%s: recording failed: %s", self.config_entry.title, err.reason)
                self._fail(err.reason, name=self.config_entry.title, seconds=f"{self._seconds:g}")
                return False
            return await use(samples)

        if self._task is None:
            # Not eagerly: a recording that fails at once must still show as progress, then its form.
            self._task = self.hass.async_create_task(
                record_and_use(), f"{DOMAIN} {step_id}", eager_start=False
            )
        if not self._task.done():
            return self.async_show_progress(
                step_id=step_id,
                progress_action=step_id,
                progress_task=self._task,
                description_placeholders={"seconds": f"{self._seconds:g}"},
            )
        task, self._task = self._task, None
        return self.async_show_progress_done(next_step_id=done if task.result() else failed)

    async def _async_listen(
        self, samples: npt.NDArray[np.float32], candidate: TaughtSound | None = None
    ) -> bool:
        """The listening test of `samples` on the source's settings (and `candidate`, as NEW_SOUND).

        Its report in `_report`; True (a recording that came is always tested).
        """
        runtime = self._runtime
        settings = runtime.detector_settings
        taught = {
            s.slug: s.sound for s in (await self._async_store()).sounds if s.slug in settings.thresholds
        }
        if candidate is not None:
            settings = with_taught(settings, {NEW_SOUND: candidate.thresholds[self._sensitivity]})
            taught[NEW_SOUND] = candidate
        self._report = await self.hass.async_add_executor_job(
            lambda: listening_test(
                runtime.model, settings, samples, taught=taught, alarms=runtime.alarm_settings
            )
        )
        return True

    async def async_step_listening_test(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The listening test: how long to listen; the recording starts when the form is sent."""
        if user_input is not None:
            self._seconds = float(user_input[CONF_SECONDS])
            return await self.async_step_listen()
        errors, placeholders = self._take_errors()
        return self.async_show_form(
            step_id="listening_test",
            data_schema=vol.Schema(_seconds_field(LISTEN_SECONDS, self._seconds)),
            errors=errors,
            description_placeholders={"name": self.config_entry.title, **placeholders},
        )

    async def async_step_listen(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The source records while the user makes or plays the sound."""
        return await self._async_recording("listen", self._async_listen, "listening_result", "listening_test")

    async def async_step_listening_result(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Each sound's highest score against its threshold, and the room's level; then the menu again."""
        if user_input is not None:
            return await self.async_step_init()
        report = self._report
        assert report is not None  # the listen step made it
        names = await _async_builtin_names(self.hass)
        names |= {s.slug: s.name for s in (await self._async_store()).sounds}
        return self.async_show_form(
            step_id="listening_result",
            data_schema=vol.Schema({}),
            errors={"base": "silent_source"} if report.silent else None,
            description_placeholders={
                "name": self.config_entry.title,
                "results": _report_lines(report, names),
                "level": f"{report.level_dbfs:.0f}",
                "peak_level": f"{report.peak_dbfs:.0f}",
                "seconds": f"{self._seconds:g}",
            },
        )

    async def async_step_teach_needs_accurate(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """The compact model cannot learn sounds: say where to switch."""
        return self.async_abort(reason="teach_needs_accurate")

    async def async_step_teach_name(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The new sound's name, its sensitivity, and how its examples come."""
        errors: dict[str, str] = {}
        if user_input is not None:
            name = str(user_input[CONF_NAME]).strip()
            if await self._async_name_taken(name):
                errors[CONF_NAME] = "name_clash"
            else:
                self._name, self._sensitivity = name, str(user_input["sensitivity"])
                self._examples, self._sound = [], None
                if user_input[CONF_METHOD] == "record":
                    return await self.async_step_teach_record()
                return await self.async_step_teach_upload()
        values = user_input or {}
        return self.async_show_form(
            step_id="teach_name",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_NAME, default=values.get(CONF_NAME, "")): str,
                    vol.Required(
                        "sensitivity", default=values.get("sensitivity", DEFAULT_LEVEL)
                    ): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=list(LEVEL_KEYS),
                            translation_key="sensitivity",
                            mode=selector.SelectSelectorMode.DROPDOWN,
                        )
                    ),
                    vol.Required(CONF_METHOD, default=values.get(CONF_METHOD, "upload")): (
                        selector.SelectSelector(
                            selector.SelectSelectorConfig(
                                options=list(TEACH_METHODS), translation_key="teach_method"
                            )
                        )
                    ),
                }
            ),
            errors=errors,
            description_placeholders={
                "name": self.config_entry.title,
                "minimum": str(MIN_EXAMPLES),
                "maximum": str(MAX_EXAMPLES),
            },
        )

    async def _async_name_taken(self, name: str) -> bool:
        """Whether `name` is empty or names a built-in sound (by key or name) or a taught one of this source."""
        wanted = name.casefold()
        builtin = await _async_builtin_names(self.hass)
        return (
            not name
            or slugify(name) in RESERVED_KEYS
            or any(wanted in (key.casefold(), text.casefold()) for key, text in builtin.items())
            or (await self._async_store()).name_clashes(name)
        )

    def _examples_placeholders(self) -> dict[str, str]:
        return {
            "sound": self._name,
            "count": str(len(self._examples)),
            "minimum": str(MIN_EXAMPLES),
            "maximum": str(MAX_EXAMPLES),
        }

    async def async_step_teach_upload(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """One example file at a time; sent without a file, the examples so far are learnt."""
        errors, placeholders = self._take_errors()
        if user_input is not None:
            if (file_id := user_input.get(CONF_FILE)) is None:
                if await self._async_learn():
                    return await self.async_step_teach_test()
                errors, placeholders = self._take_errors()
            elif len(self._examples) >= MAX_EXAMPLES:
                errors = {"base": "too_many_examples"}
            else:
                placeholders = {"example": str(len(self._examples) + 1)}
                try:
                    samples = await self.hass.async_add_executor_job(_read_upload, self.hass, file_id)
                    check_samples(samples, placeholders["example"])
                except (SourceError, ValueError) as err:
                    reason = err.reason if isinstance(err, TeachError) else "unreadable_example"
                    LOGGER.debug("Example %s of %s refused: %s", placeholders["example"], self._name, err)
                    errors = {"base": reason}
                else:
                    self._examples.append(samples)
        return self.async_show_form(
            step_id="teach_upload",
            data_schema=vol.Schema(
                {
                    vol.Optional(CONF_FILE): selector.FileSelector(
                        selector.FileSelectorConfig(accept=AUDIO_FILES)
                    )
                }
            ),
            errors=errors,
            description_placeholders={**self._examples_placeholders(), **placeholders},
        )

    async def async_step_teach_record(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """How long to record while the user makes the sound several times, with a pause between."""
        if user_input is not None:
            self._seconds = float(user_input[CONF_SECONDS])
            return await self.async_step_teach_recording()
        errors, placeholders = self._take_errors()
        return self.async_show_form(
            step_id="teach_record",
            data_schema=vol.Schema(_seconds_field(RECORD_SECONDS)),
            errors=errors,
            description_placeholders={
                "name": self.config_entry.title,
                **self._examples_placeholders(),
                **placeholders,
            },
        )

    async def async_step_teach_recording(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The source records; each time the sound rises above the room is an example; then learn."""

        async def learn(samples: npt.NDArray[np.float32]) -> bool:
            info = self._runtime.model.info
            window_s = info.window_samples / info.sample_rate_hz
            self._examples += cut_examples(samples, info.sample_rate_hz, min_length_s=window_s)
            del self._examples[MAX_EXAMPLES:]
            return await self._async_learn()

        return await self._async_recording("teach_recording", learn, "teach_test", "teach_record")

    async def _async_learn(self) -> bool:
        """Learn the sound from the examples so far (executor); False with the refusal set as the error."""
        model: LoadedModel = self._runtime.model
        try:
            bank = await self.hass.async_add_executor_job(load_bank, model.info)
            self._sound = await self.hass.async_add_executor_job(
                learn_from_samples, model, bank, self._name, list(self._examples)
            )
        except TeachError as err:
            LOGGER.debug("Teaching %s refused: %s", self._name, err)
            if err.reason == "silent_example":  # it can teach nothing: left out, the others kept
                del self._examples[int(err.placeholders["example"]) - 1]
            self._fail(err.reason, **{"count": str(len(self._examples)), **err.placeholders})
            return False
        return True

    async def async_step_teach_test(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Before saving: make the sound once more, and the source must hear it on fresh audio."""
        if user_input is not None:
            self._seconds = float(user_input[CONF_SECONDS])
            return await self.async_step_teach_listen()
        errors, placeholders = self._take_errors()
        return self.async_show_form(
            step_id="teach_test",
            data_schema=vol.Schema(_seconds_field(LISTEN_SECONDS, self._seconds)),
            errors=errors,
            description_placeholders={
                "name": self.config_entry.title,
                **self._examples_placeholders(),
                "peak": "-",
                "threshold": "-",
                **placeholders,
            },
        )

    async def async_step_teach_listen(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The source records while the user makes the new sound."""

        async def listen(samples: npt.NDArray[np.float32]) -> bool:
            assert self._sound is not None  # learnt before the test
            await self._async_listen(samples, self._sound)
            assert self._report is not None
            heard = self._report.result(NEW_SOUND)
            if not heard.detected:
                self._fail(
                    "silent_source" if self._report.silent else "taught_not_heard",
                    peak=f"{heard.peak:.3f}",
                    threshold=f"{heard.threshold:.3f}",
                )
            return heard.detected

        return await self._async_recording("teach_listen", listen, "teach_heard", "teach_test")

    async def async_step_teach_heard(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The test heard the new sound: save it, or test again."""
        assert self._report is not None
        heard = self._report.result(NEW_SOUND)
        return self.async_show_menu(
            step_id="teach_heard",
            menu_options=["teach_save", "teach_test"],
            description_placeholders={
                "sound": self._name,
                "peak": f"{heard.peak:.3f}",
                "threshold": f"{heard.threshold:.3f}",
            },
        )

    async def async_step_teach_save(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Store the sound with its examples; the source reloads and listens for it."""
        assert self._sound is not None
        store = await self._async_store()
        await store.async_add(self._name, self._examples, self._sound, self._sensitivity)
        return self._async_reload_and_finish()

    async def async_step_forget(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Forget a taught sound: its entities and examples go; the source reloads."""
        store = await self._async_store()
        if user_input is not None:
            await store.async_remove(str(user_input[CONF_SOUND]))
            return self._async_reload_and_finish()
        return self.async_show_form(
            step_id="forget", data_schema=vol.Schema({vol.Required(CONF_SOUND): _sound_selector(store)})
        )

    async def async_step_taught_sensitivity(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """A taught sound's sensitivity: its thresholds at every level were stored with it; the source reloads."""
        store = await self._async_store()
        if user_input is not None:
            await store.async_set_sensitivity(str(user_input[CONF_SOUND]), str(user_input["sensitivity"]))
            return self._async_reload_and_finish()
        levels = await _async_level_names(self.hass)
        first = store.sounds[0]  # the menu offers this step only with taught sounds
        return self.async_show_form(
            step_id="taught_sensitivity",
            data_schema=vol.Schema(
                {
                    vol.Required(CONF_SOUND, default=first.slug): _sound_selector(store),
                    vol.Required("sensitivity", default=first.sensitivity): selector.SelectSelector(
                        selector.SelectSelectorConfig(
                            options=list(LEVEL_KEYS),
                            translation_key="sensitivity",
                            mode=selector.SelectSelectorMode.DROPDOWN,
                        )
                    ),
                }
            ),
            description_placeholders={
                "name": self.config_entry.title,
                "sounds": "\n".join(f"- {s.name}: {levels[s.sensitivity]}" for s in store.sounds),
            },
        )

    def _async_reload_and_finish(self) -> ConfigFlowResult:
        """The entry's options stay; it reloads to hear its taught sounds as they are now."""
        self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)
        return self.async_create_entry(data=dict(self.config_entry.options))
