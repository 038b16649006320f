"""Synthetic speech: espeak-ng (extracted from Debian) reading Tux Paint's stamp captions in many languages.

The captions (GPL-2.0, tuxpaint-stamps-default) exist in dozens of languages, so one text gives
sentences a home might hear on TV or from a visitor, in many voices, speeds and pitches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
import random
import subprocess

import numpy as np

from training.data import debian
from training.data.audio_io import SAMPLE_RATE_HZ, Samples, decode

TEXT_PACKAGE = "tuxpaint-stamps-default"
LICENCE = "GPL-2.0-only AND GPL-3.0-or-later"
"""Captions from Tux Paint (GPL-2.0) spoken by espeak-ng and its voice data (GPL-3.0-or-later)."""
VARIANTS = ("", "+m1", "+m2", "+m3", "+m4", "+m7", "+f1", "+f2", "+f3", "+f4", "+f5", "+klatt", "+croak")
LANGUAGES = (
    "en", "de", "fr", "es", "it", "pt", "nl", "pl", "ru", "uk", "tr", "ar", "cmn", "ja", "hi", "sv",
    "cs", "el", "fi", "hu", "ro", "vi", "ko", "da", "nb", "bg", "ca", "hr", "sk", "fa", "id", "he",
)  # fmt: skip
"""espeak-ng voices to use (the most spoken languages in homes that run Home Assistant, and more)."""
CAPTION_KEYS = {"en": "", "cmn": "zh_CN", "nb": "nb_NO"}
"""Caption language key in the .txt files, where it differs from the voice name."""


@dataclass(frozen=True)
class Utterance:
    """One synthetic speech clip: a few captions of one stamp family spoken by one voice."""

    group: str
    name: str
    voice: str
    speed_wpm: int
    pitch: int
    texts: tuple[str, ...]


def captions(stamp_txt: Path) -> dict[str, str]:
    """Language key ('' for English) -> caption, from a Tux Paint stamp .txt file."""
    out: dict[str, str] = {}
    for number, line in enumerate(stamp_txt.read_text(errors="replace").splitlines()):
        if number == 0 and "=" not in line:
            out[""] = line.strip()
        elif ".utf8=" in line:
            key, text = line.split(".utf8=", 1)
            out[key.strip()] = text.strip()
    return {k: v for k, v in out.items() if v}


def plan(cache: Path, count: int, seed: int) -> list[Utterance]:
    """`count` utterances chosen deterministically from `seed`; grouped by stamp folder."""
    root = debian.extract(TEXT_PACKAGE, cache) / "usr/share/tuxpaint/stamps"
    files = sorted(root.rglob("*.txt"))
    by_folder: dict[str, list[dict[str, str]]] = {}
    for path in files:
        by_folder.setdefault(str(path.parent.relative_to(root)), []).append(captions(path))
    folders = sorted(by_folder)
    rng = random.Random(seed)
    out = []
    for number in range(count):
        folder = rng.choice(folders)
        language = rng.choice(LANGUAGES)
        key = CAPTION_KEYS.get(language, language)
        texts = [c[key] for c in by_folder[folder] if key in c]
        if not texts:
            texts = [c[""] for c in by_folder[folder] if "" in c]
            language = "en"
        texts = sorted(set(texts))
        picked = tuple(rng.sample(texts, min(len(texts), rng.randint(2, 5))))
        out.append(
            Utterance(
                group=f"espeak-ng:{folder}",
                name=f"{number:05d}_{language}",
                voice=language + rng.choice(VARIANTS),
                speed_wpm=rng.randint(120, 210),
                pitch=rng.randint(15, 85),
                texts=picked,
            )
        )
    return out


def speak(utterance: Utterance, tools: Path) -> Samples:
    """The utterance as 8 kHz samples, with short pauses between the captions."""
    command = [
        str(tools / "usr/bin/espeak-ng"),
        f"--path={tools / 'usr/lib/x86_64-linux-gnu'}",
        "-v",
        utterance.voice,
        "-s",
        str(utterance.speed_wpm),
        "-p",
        str(utterance.pitch),
        "-g",
        "8",
        "--stdout",
    ]
    text = " ... ".join(utterance.texts).encode()  # on stdin: a caption may start with "-"
    wav = subprocess.run(
        command, input=text, env=debian.tool_env(tools), check=True, capture_output=True
    ).stdout
    samples = decode(wav)
    return samples[: 10 * SAMPLE_RATE_HZ] if samples.size else np.zeros(0, dtype=np.float32)
