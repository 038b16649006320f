"""The engine is a library of its own: it imports nothing from Home Assistant or the integration, and
runs on Python 3.11 (the training environment's) as well as Home Assistant's."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import subprocess
import sys

import numpy as np

from tests.audio import write_wav

REPO = Path(__file__).resolve().parents[2]
ENGINE = REPO / "custom_components" / "sound_sentry" / "engine"
MODEL = REPO / "tests" / "fixtures" / "resnetse_random.onnx"
ALLOWED_THIRD_PARTY = {"av", "numpy", "onnxruntime"}
SERVICE = ENGINE / "service"
SERVICE_THIRD_PARTY = {"paho", "yaml"}
"""The MQTT service's extra (`sound-sentry[service]`): only its own package may import these."""
OLDEST_PYTHON = (3, 11)
"""The oldest Python the engine runs on: training's (scripts/train)."""

WITHOUT_HOME_ASSISTANT = """
import importlib.abc, runpy, sys

class NoHomeAssistant(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "homeassistant":
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, NoHomeAssistant())
try:
    import homeassistant.core
except ModuleNotFoundError:
    pass
else:
    sys.exit("the blocker let Home Assistant in")
sys.argv = ["engine", *sys.argv[1:]]
runpy.run_module("custom_components.sound_sentry.engine", run_name="__main__", alter_sys=True)
"""
"""Runs the documented command line (`python -m custom_components.sound_sentry.engine ...`) with its
arguments in an interpreter in which no `homeassistant` module can be imported."""


def imported_modules(path: Path) -> list[tuple[str, int]]:
    """(module, relative level) of every import in a file."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, 0) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.module or "", node.level))
    return found


def test_engine_imports_only_stdlib_numpy_av_onnxruntime_and_itself() -> None:
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 5
    offending = []
    for path in files:
        depth = len(path.relative_to(ENGINE).parts) - 1  # a module in a subpackage may go up one level
        for module, level in imported_modules(path):
            top = module.split(".")[0]
            if level > depth + 1:
                offending.append(f"{path.name}: {'.' * level}{module} leaves the engine")
            elif (
                level == 0
                and top not in sys.stdlib_module_names
                and top not in ALLOWED_THIRD_PARTY
                and not (top in SERVICE_THIRD_PARTY and path.is_relative_to(SERVICE))
            ):
                offending.append(f"{path.name}: import {module}")
    assert offending == []


def test_engine_runs_without_loading_home_assistant() -> None:
    """The CLI, training and benchmarks import the engine; that must not import Home Assistant."""
    code = (
        "import sys; import custom_components.sound_sentry.engine.cli; "
        "sys.exit(bool({'homeassistant', 'paho', 'yaml'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ENGINE.parents[2], check=False)
    assert result.returncode == 0


def test_engine_scans_a_recording_where_home_assistant_cannot_be_imported(tmp_path: Path) -> None:
    """`python -m custom_components.sound_sentry.engine scan` classifies a recording in an interpreter
    that cannot import Home Assistant at all (as the training environment and the MQTT service are):
    neither the engine nor the integration's package around it needs it."""
    seconds = 3
    time_s = np.arange(seconds * 8000) / 8000
    wav = write_wav(tmp_path / "tone.wav", (0.3 * np.sin(2 * np.pi * 440 * time_s)).astype(np.float32))
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_HOME_ASSISTANT, "scan", str(wav), "--model", str(MODEL), "--jsonl"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (0, "")
    windows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(windows) >= 2
    assert windows[-1]["end_s"] == seconds
    assert set(windows[0]["probs"]) >= {"background", "babycry"}


def test_every_engine_module_parses_as_python_3_11() -> None:
    """No syntax newer than training's Python (e.g. `type X = ...`, `def f[T]`) in the engine.

    `ast.parse` checks what its `feature_version` covers; ruff's per-file target version for the engine
    (pyproject.toml) also rejects the rest, such as f-strings that reuse their quotes.
    """
    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 5
    too_new = []
    for path in files:
        try:
            ast.parse(path.read_text(), filename=str(path), feature_version=OLDEST_PYTHON)
        except SyntaxError as err:
            too_new.append(f"{path.relative_to(ENGINE)}:{err.lineno}: {err.msg}")
    assert too_new == []
