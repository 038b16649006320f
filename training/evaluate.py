"""Evaluate a shipped model the way a live stream uses it: `python -m training.evaluate`.

The engine's own `Pipeline` and `EventDetector` on onnxruntime (no torch), so that the CI test can run
it in the Home Assistant environments and every model is scored exactly as a live source runs it: its
front end, a window every hop of the model (its sidecar's `hop_s`), the level floor, debounced by the detector (k of the last n windows
over the threshold start an event; hold_s without one ends it).

- Events as users meet them: each event clip is added, at its own level, into the split's continuous
  background stream, with 4 s of that background before and after it (a "scene"). A clip counts as
  detected as the class that started an event between its onset and 2 s after its end (the one with
  the highest peak if several did), else as background. The delay from the clip's onset (its first
  frame within 25 dB of its loudest) to the end of the window that started the event is the latency a
  live stream sees, less the engine's own few milliseconds.
- Background clips of a split are streamed as ONE continuous stream (clips back to back); every event
  start there is a false alarm, attributed to the clip where its window ends.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
import csv
from dataclasses import dataclass, replace
import functools
import json
from pathlib import Path
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.backends import BackendChoice
from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, load_model, model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from training.audio import LABELS, Clip, energy_centre, fit_window, load_audio, read_clips

SAMPLE_RATE_HZ = 8000
PAD_S = 1.5
"""Quiet noise around a clip streamed on its own (cross-source clip scores)."""
LEAD_S = 4.0
"""Background before and after each event in a scene."""
NOISE_DBFS = -60.0
"""Level of the quiet microphone noise added to every stream (real microphones are never digitally silent)."""

Array = npt.NDArray[np.float32]


def quiet_noise(size: int, seed: int) -> Array:
    """Deterministic white noise at NOISE_DBFS."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def stream(pipeline: Pipeline, samples: Array) -> tuple[Array, npt.NDArray[np.float64]]:
    """Probabilities [windows, labels] and window end times of one stream, through the engine's pipeline.

    Exactly what a live source computes: its front end, a window every hop, and the level floor (a
    quieter window is not classified: "background, certain").
    """
    pipeline.reset()
    windows = pipeline.process(samples).windows
    labels = pipeline.info.labels
    probs = np.array([[w.probabilities[label] for label in labels] for w in windows], dtype=np.float32)
    return probs.reshape(-1, len(labels)), np.array([w.end_s for w in windows], dtype=np.float64)


def stream_pipeline(path: Path, backend: BackendChoice = "onnxruntime") -> Pipeline:
    """The engine's pipeline for a model file, as Home Assistant runs it (default hop, level floor)."""
    loaded = load_model(path, backend)
    return Pipeline.for_model(loaded, min_level_dbfs=DEFAULT_MIN_LEVEL_DBFS)


@dataclass
class SplitStreams:
    """Window probabilities of a split's streams, computed once per model."""

    event_clips: list[Clip]
    event_probs: list[Array]
    event_times: list[npt.NDArray[np.float64]]
    event_onsets: list[float]
    event_ends: list[float]
    background_clips: list[Clip]
    background_probs: Array
    background_times: npt.NDArray[np.float64]
    background_bounds: npt.NDArray[np.float64]
    """End time (s) of each background clip within the background stream."""
    background_hours: float
    window_probs: Array
    """Probabilities of each clip's loudest window (window accuracy, as the seed card reports)."""
    window_labels: npt.NDArray[np.int64]
    seconds_per_window: float


US8K_CLASSES = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)


@functools.cache
def _built_categories(root: Path) -> dict[str, str]:
    path = root / "categories.csv"
    if not path.is_file():
        return {}
    with path.open(newline="") as handle:
        return {str(root / row["path"]): row["category"] for row in csv.DictReader(handle)}


def sound_kind(clip: Clip) -> str:
    """What a background clip sounds like, for the false-alarm report.

    The ESC-50 category, the UrbanSound8K or DCASE 2016 class, the built set's category, else the source.
    """
    if clip.esc50_category is not None:
        return clip.kind
    stem = Path(clip.original).stem
    if clip.source == "urbansound8k":
        return f"us8k:{US8K_CLASSES[int(stem.split('-')[1])]}"
    if clip.source == "dcase2016_task2":
        return f"dcase:{stem.rstrip('0123456789')}"
    category = _built_categories(clip.path.parents[2]).get(str(clip.path))
    return f"built:{category}" if category else clip.source


def split_clips(split: str, data: str = "shared") -> list[Clip]:
    """Clips of one split of `data` (see `training.audio.read_clips`), in manifest order."""
    if split not in {"train", "val", "test"}:
        raise ValueError(split)
    return [c for c in read_clips(data) if c.split == split]


@dataclass(frozen=True)
class SplitScenes:
    """The audio a live stream would hear for every clip of a split (model-independent)."""

    clips: list[Clip]
    event_clips: list[Clip]
    event_scenes: list[Array]
    """Each event clip inside LEAD_S of the split's background before and after it."""
    event_onsets: list[float]
    event_ends: list[float]
    background_clips: list[Clip]
    background_stream: Array
    """All background clips back to back."""
    background_bounds: npt.NDArray[np.float64]
    background_hours: float
    audio: dict[Path, Array]


def onset_s(samples: Array) -> float:
    """Time of a clip's first 10 ms frame within 25 dB of its loudest."""
    frames = samples[: samples.size // 80 * 80].reshape(-1, 80).astype(np.float64)
    if len(frames) == 0:
        return 0.0
    energy = np.mean(frames**2, axis=1) + 1e-12
    return float(np.argmax(energy >= energy.max() * 10 ** (-25 / 10)) * 80 / SAMPLE_RATE_HZ)


@functools.cache
def split_scenes(split: str, data: str = "shared") -> SplitScenes:
    """Decode a split and build its streams, once per process."""
    return build_scenes(tuple(split_clips(split, data)))


def build_scenes(clips: tuple[Clip, ...]) -> SplitScenes:
    """The streams of a set of clips: each event clip in the set's background, and that background."""
    audio = {c.path: load_audio(c.path) for c in clips}
    event_clips = [c for c in clips if c.label != "background"]
    background_clips = [c for c in clips if c.label == "background"]
    background = np.concatenate([audio[c.path] for c in background_clips])
    lead = int(LEAD_S * SAMPLE_RATE_HZ)
    scenes, onsets = [], []
    for index, clip in enumerate(event_clips):
        event = audio[clip.path]
        size = event.size + 2 * lead
        start = (index * 7_919 * SAMPLE_RATE_HZ // 10) % max(1, background.size - size)  # spread over it
        scene = np.resize(background[start : start + size], size).copy()
        scene[lead : lead + event.size] += event
        scenes.append(np.clip(scene, -1, 1) + quiet_noise(size, index))
        onsets.append(LEAD_S + onset_s(event))
    return SplitScenes(
        clips=list(clips),
        event_clips=event_clips,
        event_scenes=scenes,
        event_onsets=onsets,
        event_ends=[LEAD_S + audio[c.path].size / SAMPLE_RATE_HZ for c in event_clips],
        background_clips=background_clips,
        background_stream=background + quiet_noise(background.size, 1_000_000),
        background_bounds=np.cumsum([audio[c.path].size for c in background_clips]) / SAMPLE_RATE_HZ,
        background_hours=float(background.size / SAMPLE_RATE_HZ / 3600),
        audio=audio,
    )


def run_streams(path: Path, split: str | SplitScenes, data: str = "shared") -> SplitStreams:
    """Stream every clip of `split` (or of prepared scenes) through the model, with the engine's pipeline."""
    scenes = split_scenes(split, data) if isinstance(split, str) else split
    pipeline = stream_pipeline(path)
    started = time.perf_counter()
    event_probs, event_times = [], []
    for scene in scenes.event_scenes:
        probs, ends = stream(pipeline, scene)
        event_probs.append(probs)
        event_times.append(ends)
    background_probs, background_times = stream(pipeline, scenes.background_stream)
    window = pipeline.info.window_samples
    loudest = []
    for index, clip in enumerate(scenes.clips):
        samples = scenes.audio[clip.path]
        piece = fit_window(samples, energy_centre(samples, size=window), size=window)
        pipeline.reset()
        result = pipeline.process_window(piece + quiet_noise(window, 2_000_000 + index), start_sample=0)
        loudest.append([result.windows[0].probabilities[label] for label in pipeline.info.labels])
    elapsed = time.perf_counter() - started
    count = sum(len(p) for p in event_probs) + len(background_probs) + len(loudest)
    return SplitStreams(
        event_clips=scenes.event_clips,
        event_probs=event_probs,
        event_times=event_times,
        event_onsets=scenes.event_onsets,
        event_ends=scenes.event_ends,
        background_clips=scenes.background_clips,
        background_probs=background_probs,
        background_times=background_times,
        background_bounds=scenes.background_bounds,
        background_hours=scenes.background_hours,
        window_probs=np.array(loudest, dtype=np.float32),
        window_labels=np.array([c.label_index for c in scenes.clips], dtype=np.int64),
        seconds_per_window=elapsed / max(1, count),
    )


def detection_of(info: ModelInfo) -> dict[str, Any]:
    """A sidecar's defaults as the `detection` that the evaluations take."""
    return {"thresholds": dict(info.thresholds), "k": info.k, "n": info.n, "hold_s": info.hold_s}


def detector_settings(detection: dict[str, Any]) -> DetectorSettings:
    """Engine detector settings from a sidecar's `detection`."""
    return DetectorSettings(
        thresholds=dict(detection["thresholds"]),
        k=int(detection["k"]),
        n=int(detection["n"]),
        hold_s=float(detection["hold_s"]),
    )


def detect(
    probs: Array, times: npt.NDArray[np.float64], settings: DetectorSettings
) -> list[tuple[str, float, float]]:
    """(label, time, peak) of every event start in one stream, with the engine's detector."""
    detector = EventDetector(list(LABELS), settings)
    starts = []
    for time_s, row in zip(times, probs, strict=True):
        starts += [
            (e.label, e.time_s, e.peak_probability) for e in detector.process(float(time_s), row) if e.active
        ]
    return starts


def metrics_at(streams: SplitStreams, detection: dict[str, Any]) -> dict[str, Any]:
    """The card's numbers at one detection setting."""
    settings = detector_settings(detection)
    confusion = np.zeros((len(LABELS), len(LABELS)), dtype=np.int64)
    latencies: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    for clip, probs, times, onset, end in zip(
        streams.event_clips,
        streams.event_probs,
        streams.event_times,
        streams.event_onsets,
        streams.event_ends,
        strict=True,
    ):
        starts = [s for s in detect(probs, times, settings) if onset <= s[1] <= end + HOLD_S]
        predicted = max(starts, key=lambda s: s[2])[0] if starts else "background"
        confusion[clip.label_index, LABELS.index(predicted)] += 1
        hits = [s[1] for s in starts if s[0] == clip.label]
        if hits:
            latencies[clip.label].append(min(hits) - onset)
    false_alarms = detect(streams.background_probs, streams.background_times, settings)
    fired_in: dict[int, set[str]] = {}
    for label, time_s, _peak in false_alarms:
        clip_index = min(
            int(np.searchsorted(streams.background_bounds, time_s)), len(streams.background_clips) - 1
        )
        fired_in.setdefault(clip_index, set()).add(label)
    for clip_index in range(len(streams.background_clips)):
        labels = fired_in.get(clip_index, set())
        predicted = max(labels, key=LABELS.index) if labels else "background"
        confusion[0, LABELS.index(predicted)] += 1
    per_class = {}
    for index, label in enumerate(LABELS):
        predicted, actual = int(confusion[:, index].sum()), int(confusion[index].sum())
        per_class[label] = {
            "precision": float(confusion[index, index] / predicted) if predicted else 1.0,
            "recall": float(confusion[index, index] / actual) if actual else 1.0,
            "clips": actual,
        }
    by_class = Counter(label for label, _t, _p in false_alarms)
    sources = Counter(sound_kind(streams.background_clips[i]) for i in fired_in)
    window_accuracy = float(np.mean(streams.window_probs.argmax(1) == streams.window_labels))
    return {
        "per_class": per_class,
        "confusion": confusion.tolist(),
        "false_alarms": len(false_alarms),
        "false_alarms_by_class": {label: by_class.get(label, 0) for label in LABELS[1:]},
        "background_hours": streams.background_hours,
        "false_alarms_per_hour": len(false_alarms) / streams.background_hours,
        "false_alarm_sources": dict(sources.most_common()),
        "window_accuracy": window_accuracy,
        "balanced_accuracy": float(np.mean([v["recall"] for v in per_class.values()])),
        "latency_s": {
            label: {"p50": float(np.median(v)), "p95": float(np.quantile(v, 0.95)), "max": float(max(v))}
            for label, v in latencies.items()
            if v
        },
        "ms_per_window": 1000 * streams.seconds_per_window,
    }


def evaluate_model(path: Path, split: str, detection: dict[str, Any], data: str = "shared") -> dict[str, Any]:
    """Metrics of one model file on one split."""
    return metrics_at(run_streams(path, split, data), detection)


# --- choosing the defaults on val ------------------------------------------------------------------

KN_CANDIDATES = ((1, 1), (2, 2), (2, 3), (3, 3), (2, 4), (3, 4), (3, 5), (4, 5))
THRESHOLD_CANDIDATES = (
    0.3,
    0.4,
    0.5,
    0.6,
    0.7,
    0.8,
    0.85,
    0.9,
    0.93,
    0.95,
    0.97,
    0.98,
    0.99,
    0.995,
    0.998,
    0.999,
)
"""Up to 0.999, the options form's highest threshold."""
FALSE_ALARMS_PER_HOUR = 1.0
"""The target the defaults are chosen for."""
Row = tuple[float, int, float]
"""(threshold, val false alarms, val recall) of one class at one k-of-n."""
HOLD_S = 2.0
"""Seconds without a passing window before an event ends: repeated bangs or a long cry stay one event."""


def count_starts(
    scores: npt.NDArray[np.floating[Any]], times: npt.NDArray[np.float64], threshold: float, k: int, n: int
) -> int:
    """Event starts of one class in one stream: the engine's `EventDetector` on that class's scores."""
    if int(np.count_nonzero(scores >= threshold)) < k:
        return 0  # it cannot start an event: skip the state machine
    detector = EventDetector(
        ["background", "x"], DetectorSettings(thresholds={"x": threshold}, k=k, n=n, hold_s=HOLD_S)
    )
    return sum(
        event.active
        for time_s, score in zip(times.tolist(), scores.tolist(), strict=True)
        for event in detector.process(time_s, (0.0, score))
    )


def choose_detection(
    float_path: Path, log: Callable[[str], None] = print, data: str = "shared"
) -> dict[str, Any]:
    """Per-class thresholds and k-of-n on val, for the target: at most 1 false alarm per hour.

    The val background may raise at most `FALSE_ALARMS_PER_HOUR` x its hours alarms in all (rounded
    down: 1 in the 1.2 h of shared + built val). For each k-of-n and each way of sharing that budget
    among the classes, each class takes the highest threshold whose val recall is within one clip of the
    best recall it reaches within its share (a higher threshold leaves more margin against unseen
    background). The setting with the best worst-class recall wins, then the best mean recall.
    """
    streams = run_streams(float_path, "val", data)
    bg_times = streams.background_times
    during = [
        (times >= onset) & (times <= end + HOLD_S)
        for times, onset, end in zip(
            streams.event_times, streams.event_onsets, streams.event_ends, strict=True
        )
    ]
    budget = int(FALSE_ALARMS_PER_HOUR * streams.background_hours + 1e-9)
    best: tuple[tuple[float, ...], dict[str, Any]] | None = None
    for k, n in KN_CANDIDATES:
        picks: dict[str, list[Row]] = {}
        """Per class, the row it takes for each share of the budget (0..budget alarms)."""
        for index, label in enumerate(LABELS[1:], start=1):
            clips = [i for i, c in enumerate(streams.event_clips) if c.label_index == index]
            rows = []
            for threshold in THRESHOLD_CANDIDATES:
                fa = count_starts(streams.background_probs[:, index], bg_times, threshold, k, n)
                hits = sum(
                    count_starts(
                        streams.event_probs[i][during[i], index],
                        streams.event_times[i][during[i]],
                        threshold,
                        k,
                        n,
                    )
                    > 0
                    for i in clips
                )
                rows.append((threshold, fa, hits / max(1, len(clips))))
            picks[label] = [_pick(rows, share, len(clips)) for share in range(budget + 1)]
        for shares in _budget_shares(budget, len(LABELS) - 1):
            chosen = {label: picks[label][share] for label, share in zip(picks, shares, strict=True)}
            alarms = sum(r[1] for r in chosen.values())
            recalls = [r[2] for r in chosen.values()]
            key = (-max(0, alarms - budget), min(recalls), float(np.mean(recalls)), -alarms, -n)
            if best is None or key > best[0]:
                best = (
                    key,
                    {
                        "thresholds": {label: r[0] for label, r in chosen.items()},
                        "k": k,
                        "n": n,
                        "hold_s": HOLD_S,
                    },
                )
                log(
                    f"val k={k} n={n} (budget {budget} alarms in {streams.background_hours:.2f} h): "
                    f"{chosen} (threshold, alarms, recall)"
                )
    assert best is not None
    return best[1]


def _pick(rows: list[Row], share: int, clips: int) -> Row:
    """The highest threshold whose recall is within one clip of the best with at most `share` alarms."""
    allowed = [r for r in rows if r[1] <= share] or [min(rows, key=lambda r: r[1])]
    top = max(r[2] for r in allowed)
    return max((r for r in allowed if r[2] >= top - 1 / max(1, clips) + 1e-9), key=lambda r: r[0])


def _budget_shares(budget: int, classes: int) -> list[tuple[int, ...]]:
    """Every way of sharing `budget` false alarms among `classes` classes."""
    if classes == 1:
        return [(budget,)]
    return [
        (first, *rest) for first in range(budget + 1) for rest in _budget_shares(budget - first, classes - 1)
    ]


def operating_curve(path: Path, detection: dict[str, Any], data: str = "shared") -> dict[str, Any]:
    """Threshold -> false alarms per day and recall, per class, at the default k-of-n and hold.

    False alarms are counted in the val and test background streams (never trained on), recall on the
    val and test scenes. With a few hours of background, a count of 0 means "fewer than about
    24 / hours per day", which the sidecar says by storing the hours.
    """
    splits = [run_streams(path, split, data) for split in ("val", "test")]
    hours = sum(s.background_hours for s in splits)
    k, n = int(detection["k"]), int(detection["n"])
    curve: dict[str, list[dict[str, float]]] = {}
    for index, label in enumerate(LABELS[1:], start=1):
        rows = []
        for threshold in THRESHOLD_CANDIDATES:
            alarms = sum(
                count_starts(s.background_probs[:, index], s.background_times, threshold, k, n)
                for s in splits
            )
            hits = total = 0
            for s in splits:
                for clip, probs, times, onset, end in zip(
                    s.event_clips, s.event_probs, s.event_times, s.event_onsets, s.event_ends, strict=True
                ):
                    if clip.label_index != index:
                        continue
                    during = (times >= onset) & (times <= end + HOLD_S)
                    total += 1
                    hits += count_starts(probs[during, index], times[during], threshold, k, n) > 0
            rows.append(
                {
                    "threshold": threshold,
                    "false_alarms": alarms,
                    "false_alarms_per_day": 24 * alarms / hours,
                    "recall": hits / max(1, total),
                }
            )
        curve[label] = rows
    return {"background_hours": hours, "splits": ["val", "test"], "k": k, "n": n, "classes": curve}


# --- the card's table --------------------------------------------------------------------------------


def format_table(name: str, metrics: dict[str, Any]) -> str:
    """Markdown tables of one model's metrics."""
    lines = [f"#### {name}", "", "| class | precision | recall | clips |", "|---|---:|---:|---:|"]
    for index, (label, values) in enumerate(metrics["per_class"].items()):
        detected = sum(row[index] for row in metrics["confusion"])
        precision = f"{values['precision']:.1%}" if detected else "n/a (none detected)"
        lines.append(f"| {label} | {precision} | {values['recall']:.1%} | {values['clips']} |")
    lines += ["", "| true \\ detected | " + " | ".join(LABELS) + " |", "|---" + "|---:" * len(LABELS) + "|"]
    for label, row in zip(LABELS, metrics["confusion"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + " |")
    lines += [
        "",
        (
            f"- false alarms: {metrics['false_alarms']} in {metrics['background_hours']:.3f} h of background = "
            f"**{metrics['false_alarms_per_hour']:.2f} per hour** (by class: {metrics['false_alarms_by_class']}; "
            f"sources: {metrics['false_alarm_sources'] or 'none'})"
        ),
        (
            f"- loudest-window accuracy (argmax, one window per clip): {metrics['window_accuracy']:.1%}; "
            f"balanced accuracy of the scenes: {metrics.get('balanced_accuracy', float('nan')):.1%}"
        ),
        "- latency, onset -> end of the window that started the event: "
        + (
            ", ".join(
                f"{label} p50 {v['p50']:.2f} s / p95 {v['p95']:.2f} s"
                for label, v in metrics.get("latency_s", {}).items()
            )
            or "n/a"
        ),
        f"- onnxruntime CPU time: {metrics['ms_per_window']:.2f} ms per window (batched)",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print the model card's metrics table for a model (the shipped one by default)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="a shipped model (accurate, compact) or an .onnx file"
    )
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--data", default="shared", choices=["shared", "all", "extra"])
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--recorded", action="store_true", help="print the sidecar's recorded metrics, measure nothing"
    )
    parser.add_argument(
        "--record", action="store_true", help="write the measured figures into the model's sidecar"
    )
    parser.add_argument(
        "--windows", action="store_true", help="the per-window protocol of models without a temporal stage"
    )
    args = parser.parse_args()
    args.model = model_path(args.model)
    info = ModelInfo.load(args.model)
    if info.temporal is not None and not args.windows:
        from training import streams

        detection = detection_of(info)
        print(f"{info.name} {info.version}, detection defaults: {json.dumps(detection)}\n")
        report = info.metrics if args.recorded else streams.measure(info, detection, split=args.split)
        print(json.dumps(report, indent=2) if args.json else streams.format_report(report))  # type: ignore[arg-type]
        if args.record:
            kept = {k: v for k, v in info.metrics.items() if k not in report}
            replace(info, metrics={**kept, **report}).save()
            print(f"recorded into {info.path.with_suffix('.json')}")
        return
    detection = json.loads(args.model.with_suffix(".json").read_text())["detection"]
    print(f"detection defaults: {json.dumps(detection)}; split: {args.split}; data: {args.data}\n")
    if args.recorded:
        metrics = json.loads(args.model.with_suffix(".json").read_text())["metrics"]
    else:
        metrics = evaluate_model(args.model, args.split, detection, args.data)
    if args.json:
        print(json.dumps(metrics, indent=2))
    else:
        print(format_table(f"{args.model.name} ({args.model.stat().st_size / 1024:.0f} KiB)", metrics))


if __name__ == "__main__":
    main()
