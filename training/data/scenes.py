"""'TV on' and 'kitchen' scenes: background clips mixed into 10 s household scenes, deterministic from a seed.

Each scene takes its parts from one split only, so the splits stay disjoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
import random

import numpy as np

from training.data.audio_io import SAMPLE_RATE_HZ, Samples

SCENE_S = 10.0
SPEECH = ("speech",)
MUSIC = ("music", "music-on-hold")
CLATTER = ("dishes", "household", "impact", "door", "tools", "water", "footsteps", "clapping")
HUM = ("appliance", "water", "ambience")


@dataclass(frozen=True)
class Part:
    """A background clip that a scene may use."""

    key: str
    category: str
    licence: str
    split: str


@dataclass(frozen=True)
class Scene:
    """A mixed scene: its parts with their start times (s) and gains (dB)."""

    name: str
    kind: str
    split: str
    parts: tuple[tuple[Part, float, float], ...]

    @property
    def licence(self) -> str:
        """All licences of the parts, joined (a mix is covered by each of them)."""
        return " AND ".join(sorted({ids for part, _, _ in self.parts for ids in part.licence.split(" AND ")}))


def plan(
    kind: str, count: int, parts: Sequence[Part], seed: int, split_of: Callable[[str], str]
) -> list[Scene]:
    """`count` scenes of `kind` ("tv" or "kitchen"), each from parts of its own split."""
    rng = random.Random(f"{seed}:{kind}")
    by_split_category: dict[tuple[str, str], list[Part]] = {}
    for part in sorted(parts, key=lambda p: p.key):
        by_split_category.setdefault((part.split, part.category), []).append(part)

    def pick(split: str, categories: Sequence[str]) -> Part | None:
        pool = [p for c in categories for p in by_split_category.get((split, c), [])]
        return rng.choice(pool) if pool else None

    scenes = []
    for number in range(count):
        name = f"{kind}_{number:04d}"
        split = split_of(f"scene-{kind}:{name}")
        chosen: list[tuple[Part | None, float, float]] = []
        if kind == "tv":
            chosen.append((pick(split, SPEECH), rng.uniform(0, 2), 0.0))
            chosen.append((pick(split, MUSIC), 0.0, rng.uniform(-18, -6)))
            if rng.random() < 0.5:
                chosen.append((pick(split, SPEECH), rng.uniform(3, 7), rng.uniform(-3, 3)))
            if rng.random() < 0.4:
                chosen.append((pick(split, CLATTER), rng.uniform(0, 9), rng.uniform(-12, 0)))
        else:
            chosen.append((pick(split, HUM), 0.0, rng.uniform(-20, -8)))
            chosen.extend(
                (pick(split, CLATTER), rng.uniform(0, 9), rng.uniform(-8, 2))
                for _ in range(rng.randint(2, 5))
            )
            if rng.random() < 0.6:
                chosen.append((pick(split, SPEECH + MUSIC), rng.uniform(0, 4), rng.uniform(-14, -4)))
        kept = tuple((p, start, gain) for p, start, gain in chosen if p is not None)
        if len(kept) >= 2:
            scenes.append(Scene(name=name, kind=kind, split=split, parts=kept))
    return scenes


def mix(scene: Scene, load: Callable[[str], Samples]) -> Samples:
    """The scene's audio: each part at its start and gain (parts normalised to -23 dBFS first), peak <= 0.9."""
    size = int(SCENE_S * SAMPLE_RATE_HZ)
    rng = np.random.default_rng(int(scene.name.rsplit("_", 1)[1]) + (0 if scene.kind == "tv" else 100_000))
    out = rng.standard_normal(size) * 10 ** (-62 / 20)  # a quiet room never is digital silence
    for index, (part, start_s, gain_db) in enumerate(scene.parts):
        samples = load(part.key).astype(np.float64)
        if index == 0 and scene.kind == "kitchen" and samples.size:  # the hum bed lasts the whole scene
            samples = np.tile(samples, size // samples.size + 1)[:size]
        start = int(start_s * SAMPLE_RATE_HZ)
        piece = samples[: max(0, out.size - start)]
        rms = np.sqrt(np.mean(piece**2) + 1e-12) if piece.size else 1.0
        out[start : start + piece.size] += piece * (10 ** ((-23 + gain_db) / 20) / rms)
    peak = np.max(np.abs(out)) + 1e-12
    if peak > 0.9:
        out *= 0.9 / peak
    return out.astype(np.float32)
