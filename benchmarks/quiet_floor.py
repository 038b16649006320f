"""What a level floor would cost and save: event windows below candidate floors, and a home day's quiet share.

    scripts/run python -m benchmarks.quiet_floor [--splits val test] [--floors -70 -60 -55 -50 -45]

Recall cost, on the development set's event clips (babycry, glassbreak, gunshot) of --splits: each clip
is streamed as the pipeline sees it arriving in a silent room (digital silence of a window less one hop
before and after it, the lowest level a window can have; windows every 0.25 s, each holding at least
0.25 s of the clip), with the model's default thresholds and k of n. Per floor: the share of event
windows below it, the windows that pass their class's threshold ("hits") below it, and the clips
detected (k of n hits) without and with the floor.

Quiet share of a home day: a 24 h schedule of hours with someone making noise (the share per hour is
below, 30% of the day in all) and quiet hours in between. Active time is the development set's
background clips of --splits (speech, TV, music, dogs, kitchen, street...) at their recorded levels:
their windows' levels are measured. Quiet time is the room's noise floor as the camera hears it, which
varies by camera and room; it is given for several noise floors. A window is skipped when its level is
below the floor; windows that straddle an active/quiet boundary are ignored (a few per hour).
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
import numpy.typing as npt

from benchmarks._common import DATA, model_note, model_path
from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.detector import EventDetector
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from custom_components.sound_sentry.engine.sources import FileSource

HOP = 2000  # 0.25 s at 8 kHz
# Share of each hour of the day (0-23) with sound in the room: asleep, the morning rush, a day with
# someone home part of the time, the evening (TV, cooking, talk), late evening.
ACTIVE_BY_HOUR = [0.05] * 7 + [0.5] * 2 + [0.25] * 8 + [0.6] * 6 + [0.2]
NOISE_FLOORS = (-75.0, -65.0, -55.0)


def clip(path: Path) -> npt.NDArray[np.int16]:
    with FileSource(path) as source:
        return np.concatenate(list(source))


def stream_windows(
    pipeline: Pipeline, pcm: npt.NDArray[np.int16], window: int
) -> list[tuple[float, dict[str, float]]]:
    """(level dBFS, probabilities) of each window of a clip in silence, as the pipeline streams it."""
    pcm = np.pad(pcm, window - HOP)
    pipeline.reset()
    return [(w.dbfs, w.probabilities) for w in pipeline.process(pcm).windows]


def main() -> None:
    """Print the recall cost per floor, then the quiet share of the home day."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--splits", nargs="+", default=["val", "test"])
    parser.add_argument("--floors", nargs="+", type=float, default=[-70.0, -60.0, -55.0, -50.0, -45.0])
    args = parser.parse_args()
    path = model_path()
    info = ModelInfo.load(path)
    pipeline = Pipeline(load_backend(path), info, hop_s=HOP / info.sample_rate_hz, min_level_dbfs=None)
    rows = [r for r in csv.DictReader((DATA / "manifest.csv").open()) if r["split"] in args.splits]
    print(f"model: {model_note(path)}; splits {', '.join(args.splits)}; thresholds {dict(info.thresholds)}")

    print(
        "\n| class | clips | windows | floor dBFS | windows below | hits below | clips detected | with floor |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label in info.labels[1:]:
        clips = [
            stream_windows(pipeline, clip(DATA / r["path"]), info.window_samples)
            for r in rows
            if r["label"] == label
        ]
        levels = np.array([lv for c in clips for lv, _ in c])
        hits = np.array([p[label] >= info.thresholds[label] for c in clips for _, p in c])
        for floor in args.floors:
            detected = [0, 0]
            for c in clips:
                for index, use_floor in enumerate((False, True)):
                    detector = EventDetector(list(info.labels), info.detector_settings())
                    events = []
                    for i, (level, probs) in enumerate(c):
                        quiet = use_floor and level < floor
                        values = np.array([0.0 if quiet else probs[name] for name in info.labels], np.float32)
                        events += detector.process(i * 0.25, values)
                    detected[index] += any(e.label == label for e in events)
            print(
                f"| {label} | {len(clips)} | {levels.size} | {floor:g} | {np.mean(levels < floor):.1%} "
                f"| {int(np.sum(hits & (levels < floor)))} of {int(hits.sum())} | {detected[0]} | {detected[1]} |"
            )

    background = [clip(DATA / r["path"]) for r in rows if r["label"] == "background"]
    active = np.concatenate(background)
    starts = range(0, active.size - info.window_samples + 1, HOP)
    squares = np.concatenate([[0.0], np.cumsum(active.astype(np.float64) ** 2)]) / 32768.0**2
    mean_square = (
        squares[np.array(starts) + info.window_samples] - squares[np.array(starts)]
    ) / info.window_samples
    active_levels = 10 * np.log10(np.maximum(mean_square, 1e-12))
    active_share = float(np.mean(ACTIVE_BY_HOUR))
    print(
        f"\nHome day: {active_share:.0%} of 24 h active ({len(background)} background clips, "
        f"{active.size / info.sample_rate_hz / 3600:.2f} h, {len(starts)} windows), the rest quiet."
    )
    print(
        "| floor dBFS | active windows below | day skipped, room noise floor "
        + " | ".join(f"{n:g} dBFS" for n in NOISE_FLOORS)
        + " |"
    )
    print("|---:|---:|" + "---:|" * len(NOISE_FLOORS))
    for floor in args.floors:
        below = float(np.mean(active_levels < floor))
        shares = [active_share * below + (1 - active_share) * (noise < floor) for noise in NOISE_FLOORS]
        print(f"| {floor:g} | {below:.1%} | " + " | ".join(f"{s:.0%}" for s in shares) + " |")


if __name__ == "__main__":
    main()
