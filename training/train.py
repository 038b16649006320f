"""Train the shipped classifier from scratch, seeded: `python -m training.train` (or `scripts/train`).

Windows are slices of cached log mel frames, augmented in the log mel domain (`training.augment`), so
the network, not the data, sets the pace. Trains on `train`, picks the checkpoint on `val`, chooses the
detection defaults on `val` streams, exports the float32 ONNX model with its sidecar (dev `test`
metrics included) into the integration (`training.ship`). Run artefacts (checkpoints, log) go to
training/runs/<name>/, which git ignores. `--hold-out` leaves whole sources out of training (and out of
checkpoint choice): `training.crossval` uses it to score sources the model never heard.
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Callable
from dataclasses import replace
import json
from pathlib import Path
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from custom_components.sound_sentry.engine.model_info import ModelInfo
from training.audio import DATA_CHOICES, LABELS, Clip, held_out, read_clips
from training.audio_paths import REPO_ROOT, extra_data_dir
from training.augment import AugmentSettings, FrameSampler
from training.dataset import fixed_windows, load_clips
from training.frames import VARIANTS, dataset_frames
from training.resnetse import ResNetSE, count_macs, count_parameters
from training.ship import PLACEHOLDER, ship

MODEL_STEM = "sound_sentry_resnetse"
MODEL_VERSION = "2.0.0"

Log = Callable[[str], None]


@torch.no_grad()
def predict(model: ResNetSE, feats: np.ndarray, batch: int = 256) -> np.ndarray:
    """Softmax probabilities of feature windows."""
    model.eval()
    out = [
        torch.softmax(model(torch.from_numpy(np.ascontiguousarray(feats[i : i + batch]))), -1).numpy()
        for i in range(0, len(feats), batch)
    ]
    return np.concatenate(out) if out else np.zeros((0, len(LABELS)), np.float32)


def selection_score(probs: np.ndarray, labels: np.ndarray) -> tuple[float, dict[str, float]]:
    """Worst-class event recall at thresholds that let through 0.5% of background windows."""
    background = labels == 0
    recalls = {}
    for index, label in enumerate(LABELS[1:], start=1):
        threshold = float(np.quantile(probs[background, index], 0.995))
        recalls[label] = float(np.mean(probs[labels == index, index] > threshold))
    return float(min(recalls.values()) + np.mean(list(recalls.values()))) / 2, recalls


def replace_seed(args: argparse.Namespace, seed: int) -> argparse.Namespace:
    """A copy of the arguments with another seed (each data-parallel process draws its own windows)."""
    return argparse.Namespace(**{**vars(args), "seed": seed})


def soft_targets(labels: torch.Tensor, teacher: torch.Tensor, weight: float) -> torch.Tensor:
    """One-hot labels, softened by the teacher's score q of event windows when `weight` > 0.

    An event window's target moves towards background by how little of its class the teacher hears
    there: (1 - w + w q) for the class, w (1 - q) for background.
    """
    targets = F.one_hot(labels, len(LABELS)).float()
    if weight <= 0:
        return targets
    q = torch.nan_to_num(teacher, nan=1.0).clamp(0.0, 1.0)
    keep = 1 - weight + weight * q
    rows = torch.arange(len(labels))
    targets[rows, labels] = torch.where(labels > 0, keep, targets[rows, labels])
    targets[:, 0] = torch.where(labels > 0, 1 - keep, targets[:, 0])
    return targets


def mine_hard_negatives(model: ResNetSE, sampler: FrameSampler, args: argparse.Namespace, log: Log) -> None:
    """Score random train background windows; those the model takes for an event become hard negatives.

    The pool keeps the newest `--mine-pool` windows, so sounds that stop firing drift out of it.
    """
    refs, feats = [], []
    for _ in range(args.mine_count):
        frames, clip, start = sampler.background_window(variant=0)
        refs.append((clip, start))
        feats.append(frames)
    fore = torch.from_numpy(np.stack(feats))
    count = len(refs)
    windows = sampler.augment(
        fore, fore, torch.zeros(count, dtype=torch.bool), torch.zeros(count, dtype=torch.long)
    )
    scores = predict(model, windows.numpy())[:, 1:].max(axis=1)
    keep = np.argsort(scores)[::-1][: int(args.mine_keep * count)]
    keep = keep[scores[keep] > 0.5]
    sampler.hard_negatives = (sampler.hard_negatives + [refs[i] for i in keep])[-args.mine_pool :]
    sampler.hard_share = args.hard_share
    kinds = Counter(sampler.clips[refs[i][0]].kind for i in keep)
    log(
        f"mined {len(keep)} of {count} background windows scoring > 0.5 "
        f"({np.mean(scores > 0.5):.1%} of them; p99 {np.quantile(scores, 0.99):.3f}); pool {len(sampler.hard_negatives)}; "
        f"top kinds {dict(kinds.most_common(8))}"
    )


def make_sampler(clips: list[Clip], args: argparse.Namespace, log: Log) -> FrameSampler:
    """A frame sampler over the train split of `clips`, less the held-out sources."""
    from training.teacher import teacher_scores

    everything = list(clips)
    if args.synth:
        from training.synth import synth_clips

        everything += synth_clips(args.synth)
    indices = [i for i, c in enumerate(everything) if c.split == "train" and not held_out(c, args.hold_out)]
    variants = [dataset_frames(everything, variant, log).subset(indices) for variant in VARIANTS]
    train_clips = [everything[i] for i in indices]
    settings = replace(AugmentSettings(), background_share=args.background_share)
    log(
        f"train: {len(train_clips)} clips, {len(variants[0].frames):,} frames per variant "
        f"({len(variants[0].frames) / 360_000:.2f} h), {dict(Counter(c.label for c in train_clips))}"
    )
    teacher = teacher_scores(train_clips, log) if args.distill > 0 else None
    return FrameSampler(train_clips, variants, seed=args.seed, settings=settings, teacher=teacher)


def train(args: argparse.Namespace, run_dir: Path, log: Log) -> Path:
    """Train (in `--processes` data-parallel processes of one thread each); return the best checkpoint."""
    if args.processes <= 1:
        return _train(args, run_dir, log, rank=0, world=1)
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as probe:  # a free loopback port for the processes to meet on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mp.spawn(_worker, args=(args, run_dir, port), nprocs=args.processes, join=True)
    return run_dir / "best.pt"


def _worker(rank: int, args: argparse.Namespace, run_dir: Path, port: int) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.processes
    )
    try:
        log = run_logger(run_dir) if rank == 0 else (lambda _message: None)
        _train(args, run_dir, log, rank=rank, world=args.processes)
    finally:
        dist.destroy_process_group()


def _train(args: argparse.Namespace, run_dir: Path, log: Log, *, rank: int, world: int) -> Path:
    """The training loop of one process; rank 0 evaluates, logs and saves."""
    torch.manual_seed(args.seed)
    np.random.seed(args.seed + rank)
    t0 = time.time()
    clips = read_clips(args.data, args.extra_sources)
    sampler = make_sampler(clips, replace_seed(args, args.seed + rank), log)
    val_clips = (
        load_clips(
            [
                c
                for c in read_clips(choice_data(args.data), args.extra_sources)
                if c.split == "val" and not held_out(c, args.hold_out)
            ]
        )
        if rank == 0
        else []
    )
    val_x, val_y = fixed_windows(val_clips, seed=args.seed) if rank == 0 else (np.zeros(0), np.zeros(0))
    log(f"{len(val_clips)} val clips, {len(val_x)} val windows; ready in {time.time() - t0:.0f} s")
    net = ResNetSE()
    model: torch.nn.Module = net
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(net)
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    batch = args.batch // world
    steps = args.windows // args.batch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=args.lr, total_steps=steps, pct_start=0.05, anneal_strategy="cos"
    )
    best_score, best_path = -1.0, run_dir / "best.pt"
    started, data_s = time.time(), 0.0
    eval_every = max(1, steps // args.evaluations)
    for step in range(1, steps + 1):
        model.train()
        tick = time.time()
        x, y, teacher = sampler.batch(batch)
        data_s += time.time() - tick
        targets = soft_targets(y, teacher, args.distill)
        targets = targets * (1 - args.label_smoothing) + args.label_smoothing / len(LABELS)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(x)
        loss = torch.sum(-targets * F.log_softmax(logits.float(), -1), dim=-1).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        if args.mine_every and step % args.mine_every == 0 and step < steps:
            mine_hard_negatives(net, sampler, args, log)
        if step % 100 == 0:
            elapsed = time.time() - started
            log(
                f"step {step}/{steps} loss {loss.item():.4f}; {step * args.batch:,} windows seen, "
                f"{step * args.batch / elapsed:.0f} windows/s (data {data_s / elapsed:.0%}); "
                f"{elapsed / step * (steps - step) / 60:.1f} min left"
            )
        if rank == 0 and ((step % eval_every == 0 and step >= steps // 3) or step == steps):
            score, recalls = selection_score(predict(net, val_x), val_y)
            improved = score >= best_score
            if improved:
                best_score = score
                torch.save(net.state_dict(), best_path)
            log(f"val step {step}: score {score:.4f} {json.dumps(recalls)}{' (best)' if improved else ''}")
    if rank == 0:
        torch.save(net.state_dict(), run_dir / "last.pt")
    elapsed = time.time() - started
    log(
        f"training took {elapsed / 60:.1f} min: {steps * args.batch:,} windows at "
        f"{steps * args.batch / elapsed:.0f} windows/s; best val score {best_score:.4f}"
    )
    return best_path


def choice_data(data: str) -> str:
    """The data whose val split chooses checkpoints and defaults.

    An openly licensed model is trained on open clips only, but the open val split has almost no glass
    breaks or gunshots to choose by: it is chosen on the same val split as the main model (a choice of
    checkpoint and three thresholds, no training on it).
    """
    return "all" if data == "open" else data


def export_checkpoint(
    checkpoint: Path,
    run_dir: Path,
    name: str = MODEL_STEM,
    *,
    version: str = MODEL_VERSION,
    provenance: dict[str, Any] | None = None,
) -> Path:
    """Export a checkpoint as RUN_DIR/NAME.onnx with a placeholder-detection sidecar; return its path."""
    from training.export import export_model

    model = ResNetSE()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    model.eval()
    return export_model(
        model, run_dir / name, name=name, version=version, detection=PLACEHOLDER, provenance=provenance
    )


def ship_checkpoint(
    checkpoint: Path,
    run_dir: Path,
    log: Log,
    *,
    data: str = "shared",
    name: str = MODEL_STEM,
    copy: bool = True,
    version: str = MODEL_VERSION,
    provenance: dict[str, Any] | None = None,
    metrics: dict[str, object] | None = None,
) -> None:
    """Export, then ship (`training.ship`): defaults on val, test metrics, the operating curve, the integration."""
    path = export_checkpoint(checkpoint, run_dir, name, version=version, provenance=provenance)
    model = ResNetSE()
    model.load_state_dict(torch.load(checkpoint, map_location="cpu"))
    metrics = {
        **(metrics or {}),
        "parameters": count_parameters(model),
        "multiply_adds": count_macs(model),
    }
    shipped = ship(ModelInfo.load(path), log=log, data=data, metrics=metrics, copy=copy)
    measure_built_set(shipped)


def measure_built_set(info: ModelInfo) -> None:
    """Add the built set's test split, at the model's own defaults, to its sidecar's metrics.

    More, and more varied, background than the dev test split has: reported, never used to choose.
    """
    if not (extra_data_dir() / "manifest.csv").is_file():
        return
    from training import evaluate

    detection = evaluate.detection_of(info)
    built = evaluate.evaluate_model(info.path, "test", detection, data="extra")
    replace(info, metrics={**info.metrics, "built_set_test": built}).save()


def parser() -> argparse.ArgumentParser:
    """The recipe's arguments; the defaults are the shipped model's recipe."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--windows", type=int, default=1_000_000, help="training windows in all")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=4e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument("--label-smoothing", type=float, default=0.05)
    parser.add_argument("--background-share", type=float, default=0.7, help="background windows per batch")
    parser.add_argument(
        "--distill", type=float, default=0.0, help="weight of the teacher's scores in event targets (0: off)"
    )
    parser.add_argument(
        "--synth", type=int, default=0, help="synthetic glass breaks added to train (training.synth)"
    )
    parser.add_argument("--evaluations", type=int, default=12, help="val checks (in the last two thirds)")
    parser.add_argument(
        "--data", choices=DATA_CHOICES, default="all", help="training data (training.audio.read_clips)"
    )
    parser.add_argument(
        "--extra-sources",
        type=lambda text: frozenset(text.split(",")) if text else None,
        help="comma-separated sources of the built set to use (default: all of them)",
    )
    parser.add_argument(
        "--hold-out",
        type=lambda text: tuple(text.split(",")) if text else (),
        default=(),
        help="comma-separated units left out of training: SOURCE, LABEL:SOURCE or LABEL:SOURCE:GROUP",
    )
    parser.add_argument(
        "--mine-every", type=int, default=1000, help="steps between hard-negative mining (0: off)"
    )
    parser.add_argument("--mine-count", type=int, default=2000, help="background windows scored per mining")
    parser.add_argument("--mine-keep", type=float, default=0.05, help="top share of them kept (if > 0.5)")
    parser.add_argument("--mine-pool", type=int, default=4000, help="hard negatives kept (newest)")
    parser.add_argument(
        "--hard-share", type=float, default=0.3, help="share of background drawn from the pool"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads of a single-process run")
    parser.add_argument(
        "--processes", type=int, default=2, help="data-parallel processes of one thread each (one per core)"
    )
    parser.add_argument(
        "--bf16",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="bfloat16 autocast for the network's forward pass (about 1.8x faster on AVX-512 CPUs; weights stay float32)",
    )
    parser.add_argument("--name", default=MODEL_STEM, help="file stem of the exported model")
    parser.add_argument("--run", default="shipped", help="name of the folder under training/runs/")
    parser.add_argument("--checkpoint", type=Path, help="skip training: ship this state_dict")
    parser.add_argument("--no-ship", action="store_true", help="train only")
    parser.add_argument(
        "--no-copy", action="store_true", help="ship into the run folder only, not the integration"
    )
    return parser


def run_logger(run_dir: Path) -> Log:
    """A logger that prints and appends to run_dir/train.log, with minutes since start."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = (run_dir / "train.log").open("a")
    started = time.time()

    def log(message: str) -> None:
        line = f"[{(time.time() - started) / 60:6.1f} min] {message}"
        print(line, flush=True)
        log_file.write(line + "\n")
        log_file.flush()

    return log


def main() -> None:
    """Parse arguments, train, ship."""
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    run_dir = REPO_ROOT / "training" / "runs" / args.run
    log = run_logger(run_dir)
    started = time.time()
    log(f"arguments: {vars(args)}")
    checkpoint = args.checkpoint or train(args, run_dir, log)
    if not args.no_ship:
        ship_checkpoint(
            checkpoint, run_dir, log, data=choice_data(args.data), name=args.name, copy=not args.no_copy
        )
    log(f"total wall time {(time.time() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
