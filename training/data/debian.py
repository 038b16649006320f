"""Debian packages by name: `apt-get download` into a cache, `dpkg-deb -x` beside it."""

from __future__ import annotations

import os
from pathlib import Path
import shutil
import subprocess

TOOL_PACKAGES = (
    "espeak-ng",
    "libespeak-ng1",
    "libpcaudio0",
    "libsonic0",
    "espeak-ng-data",
    "fluidsynth",
    "libfluidsynth3",
    "libinstpatch-1.0-2",
    "timgm6mb-soundfont",
)
"""Tools run from their extracted packages (no system install): speech synthesis and MIDI rendering."""


def deb_file(package: str, debs: Path) -> Path:
    """The cached .deb of `package`, downloaded with `apt-get download` if missing."""
    found = sorted(debs.glob(f"{package}_*.deb"))
    if found:
        return found[-1]
    debs.mkdir(parents=True, exist_ok=True)
    # apt's `_apt` user cannot write into root's cache; download as root (no sandbox) on purpose.
    subprocess.run(
        ["apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", package],
        cwd=debs,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        raise RuntimeError(f"apt-get download {package} left no .deb in {debs}")
    return found[-1]


def extract(package: str, cache: Path) -> Path:
    """The package's files under `cache/pkgs/<package>/` (extracted once, marked by a stamp)."""
    deb = deb_file(package, cache / "debs")
    root = cache / "pkgs" / package
    stamp = root / ".extracted"
    if stamp.exists() and stamp.read_text() == deb.name:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    stamp.write_text(deb.name)
    return root


def tools_root(cache: Path) -> Path:
    """All TOOL_PACKAGES extracted into one tree, `cache/tools/`."""
    root = cache / "tools"
    stamp = root / ".extracted"
    wanted = " ".join(deb_file(p, cache / "debs").name for p in TOOL_PACKAGES)
    if stamp.exists() and stamp.read_text() == wanted:
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for package in TOOL_PACKAGES:
        subprocess.run(["dpkg-deb", "-x", str(deb_file(package, cache / "debs")), str(root)], check=True)
    stamp.write_text(wanted)
    return root


def tool_env(root: Path) -> dict[str, str]:
    """Environment that makes the extracted tools find their libraries."""
    env = dict(os.environ)
    libs = [str(root / "usr/lib/x86_64-linux-gnu"), env.get("LD_LIBRARY_PATH", "")]
    env["LD_LIBRARY_PATH"] = ":".join(p for p in libs if p)
    return env


def copyright_text(package: str, cache: Path) -> str:
    """The package's /usr/share/doc/<package>/copyright (for reviewing licences)."""
    path = extract(package, cache) / "usr/share/doc" / package / "copyright"
    return path.read_text(errors="replace") if path.exists() else ""
