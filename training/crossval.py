"""Cross-source validation: train without whole sources, score the model on them (`python -m training.crossval`).

    TRAIN_MODULE=training.crossval scripts/train --model accurate --tag finetune [--fold A ...] [recipe options]
    TRAIN_MODULE=training.crossval scripts/train --model compact --tag compact-v3 [--teacher-tag accurate-v5]
    TRAIN_MODULE=training.crossval scripts/train --model scratch --tag v2 [train options]
    TRAIN_MODULE=training.crossval scripts/train --summary --tag finetune

The dev test split shares recorders, rooms and gun models with training, so it flatters a model. Each fold
leaves one source (or gun model, or group of recordings) of every event class out of training, and one
background source, trains the recipe (`training.finetune` for the accurate model; `training.distill` for
the compact one, taught by the accurate model of the same fold, which never heard the held-out sources
either; `training.train` for the compact one from scratch), exports it, and scores what it never heard
through the engine's `Pipeline` and `EventDetector`, exactly as Home Assistant runs it:

- clips: per class, the share of held-out event clips whose best window passes the threshold that lets
  1% of the background clips through (the held-out background source + the val background of the
  others), the ROC AUC of clip scores, and the balanced accuracy of the clip decision (the event class
  with the highest window probability if at least 0.5, else background);
- streams, as users meet sounds: each held-out event clip inside that background (`training.evaluate`'s
  scenes), 3 of 5 windows; per class the recall at the best threshold with at most 1 and at most 10
  false alarms per hour of the background stream, and what the false alarms at the latter were.
"""

from __future__ import annotations

import argparse
from collections import Counter
import json
from pathlib import Path
import sys
import time

import numpy as np

from training import evaluate
from training.audio import LABELS, Clip, held_out, load_audio, read_clips
from training.audio_paths import REPO_ROOT

STREAM_K, STREAM_N = 3, 5
"""The k-of-n of the stream figures (the maintainers' protocol)."""
STREAM_THRESHOLDS = tuple(
    np.round(np.concatenate([np.arange(0.3, 0.9, 0.05), np.arange(0.9, 1.0, 0.005)]), 4)
)


def _groups(label: str, source: str, split: str) -> list[str]:
    clips = read_clips("shared")
    return sorted(
        {
            f"{label}:{source}:{c.group}"
            for c in clips
            if c.label == label and c.source == source and c.split == split
        }
    )


def folds() -> dict[str, tuple[str, ...]]:
    """Fold name -> units left out (see `training.audio.held_out`): one per event class + background."""
    return {
        "A": (
            "glassbreak:prathambansal",
            "gunshot:urbansound8k",
            "babycry:esc50",
            "background:dcase2016_task2",
        ),
        "B": (
            "glassbreak:ring_gbtd",
            "gunshot:kaggle_gunshot:kaggle_gunshot:MG-42",
            *_groups("babycry", "donateacry", "test"),
            "background:urbansound8k",
        ),
        "C": (
            "glassbreak:esc50",
            "gunshot:kaggle_gunshot:kaggle_gunshot:AK-47",
            "gunshot:kaggle_gunshot:kaggle_gunshot:M16",
            *_groups("babycry", "donateacry", "val"),
            "background:zalmotek_mssnsd",
        ),
        "D": (
            "glassbreak:assaf_glass",
            "gunshot:kaggle_gunshot:kaggle_gunshot:M249",
            "gunshot:kaggle_gunshot:kaggle_gunshot:IMI Desert Eagle",
            "background:assaf_glass",
            "background:giulbia",
        ),
    }


def clip_scores(path: Path, clips: list[Clip]) -> np.ndarray:
    """Per clip, the max over its stream windows of each class's probability -> (N, labels).

    Each clip is streamed on its own between PAD_S of quiet noise, through the engine's pipeline.
    """
    pipeline = evaluate.stream_pipeline(path)
    pad = np.zeros(int(evaluate.PAD_S * evaluate.SAMPLE_RATE_HZ), np.float32)
    out = []
    for index, clip in enumerate(clips):
        samples = np.concatenate([pad, load_audio(clip.path), pad])
        probs, _ends = evaluate.stream(pipeline, samples + evaluate.quiet_noise(samples.size, index))
        out.append(probs.max(axis=0) if len(probs) else np.eye(len(LABELS), dtype=np.float32)[0])
    return np.stack(out)


def auc(positive: np.ndarray, negative: np.ndarray) -> float:
    """ROC AUC by ranks (ties count half)."""
    scores = np.concatenate([positive, negative])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    for value in np.unique(scores):  # average ranks of ties
        tied = scores == value
        ranks[tied] = ranks[tied].mean()
    return float(
        (ranks[: len(positive)].sum() - len(positive) * (len(positive) + 1) / 2)
        / (len(positive) * len(negative))
    )


def balanced_accuracy(labels: np.ndarray, clip_max: np.ndarray) -> float:
    """Mean per-class recall of the clip decision (the top event class if >= 0.5, else background)."""
    events = clip_max[:, 1:]
    decided = np.where(events.max(axis=1) >= 0.5, events.argmax(axis=1) + 1, 0)
    return float(
        np.mean([np.mean(decided[labels == i] == i) for i in range(len(LABELS)) if np.any(labels == i)])
    )


def stream_figures(path: Path, events: list[Clip], background: list[Clip]) -> dict[str, object]:
    """Recall of held-out events inside the fold's background at <= 1 and <= 10 false alarms per hour."""
    streams = evaluate.run_streams(path, evaluate.build_scenes(tuple(events + background)))
    hours = streams.background_hours
    figures: dict[str, object] = {"background_hours": hours}
    for index, label in enumerate(LABELS[1:], start=1):
        clips = [i for i, c in enumerate(streams.event_clips) if c.label_index == index]
        if not clips:
            continue
        rows = []
        for threshold in STREAM_THRESHOLDS:
            alarms = evaluate.count_starts(
                streams.background_probs[:, index], streams.background_times, threshold, STREAM_K, STREAM_N
            )
            hits = 0
            for i in clips:
                times = streams.event_times[i]
                during = (times >= streams.event_onsets[i]) & (
                    times <= streams.event_ends[i] + evaluate.HOLD_S
                )
                hits += (
                    evaluate.count_starts(
                        streams.event_probs[i][during, index], times[during], threshold, STREAM_K, STREAM_N
                    )
                    > 0
                )
            rows.append((float(threshold), alarms / hours, hits / len(clips)))
        result: dict[str, object] = {"clips": len(clips)}
        for budget in (1.0, 10.0):
            allowed = [r for r in rows if r[1] <= budget]
            best = max(allowed, key=lambda r: (r[2], r[0])) if allowed else None
            result[f"recall_at_{budget:g}_per_hour"] = best[2] if best else 0.0
            result[f"threshold_at_{budget:g}_per_hour"] = best[0] if best else None
        if (threshold := result["threshold_at_10_per_hour"]) is not None:
            result["false_alarm_kinds_at_10_per_hour"] = false_alarm_kinds(streams, index, float(threshold))
        figures[label] = result
    return figures


def false_alarm_kinds(streams: evaluate.SplitStreams, index: int, threshold: float) -> dict[str, int]:
    """What the background clips that raised one class's false alarms are (ESC-50 category, source...)."""
    scores = streams.background_probs[:, index]
    label = LABELS[index]
    detector_settings = evaluate.DetectorSettings(
        thresholds={label: threshold}, k=STREAM_K, n=STREAM_N, hold_s=evaluate.HOLD_S
    )
    detector = evaluate.EventDetector([LABELS[0], label], detector_settings)
    kinds: Counter[str] = Counter()
    for time_s, score in zip(streams.background_times.tolist(), scores.tolist(), strict=True):
        for event in detector.process(time_s, (0.0, score)):
            if event.active:
                clip = min(
                    int(np.searchsorted(streams.background_bounds, time_s)), len(streams.background_clips) - 1
                )
                kinds[evaluate.sound_kind(streams.background_clips[clip])] += 1
    return dict(kinds.most_common())


def score_fold(path: Path, units: tuple[str, ...]) -> dict[str, object]:
    """The fold's figures (see the module docstring) and the raw clip scores for pooling."""
    clips = read_clips("shared")
    events = [c for c in clips if c.label != "background" and held_out(c, units)]
    background = [c for c in clips if c.label == "background" and (held_out(c, units) or c.split == "val")]
    event_scores = clip_scores(path, events)
    background_scores = clip_scores(path, background)
    result: dict[str, object] = {"events": len(events), "background_clips": len(background)}
    per_class = {}
    for index, label in enumerate(LABELS[1:], start=1):
        positive = event_scores[[c.label_index == index for c in events], index]
        negative = background_scores[:, index]
        if len(positive) == 0:
            continue
        threshold = float(np.quantile(negative, 0.99))
        per_class[label] = {
            "clips": len(positive),
            "recall_at_1pct_bg": float(np.mean(positive > threshold)),
            "auc": auc(positive, negative),
        }
    result["per_class"] = per_class
    labels = np.array([c.label_index for c in events] + [0] * len(background))
    result["balanced_accuracy"] = balanced_accuracy(labels, np.concatenate([event_scores, background_scores]))
    result["streams"] = stream_figures(path, events, background)
    result["raw"] = {
        "event_labels": [c.label_index for c in events],
        "event_max": event_scores.tolist(),
        "background_max": background_scores.tolist(),
    }
    return result


def train_fold(model: str, argv: list[str], run_dir: Path, units: tuple[str, ...], teacher: Path) -> Path:
    """Train one fold of `model`'s recipe and return its exported .onnx."""
    if model == "accurate":
        from training import finetune

        args = finetune.parser().parse_args(argv)
        args.run_dir = run_dir
        info, _summary = finetune.train_and_export(args, hold_out=units)
        return info.path
    if model == "compact":
        from training import distill

        args = distill.parser().parse_args(argv)
        args.run_dir, args.teacher = run_dir, teacher
        checkpoint, provenance, _summary = distill.train_student(args, hold_out=units)
        return distill.export_checkpoint(checkpoint, run_dir, version=args.version, provenance=provenance)
    from training import train

    args = train.parser().parse_args(argv)
    args.hold_out = units
    log = train.run_logger(run_dir)
    checkpoint = train.train(args, run_dir, log)
    return train.export_checkpoint(checkpoint, run_dir)


def main() -> None:
    """Run the folds asked for, then print the pooled table of every fold run under the tag."""
    own = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0], add_help=False)
    own.add_argument(
        "--model",
        choices=["accurate", "compact", "scratch"],
        default="accurate",
        help="accurate: training.finetune; compact: training.distill; scratch: training.train",
    )
    own.add_argument(
        "--teacher-tag",
        default="accurate-v5",
        help="compact: the accurate folds that teach it (crossval/TAG/FOLD/, from --model accurate)",
    )
    own.add_argument(
        "--cache-tag",
        help="reuse each fold's cache.npz of an earlier run of the same data (crossval/TAG/FOLD/): another "
        "recipe on the same windows",
    )
    own.add_argument("--fold", action="append", choices=sorted(folds()), help="fold(s) to run (default: all)")
    own.add_argument("--tag", default="recipe", help="name of this recipe's results")
    own.add_argument("--summary", action="store_true", help="only print the table of stored folds")
    args, recipe_argv = own.parse_known_args()
    if "-h" in recipe_argv or "--help" in recipe_argv:
        own.print_help()
        print(
            "\nOther options go to the model's recipe (training.finetune, training.distill or training.train)."
        )
        sys.exit(0)
    out_dir = REPO_ROOT / "training" / "runs" / "crossval" / args.tag
    if not args.summary:
        for name in args.fold or sorted(folds()):
            units = folds()[name]
            run_dir = out_dir / name
            run_dir.mkdir(parents=True, exist_ok=True)
            started = time.time()
            print(f"fold {name}: {args.model}, holding out {list(units)[:6]}...", flush=True)
            teacher = out_dir.parent / args.teacher_tag / name / "sound_sentry_mobilenet.onnx"
            fold_argv = list(recipe_argv)
            if args.cache_tag:
                fold_argv += ["--cache", str(out_dir.parent / args.cache_tag / name / "cache.npz")]
            path = train_fold(args.model, fold_argv, run_dir, units, teacher)
            result = score_fold(path, units)
            result["minutes"] = (time.time() - started) / 60
            result["recipe"] = [args.model, *fold_argv]
            (run_dir / "result.json").write_text(json.dumps(result) + "\n")
            print(f"fold {name}: {json.dumps({k: v for k, v in result.items() if k != 'raw'})}", flush=True)
    print(summary(out_dir))


def summary(out_dir: Path) -> str:
    """Markdown tables: per fold and class, clip recall at 1% background clips and AUC; stream recall."""
    lines = [
        f"Cross-source validation, recipe `{out_dir.name}` (held-out sources only)",
        "",
        "Clips (threshold = 99th percentile of the fold's background clips):",
        "",
        "| fold | babycry | glassbreak | gunshot | balanced acc. |",
        "|---|---:|---:|---:|---:|",
    ]
    pooled: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    accuracies = []
    stream_rows = []
    pooled_streams: dict[str, dict[str, list[float]]] = {label: {"1": [], "10": []} for label in LABELS[1:]}
    for path in sorted(out_dir.glob("*/result.json")):
        result = json.loads(path.read_text())
        cells = []
        for label in LABELS[1:]:
            values = result["per_class"].get(label)
            if values:
                cells.append(
                    f"{values['recall_at_1pct_bg']:.0%} (AUC {values['auc']:.3f}, n={values['clips']})"
                )
                pooled[label] += [values["recall_at_1pct_bg"]] * values["clips"]
            else:
                cells.append("-")
        accuracies.append(result["balanced_accuracy"])
        lines.append(
            f"| {path.parent.name} | " + " | ".join(cells) + f" | {result['balanced_accuracy']:.1%} |"
        )
        streams = result.get("streams", {})
        stream_cells = []
        for label in LABELS[1:]:
            values = streams.get(label)
            if values:
                stream_cells.append(
                    f"{values['recall_at_1_per_hour']:.0%} / {values['recall_at_10_per_hour']:.0%} (n={values['clips']})"
                )
                pooled_streams[label]["1"] += [values["recall_at_1_per_hour"]] * values["clips"]
                pooled_streams[label]["10"] += [values["recall_at_10_per_hour"]] * values["clips"]
            else:
                stream_cells.append("-")
        hours = streams.get("background_hours", 0.0)
        stream_rows.append(f"| {path.parent.name} | " + " | ".join(stream_cells) + f" | {hours:.2f} h |")
    if accuracies:
        means = [f"**{np.mean(v):.0%}**" if v else "-" for v in pooled.values()]
        lines.append("| all (clip-weighted) | " + " | ".join(means) + f" | **{np.mean(accuracies):.1%}** |")
    lines += [
        "",
        (
            f"Streams ({STREAM_K} of {STREAM_N} windows; recall at the best threshold with <= 1 / <= 10 false "
            "alarms per hour of the fold's background):"
        ),
        "",
        "| fold | babycry | glassbreak | gunshot | background |",
        "|---|---:|---:|---:|---:|",
        *stream_rows,
    ]
    if stream_rows:
        cells = [
            f"**{np.mean(v['1']):.0%} / {np.mean(v['10']):.0%}**" if v["1"] else "-"
            for v in pooled_streams.values()
        ]
        lines.append("| all (clip-weighted) | " + " | ".join(cells) + " | |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
