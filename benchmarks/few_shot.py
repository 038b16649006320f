"""Taught sounds from a few examples, on sounds that are not Sound Sentry's own, heard as streams.

    scripts/run env EXTRA=$HOME/.cache/sound-sentry/data-extra/manifest.csv \
        python -m benchmarks.few_shot [--trials 5] [--categories dog siren ...]

(The bank needs the set `python -m training.data.build` makes; naming its manifest lets `scripts/run`'s
Python 3.14 root file system see it.)

For each of twelve ESC-50 categories (dog, door knock, clock alarm, church bells, siren, water drops and
six more of a home), ten clips are the examples a user could record and the other thirty are what the
taught sound must then hear:

- a head is learnt (`engine/taught.py`) from 3, 5 and 10 of the ten (random draws, `--trials` of them
  for 3 and 5) on the accurate model's taught network (the pretrained mn04 embedding), against the bank
  that ships with it (with `--network`, another network's embedding and its own bank, `training.bank`,
  built at the start: about a minute);
- it listens at the "Balanced" sensitivity (`engine/taught.py`: the bank's extrapolated tail for about
  one false alarm a day, lowered towards the bank's highest score as far as the examples need), 1 of 1
  window, hold 2 s, through the engine's `EventDetector`;
- the thirty clips are placed 12-20 s apart in continuous background, in both constructions of
  `training.streams` (the recorded level; no level cue: 0..+15 dB over background at -45..-25 dBFS), and
  windowed as the live pipeline does (a window every hop; one below the level floor scores 0);
- false alarms are counted on that background alone, which the bank does not contain: ESC-50's 36 other
  background categories and the test split of the bank's sources (about 2.5 h per construction).

The baseline is what a user can set up today: an automation on the sound level sensor. It is given its
best case: the lowest level (1 dB steps) with at most 1 false alarm per hour on the very background
streams it is scored on.

Prints per category and shot count the median (over the draws) recall and false alarms per hour at the
Balanced threshold, and the head's best case (the highest recall at <= 1 false alarm per hour over a grid
of thresholds, chosen on the very streams it is scored on); then the medians over categories. The
figures of docs/taught-sounds.md come from here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS, level_dbfs
from custom_components.sound_sentry.engine.model import LoadedModel, TaughtNetwork, load_model, model_path
from custom_components.sound_sentry.engine.model_info import TaughtGraphInfo, file_sha256
from custom_components.sound_sentry.engine.taught import (
    BackgroundBank,
    ExampleWindows,
    TeachError,
    example_windows,
    fit_sound,
    learn,
    load_bank,
    taught_embeddings,
)
from training import streams
from training.audio import Clip, load_audio, read_clips
from training.bank import bank_clips, build as build_bank

CATEGORIES = (
    "dog",
    "door_wood_knock",
    "clock_alarm",
    "church_bells",
    "siren",
    "water_drops",
    "rooster",
    "cat",
    "car_horn",
    "toilet_flush",
    "vacuum_cleaner",
    "door_wood_creaks",
)
SHOTS = (3, 5, 10)
POOL = 10
"""Each category's clips that examples are drawn from; the rest are heard in streams."""
LEVEL = "balanced"
HOLD_S = 2.0
SEED = 20261207
BEST_GRID = (0.5, 0.7, 0.8, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999)
"""Thresholds tried for the head's best case: the highest recall at <= 1 false alarm per hour."""
Array = npt.NDArray[np.float32]
Figures = tuple[float, float, float]
"""Recall and false alarms per hour at the level's threshold (0, 0 if refused), then the best case's recall."""


@dataclass(frozen=True)
class Taught:
    """One draw of examples taught and scored: its `Figures` per construction, and whether it was refused."""

    figures: dict[str, Figures]
    refused: bool


@dataclass
class Track:
    """One stream as the engine saw it: each window's end, taught embedding (loud ones) and level."""

    ends: npt.NDArray[np.float64]
    embeddings: Array
    dbfs: npt.NDArray[np.float64]
    loud: npt.NDArray[np.bool_]
    """Windows at or above the level floor: the only ones a taught head scores (the others score 0)."""
    events: list[tuple[float, float]]
    hours: float


def category_of(clip: Clip) -> str | None:
    """The ESC-50 category of a background clip (None for other sources)."""
    return clip.kind.split(":", 1)[1] if clip.esc50_category is not None else None


def false_alarm_background() -> list[Clip]:
    """Background the bank does not contain: ESC-50's other categories, the test split of its sources."""
    in_bank = {c.path for c in bank_clips()}
    sources = {c.source for c in bank_clips()}
    return [
        c
        for c in read_clips("shared")
        if c.label == "background"
        and c.path not in in_bank
        and (
            (c.source == "esc50" and category_of(c) not in CATEGORIES)
            or (c.source in sources and c.split == "test")
        )
    ]


def track(model: LoadedModel, stream: streams.Stream) -> Track:
    """A stream's windows as the live pipeline takes them (a window every hop, rounded to whole frames):
    each one's level and, for the loud ones, the taught network's embedding (`taught_embeddings`)."""
    info, samples = model.info, stream.samples
    front_end = FrontEnd(info.front_end)
    window = info.window_samples
    hop = max(1, round(info.hop_s * info.sample_rate_hz / front_end.frame_shift)) * front_end.frame_shift
    starts = np.arange(0, samples.size - window + 1, hop)
    dbfs = np.array([level_dbfs(samples[s : s + window]) for s in starts], np.float64)
    loud = dbfs >= (DEFAULT_MIN_LEVEL_DBFS if DEFAULT_MIN_LEVEL_DBFS is not None else -np.inf)
    network = model.taught_backend()
    embeddings = np.zeros((len(starts), network.embedding_size), np.float32)
    rows = np.flatnonzero(loud)
    for first in range(0, len(rows), 64):
        batch = rows[first : first + 64]
        features = np.stack([front_end.features(samples[starts[i] : starts[i] + window]) for i in batch])
        embeddings[batch] = taught_embeddings(network, features)
    return Track(
        ends=(starts + window) / streams.RATE,
        embeddings=embeddings,
        dbfs=dbfs,
        loud=loud,
        events=[(e.onset_s, e.end_s) for e in stream.events],
        hours=samples.size / streams.RATE / 3600,
    )


def onsets(track_: Track, scores: npt.NDArray[np.float64], threshold: float) -> list[float]:
    """When the engine's detector turns on for these per-window scores (1 of 1, hold 2 s)."""
    detector = EventDetector(
        ["background", "taught"], DetectorSettings(thresholds={"taught": threshold}, k=1, n=1, hold_s=HOLD_S)
    )
    out = []
    for time_s, p in zip(track_.ends.tolist(), scores.tolist(), strict=True):
        out += [e.time_s for e in detector.process(time_s, np.array([1 - p, p], np.float32)) if e.active]
    return out


Score = Callable[[Track], npt.NDArray[np.float64]]
"""Per-window scores of a track, which the detector compares with a threshold."""


def recall(event_tracks: Sequence[Track], score: Score, threshold: float) -> float:
    """Share of placed events during which the detector turned on (`score`: Track -> window scores)."""
    heard = total = 0
    for t in event_tracks:
        found = onsets(t, score(t), threshold)
        for onset, end in t.events:
            total += 1
            heard += any(onset <= s <= end + streams.EVENT_SLACK_S for s in found)
    return heard / max(1, total)


def alarms_per_hour(background: Sequence[Track], score: Score, threshold: float) -> float:
    """False alarms per hour of background."""
    count = sum(len(onsets(t, score(t), threshold)) for t in background)
    return count / sum(t.hours for t in background)


def level_baseline(events: Sequence[Track], background: Sequence[Track]) -> tuple[float, float, float]:
    """(level, recall, FA/h) of the lowest level rule with <= 1 false alarm per hour on `background`."""

    for level in np.arange(-60.0, 1.0, 1.0).tolist():

        def above(t: Track, level: float = level) -> npt.NDArray[np.float64]:
            return (t.dbfs >= level).astype(np.float64)

        fa = alarms_per_hour(background, above, 0.5)
        if fa <= 1.0:
            return level, recall(events, above, 0.5), fa
    return 0.0, 0.0, 0.0


def main() -> None:
    """Build the streams, teach every category at every shot count, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--trials", type=int, default=5, help="random draws of the examples for 3 and 5 shots"
    )
    parser.add_argument(
        "--network",
        type=Path,
        help="taught sounds read this network instead (an .onnx with an `embedding` output on the accurate "
        "model's front end; its own bank is built)",
    )
    parser.add_argument("--categories", nargs="+", default=list(CATEGORIES), choices=CATEGORIES)
    args = parser.parse_args()
    started = time.perf_counter()
    model = load_model(model_path("accurate"))
    if args.network is None:
        bank = load_bank(model.info)  # what ships
    else:  # another taught network on the accurate model's front end and hop, with its own bank
        graph = TaughtGraphInfo(path=args.network, sha256=file_sha256(args.network))
        model = replace(
            model,
            info=replace(model.info, taught=graph),
            taught=TaughtNetwork(graph, "onnxruntime"),
        )
        bank = build_bank(model)
    fa_clips = false_alarm_background()
    audio = {c.path: load_audio(c.path) for c in fa_clips}
    bed = streams.Bed(fa_clips, audio, weighted=False)
    rng = np.random.default_rng(SEED)
    background: dict[str, list[Track]] = {}
    for construction in streams.CONSTRUCTIONS:
        stream = bed.draw(rng, 0, construction, order=rng.permutation(len(bed.clips)).tolist())
        background[construction] = [track(model, streams.finish(stream, int(rng.integers(1 << 30))))]
    print(
        f"bank: {len(bank.embeddings)} windows ({bank.model} {bank.version}, id {bank.id}, network "
        f"{model.info.taught.path.name if model.info.taught else '?'}); false-alarm background: "
        f"{len(fa_clips)} clips, {background['level'][0].hours:.2f} h per construction"
    )
    by_category: dict[str, list[Clip]] = {}
    for clip in read_clips("shared"):
        if clip.label == "background" and category_of(clip) in args.categories:
            by_category.setdefault(str(category_of(clip)), []).append(clip)
    rows: dict[str, dict[str, Any]] = {}
    for name in args.categories:
        clips = sorted(by_category[name], key=lambda c: str(c.path))
        order = rng.permutation(len(clips))
        pool = [clips[i] for i in order[:POOL]]
        heard_clips = [clips[i] for i in order[POOL:]]
        examples = [example_windows(model, load_audio(c.path)) for c in pool]
        events: dict[str, list[Track]] = {}
        for construction in streams.CONSTRUCTIONS:
            size_s = 10 + 16 * len(heard_clips)
            stream = bed.draw(rng, int(size_s * streams.RATE), construction)
            at = float(rng.uniform(6, 12))
            for clip in heard_clips:
                streams.place(
                    stream,
                    load_audio(clip.path),
                    1,
                    at,
                    construction=construction,
                    snr_db=float(rng.uniform(0, 15)),
                )
                at = (stream.events[-1].end_s if stream.events else at) + float(rng.uniform(12, 20))
            events[construction] = [track(model, streams.finish(stream, int(rng.integers(1 << 30))))]
        row: dict[str, Any] = {}
        for shots in SHOTS:
            trials = 1 if shots == POOL else args.trials
            results = []
            for _ in range(trials):
                chosen = [examples[i] for i in rng.choice(POOL, size=shots, replace=False)]
                results.append(teach_and_score(name, chosen, bank, events, background))
            row[str(shots)] = {
                construction: median_figures([r.figures[construction] for r in results])
                for construction in streams.CONSTRUCTIONS
            }
            row[f"refused {shots}"] = sum(r.refused for r in results)
        row["level"] = {c: level_baseline(events[c], background[c]) for c in streams.CONSTRUCTIONS}
        rows[name] = row
        print(f"{name}: {format_row(row)}", flush=True)
    print()
    print(table(rows))
    print(f"\n{time.perf_counter() - started:.0f} s")


def teach_and_score(
    name: str,
    examples: Sequence[ExampleWindows],
    bank: BackgroundBank,
    events: dict[str, list[Track]],
    background: dict[str, list[Track]],
) -> Taught:
    """Teach from `examples` and score the head in each construction (a refused one only at its best)."""
    try:
        sound = learn(name, examples, bank)
        refused = False
    except TeachError:
        sound = fit_sound(name, [e.positives() for e in examples], bank)
        refused = True
    threshold = sound.thresholds[LEVEL]

    def score(t: Track) -> npt.NDArray[np.float64]:
        return np.where(t.loud, sound.probabilities(t.embeddings), 0.0)  # quiet windows score 0, as live

    figures: dict[str, Figures] = {}
    for c in streams.CONSTRUCTIONS:
        at_level = (
            (0.0, 0.0)
            if refused
            else (recall(events[c], score, threshold), alarms_per_hour(background[c], score, threshold))
        )
        best = max(
            (
                recall(events[c], score, t)
                for t in BEST_GRID
                if alarms_per_hour(background[c], score, t) <= 1.0
            ),
            default=0.0,
        )
        figures[c] = (*at_level, best)
    return Taught(figures, refused)


def median_figures(figures: Sequence[Figures]) -> Figures:
    """Each figure's median over draws (or categories)."""
    recall_, alarms, best = (float(np.median(column)) for column in zip(*figures, strict=True))
    return recall_, alarms, best


def cell(figures: Figures, refused: int = 0) -> str:
    """Recall @ false alarms per hour at the level's threshold, then the best case at <= 1 per hour."""
    at_level = "refused" if refused and not figures[0] else f"{figures[0]:.0%} @ {figures[1]:.1f}/h"
    return f"{at_level} (best {figures[2]:.0%})"


def format_row(row: dict[str, Any]) -> str:
    """One category's figures on one line, for the log."""
    parts = []
    for construction in streams.CONSTRUCTIONS:
        cells = [f"{s}-shot {cell(row[str(s)][construction])}" for s in SHOTS]
        level, rec, fa = row["level"][construction]
        parts.append(
            f"{construction}: " + ", ".join(cells) + f"; level >= {level:.0f} dBFS {rec:.0%} @ {fa:.1f}/h"
        )
    return " | ".join(parts)


def table(rows: dict[str, dict[str, Any]]) -> str:
    """Markdown: per category and construction, each shot count's figures (`cell`), the level rule; medians."""
    lines = [
        "| sound | construction | 3 examples | 5 examples | 10 examples | level rule (best case) |",
        "|---|---|---|---|---|---|",
    ]
    for construction in streams.CONSTRUCTIONS:
        for name, row in rows.items():
            cells = [
                cell(row[str(s)][construction], row[f"refused {s}"])
                + (f", {row[f'refused {s}']} refused" if row[f"refused {s}"] else "")
                for s in SHOTS
            ]
            level, rec, _fa = row["level"][construction]
            lines.append(
                f"| {name} | {construction} | " + " | ".join(cells) + f" | {rec:.0%} (>= {level:.0f} dBFS) |"
            )
        medians = [cell(median_figures([r[str(s)][construction] for r in rows.values()])) for s in SHOTS]
        level_median = np.median([r["level"][construction][1] for r in rows.values()])
        lines.append(f"| **median** | {construction} | " + " | ".join(medians) + f" | {level_median:.0%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
