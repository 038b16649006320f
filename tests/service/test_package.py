"""`pip install .` gives the engine and the `sound-sentry` command, without Home Assistant."""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import site
import subprocess
import sys
import venv

REPO = Path(__file__).resolve().parents[2]


def test_pip_install_gives_the_sound_sentry_command_without_home_assistant(tmp_path: Path) -> None:
    # A copy of the checkout (the build writes into it); a venv that also sees this environment's
    # packages (numpy, av, paho-mqtt, PyYAML) through a .pth file, so only Sound Sentry is installed.
    source = tmp_path / "checkout"
    shutil.copytree(
        REPO,
        source,
        ignore=shutil.ignore_patterns(
            ".git", ".dev", "build", "*.egg-info", "__pycache__", "training", "tests"
        ),
    )
    env = tmp_path / "venv"
    venv.create(env, with_pip=True)
    (purelib,) = Path(env / "lib").glob("python3*/site-packages")
    (purelib / "test_environment.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    pip = subprocess.run(
        [env / "bin" / "python", "-m", "pip", "install", "--quiet", "--no-deps", str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
        env=os.environ | {"PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert pip.returncode == 0, pip.stderr
    config = tmp_path / "bad.yaml"
    config.write_text("mqtt: {host: broker}\nsources:\n  - {name: A, url: 'rtsp://cam/1', model: huge}\n")
    # Run from elsewhere, so nothing comes from the checkout; blocking Home Assistant's import.
    blocker = tmp_path / "blocker"
    (blocker / "homeassistant").mkdir(parents=True)
    (blocker / "homeassistant" / "__init__.py").write_text(
        "raise ImportError('Home Assistant is not here')\n"
    )
    run = subprocess.run(
        [env / "bin" / "sound-sentry", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"} | {"PYTHONPATH": str(blocker)},
    )
    assert run.returncode == 2, run.stderr
    assert (
        run.stderr
        == "error: source 'A': unknown model 'huge': choose accurate or compact, or an .onnx file\n"
    )
    where = subprocess.run(
        [
            env / "bin" / "python",
            "-c",
            "import custom_components.sound_sentry.engine as e; print(e.__file__)",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert where.stdout.startswith(str(env)), where.stdout
    assert sys.prefix != str(env)
