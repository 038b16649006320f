"""The engine is a library of its own: it imports nothing from Home Assistant or the integration."""

from __future__ import annotations

import ast
from pathlib import Path

ENGINE = Path(__file__).resolve().parents[2] / "custom_components" / "sound_sentry" / "engine"
ALLOWED_THIRD_PARTY = {"av", "numpy", "onnxruntime"}


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
    import sys

    files = sorted(ENGINE.rglob("*.py"))
    assert len(files) >= 5
    offending = []
    for path in files:
        depth = len(path.relative_to(ENGINE).parts) - 1  # a module in a subpackage may go up one level
        for module, level in imported_modules(path):
            top = module.split(".")[0]
            if level > depth + 1:
                offending.append(f"{path.name}: {'.' * level}{module} leaves the engine")
            elif level == 0 and top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
                offending.append(f"{path.name}: import {module}")
    assert offending == []


def test_engine_runs_without_loading_home_assistant() -> None:
    """The CLI, training and benchmarks import the engine; that must not import Home Assistant."""
    import subprocess
    import sys

    code = (
        "import sys; import custom_components.sound_sentry.engine.cli; "
        "sys.exit('homeassistant' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ENGINE.parents[2], check=False)
    assert result.returncode == 0
