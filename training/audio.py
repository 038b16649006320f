"""Clip loading, windowing and features for training and evaluation (NumPy only, no torch).

Features come from the engine's FBANK so that training sees exactly what the integration computes.
"""

from __future__ import annotations

from collections.abc import Sequence
import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise
from training.audio_paths import data_dir, extra_data_dir
from training.data.audio_io import decode
from training.data.sources import is_open
from training.labels import LABELS

SAMPLE_RATE_HZ = 8000
WINDOW_SAMPLES = 15_480
NUM_FRAMES = 192
NUM_MEL_BINS = 24
_EXTRACTOR = FbankExtractor()
ESC50_CATEGORIES = (
    "dog",
    "rooster",
    "pig",
    "cow",
    "frog",
    "cat",
    "hen",
    "insects",
    "sheep",
    "crow",
    "rain",
    "sea_waves",
    "crackling_fire",
    "crickets",
    "chirping_birds",
    "water_drops",
    "wind",
    "pouring_water",
    "toilet_flush",
    "thunderstorm",
    "crying_baby",
    "sneezing",
    "clapping",
    "breathing",
    "coughing",
    "footsteps",
    "laughing",
    "brushing_teeth",
    "snoring",
    "drinking_sipping",
    "door_wood_knock",
    "mouse_click",
    "keyboard_typing",
    "door_wood_creaks",
    "can_opening",
    "washing_machine",
    "vacuum_cleaner",
    "clock_alarm",
    "clock_tick",
    "glass_breaking",
    "helicopter",
    "chainsaw",
    "siren",
    "car_horn",
    "engine",
    "train",
    "church_bells",
    "airplane",
    "fireworks",
    "hand_saw",
)


@dataclass(frozen=True)
class Clip:
    """One manifest row."""

    path: Path
    label: str
    source: str
    group: str
    split: str
    duration_s: float
    original: str
    licence: str = ""

    @property
    def label_index(self) -> int:
        """Position of the label in LABELS."""
        return LABELS.index(self.label)

    @property
    def esc50_category(self) -> int | None:
        """ESC-50 category number (last number of the original name), None for other sources."""
        if self.source != "esc50":
            return None
        return int(Path(self.original).stem.rsplit("-", 1)[1])

    @property
    def kind(self) -> str:
        """What the clip is, for reports: `esc50:<category>` for ESC-50, else the source."""
        category = self.esc50_category
        return self.source if category is None else f"esc50:{ESC50_CATEGORIES[category]}"


def held_out(clip: Clip, hold_out: Sequence[str]) -> bool:
    """Whether a clip belongs to a held-out unit: `source`, `label:source` or `label:source:group`."""
    for unit in hold_out:
        parts = unit.split(":", 2)
        if len(parts) == 1 and clip.source == parts[0]:
            return True
        if (
            len(parts) >= 2
            and clip.label == parts[0]
            and clip.source == parts[1]
            and (len(parts) == 2 or clip.group == parts[2] or clip.group.startswith(parts[2] + "+"))
        ):
            return True
    return False


def read_manifest(root: Path | None = None) -> list[Clip]:
    """All rows of manifest.csv, paths made absolute."""
    root = root or data_dir()
    with (root / "manifest.csv").open(newline="") as handle:
        return [
            Clip(
                path=root / row["path"],
                label=row["label"],
                source=row["source"],
                group=row["group"],
                split=row["split"],
                duration_s=float(row["duration_s"]),
                original=row["original"],
                licence=row.get("licence", ""),
            )
            for row in csv.DictReader(handle)
        ]


DATA_CHOICES = ("shared", "all", "open", "extra")


def read_clips(data: str = "shared", extra_sources: frozenset[str] | None = None) -> list[Clip]:
    """The clips training and evaluation use.

    `shared`: ../shared/data only. `all`: plus the set built by `python -m training.data.build` (only the
    `extra_sources` named, if given, so that a run stays reproducible as that set grows). `open`: `all`,
    keeping only openly licensed clips (no CC BY-NC, no unstated licence). `extra`: the built set alone.
    """
    if data not in DATA_CHOICES:
        raise ValueError(f"data must be one of {DATA_CHOICES}, not {data!r}")
    clips = read_manifest()
    if data == "shared":
        return clips
    root = extra_data_dir()
    if not (root / "manifest.csv").is_file():
        raise FileNotFoundError(
            f"{root / 'manifest.csv'} is missing: build it with `python -m training.data.build`"
        )
    extra = [c for c in read_manifest(root) if extra_sources is None or c.source in extra_sources]
    if data == "extra":
        return extra
    clips += extra
    return [c for c in clips if is_open(c.licence)] if data == "open" else clips


def load_audio(path: Path) -> npt.NDArray[np.float32]:
    """Decode a mono 8 kHz file to float32 in [-1, 1]."""
    return decode(path)


def features(window: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Mean-normalised FBANK of one 15,480-sample window: (192, 24) float32."""
    return normalise(_EXTRACTOR.compute(window))


def fit_window(
    samples: npt.NDArray[np.float32], start: int, size: int = WINDOW_SAMPLES
) -> npt.NDArray[np.float32]:
    """`size` samples (a model window) starting at `start`, zero-padded where the clip ends."""
    out = np.zeros(size, dtype=np.float32)
    start = max(0, start)
    piece = samples[start : start + size]
    out[: piece.size] = piece
    return out


def energy_centre(samples: npt.NDArray[np.float32], hop: int = 80, size: int = WINDOW_SAMPLES) -> int:
    """Start of the window of `size` samples that holds the most energy (where the event is)."""
    if samples.size <= size:
        return 0
    frame_energy = np.add.reduceat(samples.astype(np.float64) ** 2, np.arange(0, samples.size, hop))
    per_window = np.convolve(frame_energy, np.ones(size // hop), mode="valid")
    return min(int(np.argmax(per_window)) * hop, samples.size - size)
