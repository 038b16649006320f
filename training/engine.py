"""Import the integration's HA-free engine without running the integration's `__init__`.

The training venv is Python 3.11 (the CPU torch wheel) and has no Home Assistant, while
`custom_components/sound_sentry/__init__.py` imports homeassistant. The engine itself imports nothing
from it, so register the package as a bare namespace (no `__init__` executed) when it is not loaded yet.
"""

from __future__ import annotations

import importlib.util
import sys
import types

from training.audio_paths import REPO_ROOT

_PACKAGE = "custom_components.sound_sentry"


def _register_bare_package() -> None:
    if _PACKAGE in sys.modules:
        return
    if importlib.util.find_spec("homeassistant") is not None:
        return  # the real package imports fine here
    import custom_components

    module = types.ModuleType(_PACKAGE)
    module.__path__ = [str(REPO_ROOT / "custom_components" / "sound_sentry")]
    sys.modules[_PACKAGE] = module
    custom_components.sound_sentry = module  # type: ignore[attr-defined]


_register_bare_package()

from custom_components.sound_sentry.engine.detector import (  # noqa: E402
    DetectorSettings,
    EventDetector,
    SoundEvent,
)
from custom_components.sound_sentry.engine.fbank import (  # noqa: E402
    FbankExtractor,
    FbankSettings,
    normalise,
)

__all__ = ["DetectorSettings", "EventDetector", "FbankExtractor", "FbankSettings", "SoundEvent", "normalise"]
