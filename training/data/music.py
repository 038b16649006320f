"""Music from MIDI files in Debian packages, rendered by fluidsynth with a General MIDI soundfont."""

from __future__ import annotations

from pathlib import Path
import subprocess
import tempfile

from training.data import debian
from training.data.audio_io import Samples, decode

SOUNDFONT = "usr/share/sounds/sf2/TimGM6mb.sf2"
SOUNDFONT_LICENCE = "GPL-2.0-only"
MIDI_SUFFIXES = (".mid", ".midi")


def render(midi: Path, tools: Path) -> Samples:
    """The MIDI file played through TimGM6mb, as 8 kHz samples."""
    with tempfile.TemporaryDirectory() as folder:
        wav = Path(folder) / "out.wav"
        command = [
            str(tools / "usr/bin/fluidsynth"),
            "-ni",
            "-q",
            "-r",
            "22050",
            "-g",
            "0.6",
            "-F",
            str(wav),
            str(tools / SOUNDFONT),
            str(midi),
        ]
        subprocess.run(command, env=debian.tool_env(tools), check=True, capture_output=True, timeout=600)
        return decode(wav)
