"""Teacher scores: what EfficientAT mn04 (an AudioSet tagger) hears in each clip, computed once and cached.

`python -m training.teacher` scores every event clip of the training data in 2 s windows at a 0.5 s hop
(the tagger's own setting; 8 kHz audio upsampled to its 32 kHz) and stores, per window, its cry and
gunshot scores (AudioSet "Baby cry, infant cry" / "Crying, sobbing", and "Gunshot, gunfire", "Machine
gun", "Fusillade", "Artillery fire", "Cap gun"). Glass breaking is not scored: the tagger does not hear
it through 8 kHz (its README). The trainer (`--distill`) uses the scores as soft targets: a window of a
cry clip in which the teacher hears no cry (a pause, a cough, the room) is a weaker cry example.

The tagger lives in ../shared/peers/efficientat/ and is never shipped.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
import json
import sys
import time

import numpy as np
import numpy.typing as npt

from training.audio import Clip, load_audio, read_clips
from training.audio_paths import REPO_ROOT, cache_dir

PEER = REPO_ROOT.parent / "shared" / "peers" / "efficientat"
WINDOW_S = 2.0
HOP_FRAMES = 50
"""Teacher windows start every 0.5 s = 50 FBANK frames."""
CLASSES = {
    "babycry": ("Baby cry, infant cry", "Crying, sobbing"),
    "gunshot": ("Gunshot, gunfire", "Machine gun", "Fusillade", "Artillery fire", "Cap gun"),
}


def upsample4(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """8 kHz -> 32 kHz, band-limited (zero-padded spectrum)."""
    spectrum = np.fft.rfft(samples)
    padded = np.zeros(2 * samples.size + 1, dtype=np.complex128)
    padded[: spectrum.size] = spectrum
    return (np.fft.irfft(padded, 4 * samples.size) * 4).astype(np.float32)


def teacher_windows(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """2 s windows at 32 kHz every 0.5 s (a short clip: one window, zero-padded)."""
    up = upsample4(samples)
    size, hop = int(WINDOW_S * 32000), HOP_FRAMES * 320
    count = max(1, 1 + (up.size - size + hop - 1) // hop) if up.size > size else 1
    out = np.zeros((count, size), dtype=np.float32)
    for index in range(count):
        piece = up[index * hop : index * hop + size]
        out[index, : piece.size] = piece
    return out


CACHE_VERSION = 1


def teacher_scores(
    clips: Sequence[Clip], log: Callable[[str], None] = print
) -> dict[str, dict[str, list[float]]]:
    """Clip path -> class -> score per teacher window (cry and gunshot clips only), cached per clip."""
    path = cache_dir() / "teacher" / f"mn04-v{CACHE_VERSION}.json"
    stored: dict[str, dict[str, list[float]]] = json.loads(path.read_text()) if path.is_file() else {}
    missing = [c for c in clips if c.label in CLASSES and str(c.path) not in stored]
    if missing:
        stored.update(_score(missing, log))
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(stored))
        partial.rename(path)
    return {str(c.path): stored[str(c.path)] for c in clips if c.label in CLASSES}


def _score(clips: Sequence[Clip], log: Callable[[str], None]) -> dict[str, dict[str, list[float]]]:
    import torch

    sys.path.insert(0, str(PEER))
    import teacher  # type: ignore[import-not-found]

    torch.set_num_threads(1)
    model, mel = teacher.load()
    columns = {label: [teacher.LABELS.index(name) for name in names] for label, names in CLASSES.items()}
    started, seconds = time.time(), 0.0
    out: dict[str, dict[str, list[float]]] = {}
    for clip in clips:
        samples = load_audio(clip.path)
        seconds += samples.size / 8000
        probs = teacher.predict(model, mel, teacher_windows(samples))
        out[str(clip.path)] = {
            label: probs[:, cols].max(axis=1).round(4).tolist() for label, cols in columns.items()
        }
    elapsed = time.time() - started
    log(
        f"teacher scored {len(clips)} clips ({seconds / 3600:.2f} h) in {elapsed:.0f} s "
        f"({1000 * elapsed / max(seconds, 1e-9):.1f} ms per audio second)"
    )
    return out


def main() -> None:
    """Score the training data's event clips and print how the teacher hears each class."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="all", help="training data (training.audio.read_clips)")
    args = parser.parse_args()
    clips = read_clips(args.data)
    scores = teacher_scores(clips)
    for label in CLASSES:
        own = [max(v[label]) for c in clips if c.label == label and (v := scores.get(str(c.path)))]
        other = [
            max(v[label])
            for c in clips
            if c.label in CLASSES and c.label != label and (v := scores.get(str(c.path)))
        ]
        print(
            f"{label}: best window of its own clips median {np.median(own):.3f} (p10 {np.quantile(own, 0.1):.3f}); "
            f"of the other class's clips median {np.median(other):.3f} (p90 {np.quantile(other, 0.9):.3f})"
        )


if __name__ == "__main__":
    main()
