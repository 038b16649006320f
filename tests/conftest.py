"""Shared fixtures. Importing the integration first makes `custom_components` resolve to this repo's
package rather than the test plugin's own testing_config (FACTS §2)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import custom_components.sound_sentry  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("SOUND_SENTRY_DATA") or REPO.parent / "shared" / "data")

# The RTSP test peer and its fixtures.
pytest_plugins = ["tests.peers"] if (Path(__file__).parent / "peers.py").exists() else []


if importlib.util.find_spec("pytest_homeassistant_custom_component") is not None:
    # Not in the training environment (scripts/train's venv: torch, no Home Assistant), which runs only
    # tests/training/test_model.py.

    @pytest.fixture(autouse=True)
    def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
        """Let Home Assistant load custom integrations in every test."""


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The labelled 8 kHz audio set (../shared/data)."""
    if not (DATA_DIR / "manifest.csv").is_file():
        pytest.fail(f"training data not found at {DATA_DIR}; set SOUND_SENTRY_DATA")
    return DATA_DIR
