"""Cross-source validation: train without whole sources, score the model on them (`python -m training.crossval`).

The dev test split shares recorders, rooms and gun models with training, so it flatters a model. Each fold
here leaves one source (or gun model, or group of recordings) of every event class out of training, and
one background source, trains the recipe, and scores what it never heard:

- per class, the share of held-out event clips whose best window passes the threshold that lets 1% of
  the background clips through (held-out background source + the val background of the others), and
  the ROC AUC of clip scores;
- balanced accuracy of the clip decision (argmax of the clip's mean probabilities over its windows).

`--fold NAME` runs one fold; the summary pools all folds run with the same `--tag`.
"""

from __future__ import annotations

import json
from pathlib import Path
import time

import numpy as np
import torch

from training.audio import LABELS, Clip, load_audio, read_clips
from training.audio_paths import REPO_ROOT
from training.evaluate import PAD_S, SAMPLE_RATE_HZ, background_where_quiet, quiet_noise, stream_windows
from training.model import ResNetSE
from training.train import held_out, parser as train_parser, predict, run_logger, train


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
    """Fold name -> units left out (see `training.train.held_out`): one per event class + background."""
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


def clip_scores(model: ResNetSE, clips: list[Clip]) -> np.ndarray:
    """Per clip, per class: [max over stream windows, mean over stream windows] -> (N, 2, 4)."""
    out = []
    pad = np.zeros(int(PAD_S * SAMPLE_RATE_HZ), np.float32)
    for index, clip in enumerate(clips):
        samples = np.concatenate([pad, load_audio(clip.path), pad])
        feats, _ends = stream_windows(samples + quiet_noise(samples.size, index))
        probs = background_where_quiet(feats, lambda loud: predict(model, loud))
        if len(probs) == 0:  # shorter than a window: nothing heard
            probs = np.eye(len(LABELS), dtype=np.float32)[:1]
        out.append(np.stack([probs.max(axis=0), probs.mean(axis=0)]))
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
    """Mean per-class recall of the clip decision.

    The decision is the event class with the highest window probability if that is at least 0.5, else
    background.
    """
    events = clip_max[:, 1:]
    decided = np.where(events.max(axis=1) >= 0.5, events.argmax(axis=1) + 1, 0)
    return float(
        np.mean([np.mean(decided[labels == i] == i) for i in range(len(LABELS)) if np.any(labels == i)])
    )


def score_fold(model: ResNetSE, events: list[Clip], background: list[Clip]) -> dict[str, object]:
    """The fold's figures (see the module docstring) and the raw clip scores for pooling."""
    event_scores = clip_scores(model, events)
    background_scores = clip_scores(model, background)
    result: dict[str, object] = {"events": len(events), "background_clips": len(background)}
    per_class = {}
    for index, label in enumerate(LABELS[1:], start=1):
        positive = event_scores[[c.label_index == index for c in events], 0, index]
        negative = background_scores[:, 0, index]
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
    result["balanced_accuracy"] = balanced_accuracy(
        labels, np.concatenate([event_scores[:, 0], background_scores[:, 0]])
    )
    result["raw"] = {
        "event_labels": [c.label_index for c in events],
        "event_max": event_scores[:, 0].tolist(),
        "background_max": background_scores[:, 0].tolist(),
    }
    return result


def main() -> None:
    """Run the folds asked for, then print the pooled table of every fold run under the tag."""
    parser = train_parser()
    parser.description = __doc__
    parser.add_argument(
        "--fold", action="append", choices=sorted(folds()), help="fold(s) to run (default: all)"
    )
    parser.add_argument("--tag", default="recipe", help="name of this recipe's results")
    parser.add_argument("--summary", action="store_true", help="only print the table of stored folds")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out_dir = REPO_ROOT / "training" / "runs" / "crossval" / args.tag
    if not args.summary:
        for name in args.fold or sorted(folds()):
            units = folds()[name]
            run_dir = out_dir / name
            log = run_logger(run_dir)
            args.hold_out = units
            log(f"fold {name}: holding out {len(units)} units {list(units)[:6]}...; arguments {vars(args)}")
            started = time.time()
            checkpoint = train(args, run_dir, log)
            model = ResNetSE()
            model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
            clips = read_clips(args.data, args.extra_sources)
            events = [c for c in clips if c.label != "background" and held_out(c, units)]
            background = [
                c for c in clips if c.label == "background" and (held_out(c, units) or c.split == "val")
            ]
            result = score_fold(model, events, background)
            result["minutes"] = (time.time() - started) / 60
            (run_dir / "result.json").write_text(json.dumps(result) + "\n")
            log(f"fold {name}: {json.dumps({k: v for k, v in result.items() if k != 'raw'})}")
    print(summary(out_dir))


def summary(out_dir: Path) -> str:
    """Markdown table: per fold and class, recall at 1% background clips and AUC; balanced accuracy."""
    lines = [
        f"Cross-source validation, recipe `{out_dir.name}` (held-out clips; threshold = 99th percentile of the fold's background clips)",
        "",
        "| fold | babycry | glassbreak | gunshot | balanced acc. |",
        "|---|---:|---:|---:|---:|",
    ]
    pooled: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    accuracies = []
    for path in sorted(out_dir.glob("*/result.json")):
        result = json.loads(path.read_text())
        raw = result["raw"]
        labels = np.array(raw["event_labels"] + [0] * len(raw["background_max"]))
        result["balanced_accuracy"] = balanced_accuracy(
            labels, np.array(raw["event_max"] + raw["background_max"])
        )
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
    if accuracies:
        means = [f"**{np.mean(v):.0%}**" if v else "-" for v in pooled.values()]
        lines.append("| all (clip-weighted) | " + " | ".join(means) + f" | **{np.mean(accuracies):.1%}** |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
