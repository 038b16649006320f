"""Evaluate a shipped model the way a live stream uses it: `python -m training.evaluate`.

NumPy + onnxruntime + the engine's FBANK and EventDetector only (no torch), so that the CI test can run
it in the Home Assistant environments. Every clip is streamed as the integration streams audio: a
window of 15,480 samples every 0.25 s, debounced by the detector (k of the last n windows over the
threshold start an event; hold_s without one ends it).

- Event clips are streamed one by one, with 1.5 s of quiet microphone noise before and after (so that
  short clips are seen in every position, as in a live stream); a clip counts as detected as the class
  that started an event (the one with the highest peak if several did), else as background.
- Background clips of a split are streamed as ONE continuous stream (clips back to back); every event
  start there is a false alarm, attributed to the clip where its window ends.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
import functools
import json
from pathlib import Path
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise
from training.audio import (
    LABELS,
    WINDOW_SAMPLES,
    Clip,
    energy_centre,
    features,
    fit_window,
    load_audio,
    read_clips,
)
from training.audio_paths import REPO_ROOT

SAMPLE_RATE_HZ = 8000
HOP_FRAMES = 25
"""0.25 s between windows (the integration's default hop), in 10 ms FBANK frames."""
WINDOW_FRAMES = 192
PAD_S = 1.5
NOISE_DBFS = -60.0
"""Level of the quiet microphone noise added to every stream (real microphones are never digitally silent)."""
MODELS = REPO_ROOT / "models"
DEFAULT_MODEL = MODELS / "sound_sentry_resnetse.onnx"

Array = npt.NDArray[np.float32]


class OnnxModel:
    """onnxruntime session over feature windows [B, 192, 24] -> probabilities [B, 4]."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def predict(self, feats: Array, batch: int = 16) -> Array:
        """Probabilities of a stack of windows (small batches: cache-friendly, ~30% less CPU than 256)."""
        if len(feats) == 0:
            return np.zeros((0, len(LABELS)), dtype=np.float32)
        out = [
            self.session.run(["probabilities"], {"features": np.ascontiguousarray(feats[i : i + batch])})[0]
            for i in range(0, len(feats), batch)
        ]
        return np.concatenate(out).astype(np.float32)


def quiet_noise(size: int, seed: int) -> Array:
    """Deterministic white noise at NOISE_DBFS."""
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(size) * 10 ** (NOISE_DBFS / 20)).astype(np.float32)


def stream_windows(samples: Array) -> tuple[Array, npt.NDArray[np.float64]]:
    """Normalised features of the windows a live stream classifies, and each window's end time (s)."""
    frames = FbankExtractor().compute(samples)
    if len(frames) < WINDOW_FRAMES:
        return np.zeros((0, WINDOW_FRAMES, frames.shape[1]), dtype=np.float32), np.zeros(0)
    starts = np.arange(0, len(frames) - WINDOW_FRAMES + 1, HOP_FRAMES)
    windows = np.lib.stride_tricks.sliding_window_view(frames, WINDOW_FRAMES, axis=0)[starts]
    feats = normalise(np.ascontiguousarray(windows.transpose(0, 2, 1)))
    ends = (starts * 80 + WINDOW_SAMPLES) / SAMPLE_RATE_HZ
    return feats, ends


@dataclass
class SplitStreams:
    """Window probabilities of a split's streams, computed once per model."""

    event_clips: list[Clip]
    event_probs: list[Array]
    event_times: list[npt.NDArray[np.float64]]
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


def split_clips(split: str, data: str = "shared") -> list[Clip]:
    """Clips of one split of `data` (see `training.audio.read_clips`), in manifest order."""
    if split not in {"train", "val", "test"}:
        raise ValueError(split)
    return [c for c in read_clips(data) if c.split == split]


@dataclass(frozen=True)
class SplitWindows:
    """The feature windows a live stream would classify for every clip of a split (model-independent)."""

    clips: list[Clip]
    event_clips: list[Clip]
    event_feats: Array
    """Windows of all event-clip streams, concatenated; `event_sizes` splits them per clip."""
    event_sizes: list[int]
    event_times: list[npt.NDArray[np.float64]]
    background_clips: list[Clip]
    background_feats: Array
    background_times: npt.NDArray[np.float64]
    background_bounds: npt.NDArray[np.float64]
    background_hours: float
    loudest_feats: Array


@functools.cache
def split_windows(split: str, data: str = "shared") -> SplitWindows:
    """Decode a split and compute its stream windows once per process (shared by float32 and int8)."""
    clips = split_clips(split, data)
    audio = {c.path: load_audio(c.path) for c in clips}
    event_clips = [c for c in clips if c.label != "background"]
    background_clips = [c for c in clips if c.label == "background"]
    pad = np.zeros(int(PAD_S * SAMPLE_RATE_HZ), np.float32)
    event_feats, event_times = [np.zeros((0, WINDOW_FRAMES, 24), np.float32)], []
    for index, clip in enumerate(event_clips):
        samples = np.concatenate([pad, audio[clip.path], pad])
        feats, ends = stream_windows(samples + quiet_noise(samples.size, index))
        event_feats.append(feats)
        event_times.append(ends)
    stream = np.concatenate([audio[c.path] for c in background_clips])
    background_feats, background_times = stream_windows(stream + quiet_noise(stream.size, 1_000_000))
    loudest = []
    for index, clip in enumerate(clips):
        samples = audio[clip.path]
        window = fit_window(samples, energy_centre(samples))
        loudest.append(features(window + quiet_noise(WINDOW_SAMPLES, 2_000_000 + index)))
    return SplitWindows(
        clips=clips,
        event_clips=event_clips,
        event_feats=np.concatenate(event_feats),
        event_sizes=[len(f) for f in event_feats[1:]],
        event_times=event_times,
        background_clips=background_clips,
        background_feats=background_feats,
        background_times=background_times,
        background_bounds=np.cumsum([audio[c.path].size for c in background_clips]) / SAMPLE_RATE_HZ,
        background_hours=float(stream.size / SAMPLE_RATE_HZ / 3600),
        loudest_feats=np.stack(loudest),
    )


def run_streams(model: OnnxModel, split: str, data: str = "shared") -> SplitStreams:
    """Stream every clip of `split` through the model."""
    windows = split_windows(split, data)
    started = time.perf_counter()
    event_probs = model.predict(windows.event_feats)
    background_probs = model.predict(windows.background_feats)
    window_probs = model.predict(windows.loudest_feats)
    elapsed = time.perf_counter() - started
    count = len(event_probs) + len(background_probs) + len(window_probs)
    return SplitStreams(
        event_clips=windows.event_clips,
        event_probs=np.split(event_probs, np.cumsum(windows.event_sizes)[:-1]) if windows.event_sizes else [],
        event_times=windows.event_times,
        background_clips=windows.background_clips,
        background_probs=background_probs,
        background_times=windows.background_times,
        background_bounds=windows.background_bounds,
        background_hours=windows.background_hours,
        window_probs=window_probs,
        window_labels=np.array([c.label_index for c in windows.clips], dtype=np.int64),
        seconds_per_window=elapsed / max(1, count),
    )


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
    for clip, probs, times in zip(streams.event_clips, streams.event_probs, streams.event_times, strict=True):
        starts = detect(probs, times, settings)
        predicted = max(starts, key=lambda s: s[2])[0] if starts else "background"
        confusion[clip.label_index, LABELS.index(predicted)] += 1
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
    sources = Counter(streams.background_clips[i].kind for i in fired_in)
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
        "ms_per_window": 1000 * streams.seconds_per_window,
    }


def evaluate_model(path: Path, split: str, detection: dict[str, Any], data: str = "shared") -> dict[str, Any]:
    """Metrics of one model file on one split."""
    return metrics_at(run_streams(OnnxModel(path), split, data), detection)


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


def _count_starts(passes: list[bool], times: list[float], k: int, n: int, hold_s: float) -> int:
    """Event starts of one class: the engine detector's state machine on pass/fail votes (fast path)."""
    active, last_pass, count = False, float("-inf"), 0
    votes: list[bool] = []
    for passed, time_s in zip(passes, times, strict=True):
        votes.append(passed)
        if len(votes) > n:
            votes.pop(0)
        if passed:
            last_pass = time_s
        if active:
            if time_s - last_pass >= hold_s:
                active = False
        elif sum(votes) >= k:
            active, count = True, count + 1
    return count


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
    streams = run_streams(OnnxModel(float_path), "val", data)
    bg_times = streams.background_times.tolist()
    budget = int(FALSE_ALARMS_PER_HOUR * streams.background_hours + 1e-9)
    best: tuple[tuple[float, ...], dict[str, Any]] | None = None
    for k, n in KN_CANDIDATES:
        picks: dict[str, list[Row]] = {}
        """Per class, the row it takes for each share of the budget (0..budget alarms)."""
        for index, label in enumerate(LABELS[1:], start=1):
            clips = [i for i, c in enumerate(streams.event_clips) if c.label_index == index]
            rows = []
            for threshold in THRESHOLD_CANDIDATES:
                fa = _count_starts(
                    (streams.background_probs[:, index] >= threshold).tolist(), bg_times, k, n, HOLD_S
                )
                hits = sum(
                    _count_starts(
                        (streams.event_probs[i][:, index] >= threshold).tolist(),
                        streams.event_times[i].tolist(),
                        k,
                        n,
                        HOLD_S,
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
        f"- loudest-window accuracy (argmax, one window per clip): {metrics['window_accuracy']:.1%}",
        f"- onnxruntime CPU time: {metrics['ms_per_window']:.2f} ms per window (batched)",
    ]
    return "\n".join(lines)


def main() -> None:
    """Print the model card's metrics table for the float32 and int8 models."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", type=Path, default=DEFAULT_MODEL, help="float32 .onnx; its .int8.onnx is evaluated too"
    )
    parser.add_argument("--split", default="test", choices=["val", "test"])
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.add_argument(
        "--recorded", action="store_true", help="print the sidecars' recorded metrics, measure nothing"
    )
    args = parser.parse_args()
    detection = json.loads(args.model.with_suffix(".json").read_text())["detection"]
    print(f"detection defaults: {json.dumps(detection)}; split: {args.split}\n")
    results = {}
    int8 = args.model.with_name(args.model.name.replace(".onnx", ".int8.onnx"))
    for name, path in (("float32", args.model), ("int8", int8)):
        if path.exists():
            if args.recorded:
                results[name] = json.loads(path.with_suffix(".json").read_text())["metrics"]
            else:
                results[name] = evaluate_model(path, args.split, detection)
            if not args.json:
                print(
                    format_table(f"{name} ({path.name}, {path.stat().st_size / 1024:.0f} KiB)", results[name])
                    + "\n"
                )
    if args.json:
        print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
