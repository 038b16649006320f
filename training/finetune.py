"""Fine-tune the accurate model: EfficientAT mn04 (AudioSet) on Sound Sentry's sounds, at 8 kHz.

    TRAIN_MODULE=training.finetune scripts/train --run accurate-v1

The recipe, sized for two CPU cores:
1. Windows of 2 s (200 log mel frames, the engine's front end) from the `train` split, augmented as
   audio: each event clip mixed into random background at -5..+20 dB SNR (background at -55..-25 dBFS)
   with its onset anywhere in the window, background windows and background + background mixes; each
   window then through a random device response (EQ, telephone band, a G.711 mu-law round trip, room
   reverb) and, in the feature domain, Freq-MixStyle (DCASE Task 1's unseen-device augmentation).
   `--mixes` draws per event clip, `--rounds` repeats the whole draw with new randomness.
2. mn04's feature layers 0-12 stay frozen: their activations (48 x 5 x 13 per window) are computed once
   and cached, with the frozen network's AudioSet outputs.
3. Layers 13-16 (the last three inverted residual blocks and the 1x1 conv to 384) and a new 4-class
   head train on the cache: cross-entropy (class-balanced) plus an auxiliary loss that keeps mn04's own
   AudioSet classifier, fed the new embedding, close to the frozen network's outputs (so that what
   AudioSet knows of baby laughter, jackhammers or knocks stays in the embedding).
4. The epoch with the best balanced accuracy on the `val` clips (max over each clip's windows) is
   exported to ONNX; `training.evaluate` then chooses its defaults on val streams and measures it.

Every run prints its throughput (windows per second) and the windows seen, and keeps its caches and
checkpoints in training/runs/<run>/.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
import hashlib
import json
import math
from pathlib import Path
import subprocess
import time
from typing import Self

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from custom_components.sound_sentry.engine.logmel import LogMelExtractor, LogMelSettings
from custom_components.sound_sentry.engine.model_info import ModelInfo
from training.audio import LABELS, Clip, held_out, load_audio, read_clips
from training.audio_paths import REPO_ROOT
from training.mobilenet import SoundNet, export_onnx, window_samples
from training.ship import ship, write_info

RATE = 8000
WINDOW = window_samples()
SHIPPED_NAME = "sound_sentry_mobilenet.onnx"
FROZEN = 13
"""mn04's feature layers before this index stay frozen; the rest fine-tune."""
Array = npt.NDArray[np.float32]


def log(message: str) -> None:
    """A timestamped line, flushed (runs are long)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def rms_db(x: Array) -> float:
    """RMS level in dBFS (full-scale square wave = 0)."""
    return float(10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-12))


def active_db(x: Array) -> float:
    """Level of the loud part of a clip: the RMS of its 10 ms frames within 20 dB of the loudest."""
    frames = x[: x.size // 80 * 80].reshape(-1, 80)
    if not len(frames):
        return rms_db(x)
    energy = np.mean(np.square(frames, dtype=np.float64), axis=1)
    loud = energy[energy >= energy.max() * 0.01]
    return float(10 * np.log10(loud.mean() + 1e-12))


def segment(audio: Array, size: int, rng: np.random.Generator) -> Array:
    """A random stretch of `size` samples, looping a short clip."""
    if audio.size < size:
        audio = np.tile(audio, size // max(1, audio.size) + 1)
    start = int(rng.integers(0, audio.size - size + 1))
    return audio[start : start + size].copy()


def place_event(event: Array, rng: np.random.Generator) -> Array:
    """The event in a window of zeros, so that its energy lies anywhere in it (sometimes just begun)."""
    out = np.zeros(WINDOW, np.float32)
    frames = event[: event.size // 80 * 80].reshape(-1, 80)
    energy = np.mean(np.square(frames), axis=1) if len(frames) else np.ones(1)
    peak = int(np.argmax(energy)) * 80
    # Where the loudest moment lands: anywhere, with a late third for onsets at the window's end.
    target = (
        int(rng.uniform(0.05, 0.95) * WINDOW) if rng.random() < 0.7 else int(rng.uniform(0.75, 0.97) * WINDOW)
    )
    start = target - peak
    lo, hi = max(0, start), min(WINDOW, start + event.size)
    if hi > lo:
        out[lo:hi] = event[lo - start : hi - start]
    return out


def _fft_size(samples: int) -> int:
    """The power of two at or above `samples`."""
    return 1 << (samples - 1).bit_length()


def device_response(x: Array, rng: np.random.Generator) -> Array:
    """A random microphone/camera: EQ, telephone band, reverb, mu-law (each with some probability)."""
    size = _fft_size(x.size)  # a power of two: a 2 s window's own length (16,176) is 20x slower
    spectrum = np.fft.rfft(x, size)
    freqs = np.fft.rfftfreq(size, 1 / RATE)
    if rng.random() < 0.7:  # smooth random EQ, +-8 dB, a few knots on a log-frequency axis
        knots = np.geomspace(50, 4000, 6)
        gains = rng.uniform(-8, 8, knots.size)
        curve = np.interp(np.log(np.maximum(freqs, 50)), np.log(knots), gains)
        spectrum *= 10 ** (curve / 20)
    if rng.random() < 0.2:  # telephone band
        spectrum *= ((freqs > 300) & (freqs < 3400)).astype(np.float64) * 0.97 + 0.03
    y = np.fft.irfft(spectrum, n=size)[: x.size].astype(np.float32)
    if rng.random() < 0.3:  # a room: exponentially decaying noise, RT60 0.2-0.7 s
        rt60 = rng.uniform(0.2, 0.7)
        length = int(rt60 * RATE)
        rir = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / (rt60 * RATE))
        rir[0] = 1.0 / rng.uniform(0.3, 1.0)
        rir /= np.sqrt(np.sum(rir**2))
        size = _fft_size(y.size + length)
        wet = np.fft.irfft(np.fft.rfft(y, size) * np.fft.rfft(rir, size))[: y.size]
        y = wet.astype(np.float32)
    if rng.random() < 0.25:  # G.711 mu-law round trip
        mu = 255.0
        c = np.sign(y) * np.log1p(mu * np.minimum(np.abs(y), 1)) / np.log1p(mu)
        c = np.round(c * 127) / 127
        y = (np.sign(c) * ((1 + mu) ** np.abs(c) - 1) / mu).astype(np.float32)
    return y


@dataclass
class Pool:
    """Decoded clips of one split, by label."""

    events: list[tuple[Clip, Array]]
    background: list[tuple[Clip, Array]]


def load_pool(clips: list[Clip]) -> Pool:
    """Decode every clip once."""
    events, background = [], []
    for clip in clips:
        audio = load_audio(clip.path)
        if audio.size < 400:
            continue
        (background if clip.label == "background" else events).append((clip, audio))
    return Pool(events, background)


def draw_windows(
    pool: Pool, mixes: int, rng: np.random.Generator, background_share: float = 0.6
) -> tuple[list[Array], list[int]]:
    """Augmented training windows (audio) and their labels.

    Event and background clips are treated alike, so that nothing but the sound itself tells them
    apart: each is placed in the window (a short one as a burst anywhere in it), at a random level, and
    mixed into a random background bed at -5..+20 dB SNR most of the time. A background clip is also
    used as a bed of its own (looped where short). `background_share` of the windows are background.
    """
    windows: list[Array] = []
    labels: list[int] = []
    noise_floor = 10 ** (-62 / 20)

    def bed(size: int) -> Array:
        _, audio = pool.background[int(rng.integers(len(pool.background)))]
        return segment(audio, size, rng)

    def placed(audio: Array) -> Array:
        sound = place_event(audio, rng)
        level = rng.uniform(-40, -10)  # the sound's loud part, in dBFS
        sound *= np.float32(10 ** ((level - active_db(audio)) / 20))
        if rng.random() < 0.85:
            background = bed(WINDOW)
            snr = rng.uniform(-5, 20)
            background *= np.float32(10 ** ((level - snr - max(rms_db(background), -90)) / 20))
            sound = sound + background
        return sound

    for clip, audio in pool.events:
        for _ in range(mixes):
            windows.append(placed(audio))
            labels.append(clip.label_index)
    events = len(windows)
    for _ in range(int(events * background_share / (1 - background_share))):
        _, audio = pool.background[int(rng.integers(len(pool.background)))]
        if rng.random() < 0.5:
            window = placed(audio)
        else:  # a bed: the clip as the room sounds, at -50..-10 dBFS, sometimes over another
            window = segment(audio, WINDOW, rng)
            window *= np.float32(10 ** ((rng.uniform(-50, -10) - max(rms_db(window), -90)) / 20))
            if rng.random() < 0.33:
                other = bed(WINDOW)
                window = window + other * np.float32(
                    10 ** ((rng.uniform(-55, -25) - max(rms_db(other), -90)) / 20)
                )
        windows.append(window)
        labels.append(0)
    out = []
    for window in windows:
        y = device_response(window, rng) + rng.standard_normal(WINDOW).astype(np.float32) * noise_floor
        out.append(np.clip(y * np.float32(10 ** (rng.uniform(-6, 6) / 20)), -1, 1).astype(np.float32))
    return out, labels


def eval_windows(pool: Pool, rng: np.random.Generator) -> tuple[list[Array], list[int], list[int]]:
    """Validation windows: each clip's windows at a 0.5 s hop (short clips in quiet noise), with clip ids."""
    windows, labels, clip_ids = [], [], []
    for index, (clip, audio) in enumerate(pool.events + pool.background):
        x = audio
        if x.size < WINDOW:
            padded = rng.standard_normal(WINDOW).astype(np.float32) * 10 ** (-65 / 20)
            start = (WINDOW - x.size) // 2
            padded[start : start + x.size] += x
            x = padded
        for start in range(0, x.size - WINDOW + 1, 4000):
            windows.append(x[start : start + WINDOW])
            labels.append(clip.label_index)
            clip_ids.append(index)
    return windows, labels, clip_ids


def log_mel(windows: list[Array], bands: int) -> Array:
    """The engine's front end on each window: (N, 200, bands)."""
    extractor = LogMelExtractor(LogMelSettings(num_bands=bands))
    return np.stack([extractor.compute(w) for w in windows]).astype(np.float32)


def freq_mixstyle(
    feats: torch.Tensor, rng: np.random.Generator, p: float = 0.4, alpha: float = 0.4
) -> torch.Tensor:
    """Freq-MixStyle: mix each band's time statistics with another window's (features [B, T, F])."""
    if rng.random() > p or len(feats) < 2:
        return feats
    mean = feats.mean(dim=1, keepdim=True)
    std = (feats.var(dim=1, keepdim=True) + 1e-6).sqrt()
    lam = torch.from_numpy(rng.beta(alpha, alpha, (len(feats), 1, 1)).astype(np.float32))
    perm = torch.from_numpy(rng.permutation(len(feats)))
    mixed_mean = lam * mean + (1 - lam) * mean[perm]
    mixed_std = lam * std + (1 - lam) * std[perm]
    return (feats - mean) / std * mixed_std + mixed_mean


@torch.no_grad()
def cache_activations(
    net: SoundNet, feats: Array, rng: np.random.Generator | None, batch: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Frozen layers' activations (float16) and the frozen network's AudioSet probabilities (float16)."""
    frozen, rest = net.features[:FROZEN], net.features[FROZEN:]
    acts, audioset = [], []
    started = time.perf_counter()
    for i in range(0, len(feats), batch):
        x = torch.from_numpy(feats[i : i + batch])
        if rng is not None:
            x = freq_mixstyle(x, rng)
        a = frozen(x.transpose(1, 2).unsqueeze(1))
        emb = rest(a).mean(dim=(2, 3))
        acts.append(a.half().numpy())
        audioset.append(torch.sigmoid(net.audioset(emb[:, :, None, None])).half().numpy())
    elapsed = time.perf_counter() - started
    log(f"cached {len(feats)} windows in {elapsed:.0f} s ({len(feats) / max(elapsed, 1e-9):.0f} windows/s)")
    return np.concatenate(acts), np.concatenate(audioset)


def balanced_accuracy(
    probs: np.ndarray, labels: np.ndarray, clip_ids: np.ndarray
) -> tuple[float, list[float]]:
    """Per-clip balanced accuracy: a clip is its class with the highest max-over-windows event score."""
    clips = np.unique(clip_ids)
    predicted, truth = [], []
    for c in clips:
        p = probs[clip_ids == c]
        peak = p[:, 1:].max(axis=0)
        predicted.append(0 if peak.max() < 0.5 else 1 + int(np.argmax(peak)))
        truth.append(int(labels[clip_ids == c][0]))
    predicted_a, truth_a = np.array(predicted), np.array(truth)
    recalls = [
        float(np.mean(predicted_a[truth_a == k] == k)) for k in range(len(LABELS)) if np.any(truth_a == k)
    ]
    return float(np.mean(recalls)), recalls


def trainable(net: SoundNet, recipe: str) -> list[nn.Parameter]:
    """Freeze the network but the recipe's part (layers 13-16 and the head, or the head alone)."""
    for p in net.parameters():
        p.requires_grad_(False)
    params = [*net.head.parameters()]
    if recipe == "finetune":
        params += [*net.features[FROZEN:].parameters()]
    for p in params:
        p.requires_grad_(True)
    return params


def predict_cached(net: SoundNet, acts: np.ndarray, batch: int = 512) -> np.ndarray:
    """Our class probabilities from cached activations."""
    net.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(acts), batch):
            emb = net.features[FROZEN:](torch.from_numpy(acts[i : i + batch]).float()).mean(dim=(2, 3))
            out.append(torch.softmax(net.head(emb), dim=1).numpy())
    return np.concatenate(out)


def git_commit() -> str:
    """The commit the run started from."""
    try:
        return subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, text=True).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def data_hash(clips: list[Clip]) -> str:
    """A hash of the clips used (paths, labels, splits): which data a model saw."""
    digest = hashlib.sha256()
    for clip in clips:
        digest.update(f"{clip.path.name},{clip.label},{clip.split}\n".encode())
    return digest.hexdigest()[:16]


class SavedArrays:
    """A dataclass of arrays kept with its run as one .npz (other recipes reuse it with --cache)."""

    def save(self, path: Path) -> None:
        """Write every field to `path`."""
        np.savez(path, **dict(vars(self)))

    @classmethod
    def load(cls, path: Path) -> Self:
        """A saved instance."""
        with np.load(path) as data:
            return cls(**{k: data[k] for k in data.files})


@dataclass
class Cache(SavedArrays):
    """Training and validation windows as the frozen layers' activations, computed once per run."""

    train_acts: np.ndarray
    train_audioset: np.ndarray
    train_labels: np.ndarray
    val_acts: np.ndarray
    val_labels: np.ndarray
    val_ids: np.ndarray


def prepare(
    net: SoundNet,
    train_clips: list[Clip],
    val_clips: list[Clip],
    args: argparse.Namespace,
    rng: np.random.Generator,
) -> Cache:
    """Decode, augment, featurise and run the frozen layers over the training and validation windows."""
    started = time.perf_counter()
    train_pool, val_pool = load_pool(train_clips), load_pool(val_clips)
    log(f"decoded {len(train_clips) + len(val_clips)} clips in {time.perf_counter() - started:.0f} s")
    acts, audioset, labels = [], [], []
    for round_ in range(args.rounds):
        t0 = time.perf_counter()
        windows, round_labels = draw_windows(train_pool, args.mixes, rng)
        feats = log_mel(windows, args.bands)
        del windows
        log(
            f"round {round_ + 1}: {len(feats)} windows drawn and featurised in {time.perf_counter() - t0:.0f} s"
        )
        a, s = cache_activations(net, feats, rng)
        acts.append(a)
        audioset.append(s)
        labels.extend(round_labels)
        del feats
    windows, val_labels, val_ids = eval_windows(val_pool, rng)
    val_acts, _ = cache_activations(net, log_mel(windows, args.bands), None)
    return Cache(
        train_acts=np.concatenate(acts),
        train_audioset=np.concatenate(audioset),
        train_labels=np.array(labels, dtype=np.int64),
        val_acts=val_acts,
        val_labels=np.array(val_labels, dtype=np.int64),
        val_ids=np.array(val_ids, dtype=np.int64),
    )


def fit(
    net: SoundNet, cache: Cache, args: argparse.Namespace, run_dir: Path, rng: np.random.Generator
) -> dict[str, object]:
    """Train the recipe's parameters on the cache; keep each epoch's and the best checkpoint."""
    params = trainable(net, args.recipe)
    counts = np.bincount(cache.train_labels, minlength=len(LABELS)).astype(np.float64)
    weights = torch.from_numpy((counts.sum() / (len(LABELS) * np.maximum(counts, 1))) ** args.balance).float()
    log(
        f"recipe {args.recipe}: {len(cache.train_acts)} training windows, per class {counts.astype(int).tolist()}"
    )
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=1e-4)
    background = np.flatnonzero(cache.train_labels == 0)
    extra = int(len(background) * args.mine_share) * args.mine_repeats
    steps = args.epochs * math.ceil((len(cache.train_acts) + extra) / args.batch)
    hard = np.zeros(0, dtype=np.int64)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=steps, pct_start=0.1
    )
    ce = nn.CrossEntropyLoss(weight=weights, label_smoothing=args.smoothing)
    bce = nn.BCEWithLogitsLoss()
    tail = net.features[FROZEN:]
    best, seen, history = -1.0, 0, []
    for epoch in range(args.epochs):
        tail.train(args.recipe == "finetune")
        # Hard negatives: the background windows the network last scored highest for an event class
        # come `mine_repeats` extra times per epoch (from the second epoch on).
        order = rng.permutation(
            np.concatenate([np.arange(len(cache.train_acts)), np.repeat(hard, args.mine_repeats)])
        )
        t0, total = time.perf_counter(), 0.0
        for i in range(0, len(order), args.batch):
            idx = np.sort(order[i : i + args.batch])
            emb = tail(torch.from_numpy(cache.train_acts[idx]).float()).mean(dim=(2, 3))
            loss = ce(net.head(emb), torch.from_numpy(cache.train_labels[idx]))
            if args.aux > 0 and args.recipe == "finetune":
                target = torch.from_numpy(cache.train_audioset[idx]).float()
                loss = loss + args.aux * bce(net.audioset(emb[:, :, None, None]), target)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(idx)
            seen += len(idx)
        elapsed = time.perf_counter() - t0
        if args.mine_share > 0:
            scores = predict_cached(net, cache.train_acts[background])[:, 1:].max(axis=1)
            hard = background[np.argsort(scores)[::-1][: int(len(background) * args.mine_share)]]
        probs = predict_cached(net, cache.val_acts)
        bacc, recalls = balanced_accuracy(probs, cache.val_labels, cache.val_ids)
        history.append(
            {
                "epoch": epoch + 1,
                "loss": total / len(order),
                "val_balanced_accuracy": bacc,
                "val_recalls": recalls,
            }
        )
        log(
            f"epoch {epoch + 1}/{args.epochs}: loss {total / len(order):.4f}, {len(order) / elapsed:.0f} windows/s, "
            f"{seen} windows seen; val balanced accuracy {bacc:.3f} (per class {np.round(recalls, 3).tolist()})"
        )
        torch.save(net.state_dict(), run_dir / f"epoch{epoch + 1}.pt")
        if bacc > best:
            best = bacc
            torch.save(net.state_dict(), run_dir / "best.pt")
    net.load_state_dict(torch.load(run_dir / "best.pt", map_location="cpu"))
    net.eval()
    return {"windows_seen": seen, "history": history, "best_val_balanced_accuracy": best}


def parser() -> argparse.ArgumentParser:
    """The recipe's options (also taken by `training.crossval --model accurate`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--run", default="accurate")
    p.add_argument(
        "--recipe",
        choices=["finetune", "head"],
        default="finetune",
        help="finetune: layers 13-16 + head (+ AudioSet loss); head: a linear head on the frozen network",
    )
    p.add_argument("--mixes", type=int, default=8, help="augmented mixes per event clip and round")
    p.add_argument("--rounds", type=int, default=2, help="independent augmentation draws")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--smoothing", type=float, default=0.05, help="label smoothing")
    p.add_argument("--aux", type=float, default=1.0, help="weight of the AudioSet-keeping loss")
    p.add_argument(
        "--balance",
        type=float,
        default=0.0,
        help="class weights (N / count) ** balance: 0 = none, 0.5 = square-root balanced",
    )
    p.add_argument(
        "--mine-share",
        type=float,
        default=0.2,
        help="share of background windows mined as hard negatives after each epoch",
    )
    p.add_argument(
        "--mine-repeats", type=int, default=2, help="extra passes over the hard negatives per epoch"
    )
    p.add_argument(
        "--bands",
        type=int,
        default=128,
        help="log mel bands the network sees: 79 (those below 4 kHz) or 128 (EfficientAT's, the upper "
        "ones at the log floor, as the pretrained network saw 8 kHz audio)",
    )
    add_run_options(p, seed=20261204, version="1.0.0")
    return p


def add_run_options(p: argparse.ArgumentParser, *, seed: int, version: str) -> None:
    """The options every cached recipe (this one, `training.distill`) takes: data, seed, cache, shipping."""
    p.add_argument(
        "--data",
        choices=["shared", "all"],
        default="all",
        help="shared: ../shared/data; all: plus the openly licensed set built from Debian packages",
    )
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--threads", type=int, default=2, help="torch threads")
    p.add_argument(
        "--cache", type=Path, help="reuse the cache.npz of an earlier run (same data, hold-out and teacher)"
    )
    p.add_argument(
        "--ship", action="store_true", help="choose defaults, measure and copy into the integration"
    )
    p.add_argument("--version", default=version, help="the shipped model's version")


def train_and_export(
    args: argparse.Namespace, hold_out: tuple[str, ...] = ()
) -> tuple[ModelInfo, dict[str, object]]:
    """One run: train (leaving `hold_out` units out) and export the best epoch with its sidecar."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    run_dir = args.run_dir
    run_dir.mkdir(parents=True, exist_ok=True)
    clips = read_clips(args.data)
    train_clips = [c for c in clips if c.split == "train" and not held_out(c, hold_out)]
    val_clips = [c for c in clips if c.split == "val" and not held_out(c, hold_out)]
    log(f"{len(train_clips)} train clips, {len(val_clips)} val clips; {len(hold_out)} units held out")
    net = SoundNet()
    if args.cache is not None:
        cache = Cache.load(args.cache)
        log(f"cache {args.cache}: {len(cache.train_acts)} training windows")
    else:
        cache = prepare(net, train_clips, val_clips, args, rng)
        cache.save(run_dir / "cache.npz")
    summary = fit(net, cache, args, run_dir, rng)
    path = run_dir / SHIPPED_NAME
    export_onnx(net, path, bands=args.bands)
    provenance = {
        "commit": git_commit(),
        "seed": args.seed,
        "arguments": {k: str(v) for k, v in vars(args).items() if k != "run_dir"},
        "data_hash": data_hash(train_clips + val_clips),
        "held_out": list(hold_out),
        "windows_seen": summary["windows_seen"],
        "backbone": "EfficientAT mn04_as_mAP_432 (AudioSet, MIT)",
    }
    info = write_info(
        path,
        name="sound_sentry_mobilenet",
        version=args.version,
        architecture="mobilenet",
        front_end=LogMelSettings(num_bands=args.bands),
        window_samples=WINDOW,
        provenance=provenance,
    )
    (run_dir / "summary.json").write_text(json.dumps({"provenance": provenance, **summary}, indent=2) + "\n")
    return info, summary


def main() -> None:
    """Train, export, and with --ship choose the defaults and copy the model into the integration."""
    args = parser().parse_args()
    args.run_dir = REPO_ROOT / "training" / "runs" / args.run
    started = time.perf_counter()
    info, summary = train_and_export(args)
    log(f"exported {info.path} after {(time.perf_counter() - started) / 60:.1f} min")
    if args.ship:
        ship(
            info,
            log=log,
            data=args.data,
            metrics={"val_balanced_accuracy_clips": summary["best_val_balanced_accuracy"]},
        )


if __name__ == "__main__":
    main()
