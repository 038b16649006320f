"""A taught sound the tests can rely on: real ESC-50 clips that the accurate model learns, chosen at test time.

Some ESC-50 categories are refused (docs/taught-sounds.md), and a new model, taught network or bank
changes which ones are taught; so, like `detection_plan`, the plan is derived when the tests run: the
first candidate category whose first examples are learnt, and a clip of it (not an example) that the
head hears well over its Balanced threshold offline.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.model import LoadedModel, load_model, model_path
from custom_components.sound_sentry.engine.taught import (
    DEFAULT_LEVEL,
    TaughtSound,
    TeachError,
    check_samples,
    example_windows,
    learn,
    load_bank,
)
from tests.audio import manifest, read_clip

CANDIDATES = ("toilet_flush", "clapping", "dog", "church_bells", "siren", "can_opening")
"""ESC-50 categories (by number below) in the order they are tried."""
ESC50_NUMBERS = {
    "dog": 0,
    "church_bells": 46,
    "toilet_flush": 18,
    "clapping": 22,
    "siren": 42,
    "can_opening": 34,
}
EXAMPLES = 5
MARGIN = 1.5
"""The clip heard must score this far over the threshold in logits (live windows fall between the offline ones)."""


@dataclass(frozen=True)
class TaughtPlan:
    """Examples that teach a sound, the sound learnt from them, and a clip of it that it hears."""

    category: str
    examples: list[npt.NDArray[np.float32]]
    example_paths: list[Path]
    sound: TaughtSound
    heard: npt.NDArray[np.float32]
    """Another clip of the category, which the sound hears offline."""


def category_clips(data_dir: Path, category: str) -> list[Path]:
    """An ESC-50 category's clips, in manifest order."""
    suffix = f"-{ESC50_NUMBERS[category]}.wav"
    return [
        data_dir / r["path"]
        for r in manifest(data_dir)
        if r["source"] == "esc50" and r["original"].endswith(suffix)
    ]


@cache
def accurate_model() -> LoadedModel:
    """The accurate model on the NumPy runtime."""
    return load_model(model_path("accurate"), "numpy")


def clipped(samples: npt.NDArray[np.float32]) -> bool:
    """Whether teaching refuses this audio as clipped (`check_samples`)."""
    try:
        check_samples(samples, "example")
    except TeachError:
        return True
    return False


def _logit(p: float) -> float:
    p = min(max(p, 1e-12), 1 - 1e-12)
    return float(np.log(p / (1 - p)))


@cache
def taught_plan(data_dir: Path) -> TaughtPlan:
    """The first candidate that the accurate model learns and hears (see the module); fails if none does."""
    model = accurate_model()
    bank = load_bank(model.info)
    for category in CANDIDATES:
        paths = category_clips(data_dir, category)
        clips = [read_clip(path) for path in paths]
        windows = [example_windows(model, clip) for clip in clips]
        usable = [
            i for i, clip in enumerate(clips) if not clipped(clip)
        ]  # the teach form refuses clipped ones
        for first in range(0, len(usable) - EXAMPLES, EXAMPLES):
            chosen = usable[first : first + EXAMPLES]
            try:
                sound = learn(category, [windows[i] for i in chosen], bank)
            except TeachError:
                continue
            threshold = _logit(sound.thresholds[DEFAULT_LEVEL])
            others = [i for i in range(len(clips)) if i not in chosen]
            scores = {i: float(np.median(sound.probabilities(windows[i].embeddings))) for i in others}
            best = max(others, key=lambda i: scores[i])
            if _logit(scores[best]) >= threshold + MARGIN:
                return TaughtPlan(
                    category=category,
                    examples=[clips[i] for i in chosen],
                    example_paths=[paths[i] for i in chosen],
                    sound=sound,
                    heard=clips[best],
                )
    raise AssertionError(f"none of {CANDIDATES} is taught by the accurate model and its bank")
