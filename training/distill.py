"""Distil the accurate model into the compact one: the seed's ResNetSE, taught by EfficientAT mn04.

    TRAIN_MODULE=training.distill scripts/train --run compact-v3 --ship
    TRAIN_MODULE=training.crossval scripts/train --model compact --tag compact-v3   # one teacher per fold

The recipe (DCASE Task 1's knowledge distillation, sized for two CPU cores):
1. Augmented windows as audio, drawn exactly as for the accurate model (`training.finetune.draw_windows`:
   each event clip in random background at -5..+20 dB SNR, background bursts and beds, a random device
   response); `--rounds` draws of `--mixes` per event clip.
2. Per window, computed once in `--workers` processes: the teacher's class probabilities (the accurate
   model through the engine's own front end and onnxruntime, on the whole 2.02 s window) and the
   student's 24-band FBANK of the window's last 1.935 s.
3. The ResNetSE (61,574 parameters, unchanged) trains on them with
   loss = lambda x CE(label, smoothed) + (1 - lambda) x T^2 x KL(teacher_T || student_T),
   Freq-MixStyle and SpecAugment on the FBANK around the engine's per-window mean normalisation.
   `--windows` in all; of `--evaluations` checkpoints, the one with the best balanced accuracy of the `val`
   clips is kept.
4. Exported as the compact model; `--ship` chooses its defaults on val streams (`training.ship`).

Every run prints its throughput (windows per second) and the windows seen, and keeps its cache and
checkpoints in training/runs/<run>/.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import json
import math
import multiprocessing
from pathlib import Path
import time

import numpy as np
import torch
import torch.nn.functional as F

from custom_components.sound_sentry.engine.backends import ModelBackend, load_backend
from custom_components.sound_sentry.engine.fbank import FbankExtractor, normalise
from custom_components.sound_sentry.engine.frontend import FrontEnd
from custom_components.sound_sentry.engine.model import model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from training import finetune
from training.audio import LABELS, WINDOW_SAMPLES, Clip, held_out, read_clips
from training.audio_paths import REPO_ROOT
from training.augment import spec_augment
from training.finetune import Pool, SavedArrays, log
from training.resnetse import ResNetSE
from training.train import MODEL_STEM, export_checkpoint, predict, ship_checkpoint


@dataclass
class Cache(SavedArrays):
    """The student's FBANK (float16, before mean normalisation) and the teacher's log-probabilities."""

    train_frames: np.ndarray
    train_labels: np.ndarray
    train_teacher: np.ndarray
    val_frames: np.ndarray
    val_labels: np.ndarray
    val_ids: np.ndarray


def student_frames(windows: list[np.ndarray], fbank: FbankExtractor) -> np.ndarray:
    """FBANK of each window's last `WINDOW_SAMPLES` samples, (N, 192, 24) float16, not normalised."""
    return np.stack([fbank.compute(w[-WINDOW_SAMPLES:]) for w in windows]).astype(np.float16)


class Featuriser:
    """The student's frames and the teacher's log-probabilities of augmented windows (one per process)."""

    def __init__(self, teacher: Path) -> None:
        self.fbank = FbankExtractor()
        self.teacher_front_end = FrontEnd(ModelInfo.load(teacher).front_end)
        self.teacher: ModelBackend = load_backend(teacher, "onnxruntime")

    def student(self, windows: list[np.ndarray]) -> np.ndarray:
        """The student's input of each window (`student_frames`)."""
        return student_frames(windows, self.fbank)

    def teacher_log_probabilities(self, windows: list[np.ndarray], batch: int = 64) -> np.ndarray:
        """Log p of the teacher's four classes for each whole window, (N, 4) float32."""
        out = []
        for i in range(0, len(windows), batch):
            feats = np.stack([self.teacher_front_end.features(w) for w in windows[i : i + batch]])
            out.append(self.teacher.predict(feats.astype(np.float32)))
        return np.log(np.maximum(np.concatenate(out), 1e-7)).astype(np.float32)


@dataclass
class _Worker:
    """A drawing process's state: the decoded audio (inherited through fork, not copied) and its networks."""

    pool: Pool
    mixes: int
    featuriser: Featuriser


_WORKER: list[_Worker] = []
"""The process's state, set once by `_start_worker`."""


def _start_worker(pool: Pool, teacher: Path, mixes: int) -> None:
    _WORKER.append(_Worker(pool, mixes, Featuriser(teacher)))


def _draw_part(task: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One part of a round: every `parts`-th event clip's mixes and their share of background windows."""
    seed, part, parts = task
    worker = _WORKER[0]
    pool = Pool(worker.pool.events[part::parts], worker.pool.background)
    windows, labels = finetune.draw_windows(pool, worker.mixes, np.random.default_rng(seed))
    return (
        worker.featuriser.student(windows),
        np.array(labels, dtype=np.int64),
        worker.featuriser.teacher_log_probabilities(windows),
    )


def prepare(train_clips: list[Clip], val_clips: list[Clip], args: argparse.Namespace) -> Cache:
    """Draw `--rounds` augmented rounds and featurise them for both networks, in `--workers` processes."""
    started = time.perf_counter()
    train_pool, val_pool = finetune.load_pool(train_clips), finetune.load_pool(val_clips)
    log(f"decoded {len(train_clips) + len(val_clips)} clips in {time.perf_counter() - started:.0f} s")
    parts = min(4 * args.workers, len(train_pool.events))
    tasks = [(args.seed * 1000 + r * parts + p, p, parts) for r in range(args.rounds) for p in range(parts)]
    frames, labels, teacher = [], [], []
    started = time.perf_counter()
    context = multiprocessing.get_context("fork")  # the workers share the decoded audio, copy-on-write
    with context.Pool(args.workers, _start_worker, (train_pool, args.teacher, args.mixes)) as workers:
        for done, (f, y, t) in enumerate(workers.imap(_draw_part, tasks), start=1):
            frames.append(f)
            labels.append(y)
            teacher.append(t)
            if done % parts == 0:
                count = sum(len(y) for y in labels)
                elapsed = time.perf_counter() - started
                log(
                    f"round {done // parts}/{args.rounds}: {count} windows drawn, featurised and taught in "
                    f"{elapsed:.0f} s ({count / elapsed:.0f} windows/s)"
                )
    windows, val_labels, val_ids = finetune.eval_windows(val_pool, np.random.default_rng(args.seed))
    val_frames = student_frames(windows, FbankExtractor())
    return Cache(
        train_frames=np.concatenate(frames),
        train_labels=np.concatenate(labels),
        train_teacher=np.concatenate(teacher),
        val_frames=val_frames,
        val_labels=np.array(val_labels, dtype=np.int64),
        val_ids=np.array(val_ids, dtype=np.int64),
    )


def distillation_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    teacher_log_p: torch.Tensor,
    *,
    weight: float,
    temperature: float,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """The loss: weight x CE(labels) + (1 - weight) x T^2 x KL(teacher_T || student_T) (Hinton et al., 2015).

    The teacher's log-probabilities serve as its logits: softmax(log p / T) is its tempered output.
    """
    ce = F.cross_entropy(logits, labels, label_smoothing=smoothing)
    if weight >= 1:
        return ce
    kl = F.kl_div(
        F.log_softmax(logits / temperature, dim=-1),
        F.log_softmax(teacher_log_p / temperature, dim=-1),
        log_target=True,
        reduction="batchmean",
    )
    return weight * ce + (1 - weight) * temperature**2 * kl


def student_batch(frames: np.ndarray, rng: np.random.Generator, generator: torch.Generator) -> torch.Tensor:
    """Training input from cached frames: Freq-MixStyle, the engine's mean normalisation, SpecAugment."""
    x = finetune.freq_mixstyle(torch.from_numpy(frames).float(), rng)
    return spec_augment(x - x.mean(dim=1, keepdim=True), generator)


def fit(cache: Cache, args: argparse.Namespace, run_dir: Path) -> dict[str, object]:
    """Train the student on the cache; keep the best checkpoint by val clip balanced accuracy."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    net = ResNetSE()
    optimiser = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps = max(1, args.windows // args.batch)
    evaluate_every = math.ceil(steps / args.evaluations)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=steps, pct_start=0.05
    )
    counts = np.bincount(cache.train_labels, minlength=len(LABELS))
    log(
        f"student: {len(cache.train_labels)} cached windows (per class {counts.tolist()}), {steps} steps of "
        f"{args.batch} = {steps * args.batch} windows, lambda {args.weight}, T {args.temperature}"
    )
    val_x = normalise(cache.val_frames.astype(np.float32))
    best, history, started, seen = -1.0, [], time.perf_counter(), 0
    order = np.zeros(0, dtype=np.int64)
    for step in range(1, steps + 1):
        while len(order) < args.batch:  # epochs run on, one shuffle after another
            order = np.concatenate([order, rng.permutation(len(cache.train_labels))])
        idx, order = np.sort(order[: args.batch]), order[args.batch :]
        net.train()
        x = student_batch(cache.train_frames[idx], rng, generator)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            logits = net(x)
        loss = distillation_loss(
            logits.float(),
            torch.from_numpy(cache.train_labels[idx]),
            torch.from_numpy(cache.train_teacher[idx]),
            weight=args.weight,
            temperature=args.temperature,
            smoothing=args.smoothing,
        )
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        schedule.step()
        seen += len(idx)
        if step % 200 == 0:
            elapsed = time.perf_counter() - started
            log(
                f"step {step}/{steps} loss {loss.item():.4f}; {seen} windows seen, {seen / elapsed:.0f} windows/s; "
                f"{elapsed / step * (steps - step) / 60:.1f} min left"
            )
        if step % evaluate_every == 0 or step == steps:
            bacc, recalls = finetune.balanced_accuracy(predict(net, val_x), cache.val_labels, cache.val_ids)
            history.append(
                {"step": step, "windows_seen": seen, "val_balanced_accuracy": bacc, "val_recalls": recalls}
            )
            improved = bacc > best
            if improved:
                best = bacc
                torch.save(net.state_dict(), run_dir / "best.pt")
            log(
                f"val after {seen} windows: balanced accuracy {bacc:.3f} (per class {np.round(recalls, 3).tolist()})"
                f"{' (best)' if improved else ''}"
            )
    torch.save(net.state_dict(), run_dir / "last.pt")
    elapsed = time.perf_counter() - started
    log(
        f"training took {elapsed / 60:.1f} min: {seen} windows at {seen / elapsed:.0f} windows/s; best val {best:.3f}"
    )
    return {"windows_seen": seen, "history": history, "best_val_balanced_accuracy": best}


def parser() -> argparse.ArgumentParser:
    """The recipe's options (also taken by `training.crossval --model compact`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--run", default="compact")
    p.add_argument(
        "--teacher",
        type=Path,
        default=model_path("accurate"),
        help="the teacher .onnx (default: the shipped accurate model)",
    )
    p.add_argument("--mixes", type=int, default=8, help="augmented mixes per event clip and round")
    p.add_argument("--rounds", type=int, default=10, help="independent augmentation draws")
    p.add_argument("--windows", type=int, default=360_000, help="training windows in all")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-3)
    p.add_argument("--weight-decay", type=float, default=1e-3)
    p.add_argument("--smoothing", type=float, default=0.05, help="label smoothing of the cross-entropy")
    p.add_argument(
        "--weight",
        type=float,
        default=0.1,
        help="lambda: the cross-entropy's share of the loss (folds: 0.1 > 0.5, 1)",
    )
    p.add_argument("--temperature", type=float, default=2.0, help="T of the distillation term")
    p.add_argument("--evaluations", type=int, default=6, help="val checks, evenly spaced; the best is kept")
    p.add_argument("--workers", type=int, default=2, help="processes drawing and featurising windows")
    p.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=True, help="bfloat16 autocast")
    finetune.add_run_options(p, seed=20261205, version="3.0.0")
    return p


def train_student(
    args: argparse.Namespace, hold_out: tuple[str, ...] = ()
) -> tuple[Path, dict[str, object], dict[str, object]]:
    """One run (leaving `hold_out` units out): the best checkpoint's path, its provenance and the summary."""
    torch.set_num_threads(args.threads)
    run_dir = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    clips = read_clips(args.data)
    train_clips = [c for c in clips if c.split == "train" and not held_out(c, hold_out)]
    val_clips = [c for c in clips if c.split == "val" and not held_out(c, hold_out)]
    log(
        f"{len(train_clips)} train clips, {len(val_clips)} val clips; {len(hold_out)} units held out; teacher {args.teacher}"
    )
    if args.cache is not None:
        cache = Cache.load(args.cache)
        log(f"cache {args.cache}: {len(cache.train_labels)} training windows")
    else:
        cache = prepare(train_clips, val_clips, args)
        cache.save(run_dir / "cache.npz")
    summary = fit(cache, args, run_dir)
    teacher = ModelInfo.load(args.teacher)
    provenance = {
        "commit": finetune.git_commit(),
        "seed": args.seed,
        "arguments": {k: str(v) for k, v in vars(args).items() if k != "run_dir"},
        "data_hash": finetune.data_hash(train_clips + val_clips),
        "held_out": list(hold_out),
        "windows_seen": summary["windows_seen"],
        "teacher": f"{teacher.name} {teacher.version} (sha256 {teacher.sha256[:16]})",
    }
    (run_dir / "summary.json").write_text(json.dumps({"provenance": provenance, **summary}, indent=2) + "\n")
    return run_dir / "best.pt", provenance, summary


def main() -> None:
    """Train and export; with --ship also choose the defaults and copy the model into the integration."""
    args = parser().parse_args()
    args.run_dir = REPO_ROOT / "training" / "runs" / args.run
    started = time.perf_counter()
    checkpoint, provenance, summary = train_student(args)
    if not args.ship:
        export_checkpoint(checkpoint, args.run_dir, MODEL_STEM, version=args.version, provenance=provenance)
    else:  # ship_checkpoint exports it too
        ship_checkpoint(
            checkpoint,
            args.run_dir,
            log,
            data=args.data,
            version=args.version,
            provenance=provenance,
            metrics={"val_balanced_accuracy_clips": summary["best_val_balanced_accuracy"]},
        )
    log(f"done after {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
