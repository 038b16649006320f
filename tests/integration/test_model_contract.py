"""What the user sees of a model comes from its sidecar; the static lists that must remain cover every
shipped model (a model with another sound fails here, not silently in a form)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from custom_components.sound_sentry import config_flow
from custom_components.sound_sentry.const import EVENT_CLASSES
from custom_components.sound_sentry.engine.model import SHIPPED_MODELS, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo

INTEGRATION = Path(config_flow.__file__).parent
ADDON_CONFIG = INTEGRATION.parents[1] / "addon" / "sound_sentry" / "config.yaml"


@pytest.fixture(params=sorted(SHIPPED_MODELS))
def info(request: pytest.FixtureRequest) -> ModelInfo:
    return ModelInfo.load(model_path(request.param))


def test_every_sound_of_a_shipped_model_has_texts(info: ModelInfo) -> None:
    """Home Assistant's translations are static: EVENT_CLASSES, strings.json and icons.json name each sound."""
    assert info.events
    assert set(info.events) <= set(EVENT_CLASSES)
    assert set(info.labels) - set(info.events) == {"background"}
    for name in ("strings.json", "translations/en.json"):
        strings = json.loads((INTEGRATION / name).read_text())
        sound_class = strings["selector"]["sound_class"]["options"]
        fields = strings["options"]["step"]["detection"]["data"]
        thresholds = strings["options"]["step"]["custom_thresholds"]["data"]
        entities = strings["entity"]
        for sound in info.events:
            assert sound in sound_class, (name, sound)
            assert f"sensitivity_{sound}" in fields, (name, sound)
            assert f"threshold_{sound}" in thresholds, (name, sound)
            assert sound in entities["binary_sensor"], (name, sound)
            assert f"{sound}_probability" in entities["sensor"], (name, sound)
    icons = json.loads((INTEGRATION / "icons.json").read_text())["entity"]
    for sound in info.events:
        assert sound in icons["binary_sensor"], sound
        assert f"{sound}_probability" in icons["sensor"], sound


def test_the_add_on_has_a_threshold_option_for_every_sound(info: ModelInfo) -> None:
    """The Supervisor's option schema is static too."""
    schema = yaml.safe_load(ADDON_CONFIG.read_text())["schema"]["sources"][0]
    assert {f"{sound}_threshold" for sound in info.events} <= set(schema)


def test_a_shipped_model_states_the_licence_of_its_weights(info: ModelInfo) -> None:
    """Part of the training audio is CC BY-NC 3.0: the sidecar says so, with where every source is listed."""
    assert info.licence.startswith("Non-commercial home use only.")
    assert "CC BY-NC 3.0" in info.licence
    assert "models/compact.md" in info.licence
