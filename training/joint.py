"""Fine-tune the accurate model's last blocks jointly with its temporal stage, on stream sequences.

    TRAIN_MODULE=training.joint scripts/train --fold A       # a fold's network and stage, scored on its sources
    TRAIN_MODULE=training.joint scripts/train [--ship]       # the shipped model's, defaults and card figures

`training.temporal` trains the stage on a frozen network. This recipe starts from a network and its
trained stage (a cross-source fold's: `training.crossval`'s network and `training.temporal --fold`'s
stage; or the shipped graphs, read back into torch) and trains mn04's layers 13-16, the 4-class head
and the GRU together, end to end on the same training streams (the `train` split, events inside background beds, three in four with no level
cue; the second round's streams drawn with the hard negatives the stage fires on):

1. Every stream goes through the engine's `Pipeline` (front end, a window every hop, the level floor);
   for each loud window the frozen layers 0-12 (`finetune.FROZEN`) run once in torch and their
   activations are kept (float16, 48 x 8 x 13 per window); a quiet window is the network's view of
   silence, as in the engine.
2. Per batch of sequences: the tail turns the activations into embeddings and log-probabilities
   (`temporal_inputs`' definition), the stage reads them in order; the loss is the stage's
   class-weighted cross-entropy per window (as `temporal.train_stage`) plus `--window-loss` times the
   head's own per-window cross-entropy on loud windows (the network's probabilities stay meaningful).
   BatchNorm keeps its statistics (the tail runs in eval mode; its affine weights train).
3. The result is exported as the engine runs it (the network's ONNX with its `embedding` output, the
   stage's graph) and judged exactly as `training.temporal` judges a stage: defaults chosen on val
   streams, then the fold's held-out streams scored at them (fold.json), or the test streams' figures
   measured into the sidecar (`training.temporal.measure_and_ship`).

Prints the training throughput (windows per second) and the windows seen; keeps each epoch's checkpoint.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
from pathlib import Path
import shutil
import tempfile
import time

import numpy as np
import numpy.typing as npt
import onnx
from onnx import numpy_helper
import torch

from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS
from custom_components.sound_sentry.engine.model import model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo, TemporalInfo, file_sha256
from custom_components.sound_sentry.engine.pipeline import Pipeline
from custom_components.sound_sentry.engine.temporal import LOG_FLOOR
from training import crossval, streams, temporal
from training.audio import LABELS
from training.audio_paths import REPO_ROOT, cache_dir
from training.finetune import FROZEN
from training.mobilenet import SoundNet, export_onnx

Array = npt.NDArray[np.float32]
FOLDS = REPO_ROOT / "training" / "runs" / "crossval" / "accurate-v5"
"""`training.crossval`'s accurate networks, one folder per fold (best.pt, the ONNX and its sidecar)."""


# --- the frozen layers' activations of every window ----------------------------------------------------


class _TrunkPipeline(Pipeline):
    """The engine's pipeline, keeping which windows were loud and their frozen-layer activations."""

    def __init__(self, trunk: torch.nn.Module, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.trunk = trunk
        self.loud: list[npt.NDArray[np.bool_]] = []
        self.activations: list[np.ndarray] = []

    def _decide(self, features: Array, loud: list[int], count: int) -> Array:
        mask = np.zeros(count, bool)
        mask[loud] = True
        self.loud.append(mask)
        if loud:
            self.activations.append(trunk_activations(self.trunk, features))
        return np.zeros((count, len(LABELS)), np.float32)


def trunk_activations(trunk: torch.nn.Module, features: Array) -> np.ndarray:
    """Layers 0-12's output [B, 48, 8, 13] (float16) of log mel windows [B, frames, bands]."""
    with torch.no_grad():
        return trunk(torch.from_numpy(np.asarray(features)).transpose(1, 2).unsqueeze(1)).half().numpy()


class TrunkSequence(streams.WindowSequence):
    """A training stream's windows as the joint model reads them: loud mask and activations."""

    loud: npt.NDArray[np.bool_]
    activations: np.ndarray


class TrunkExtractor(streams.InputExtractor):
    """`streams.InputExtractor`, keeping each loud window's frozen-layer activations instead of its inputs."""

    def __init__(self, info: ModelInfo, net: SoundNet) -> None:
        super().__init__(info)
        self.pipeline = _TrunkPipeline(
            net.features[:FROZEN],
            self.pipeline.backend,
            replace(info, temporal=None),
            min_level_dbfs=DEFAULT_MIN_LEVEL_DBFS,
        )
        self.silence = trunk_activations(
            net.features[:FROZEN],
            self.pipeline.front_end.features(np.zeros(info.window_samples, np.float32))[None],
        )

    def __call__(self, stream: streams.Stream) -> streams.WindowSequence:
        """The stream's windows: end times and labels, loud mask and activations (`TrunkSequence`)."""
        self.pipeline.loud, self.pipeline.activations = [], []
        sequence = super().__call__(stream)
        loud = np.concatenate(self.pipeline.loud) if self.pipeline.loud else np.zeros(0, bool)
        acts = (
            np.concatenate(self.pipeline.activations)
            if self.pipeline.activations
            else np.zeros((0, *self.silence.shape[1:]), np.float16)
        )
        joined = TrunkSequence(**vars(sequence))
        joined.loud, joined.activations = loud, acts
        return joined


# --- the joint model ---------------------------------------------------------------------------------


class Joint(torch.nn.Module):
    """mn04's layers 13-16, the head and the temporal stage: activation sequences -> per-window logits."""

    def __init__(self, net: SoundNet, stage: temporal.Stage, silence: np.ndarray) -> None:
        super().__init__()
        self.tail, self.head, self.stage = net.features[FROZEN:], net.head, stage
        self.register_buffer("silence", torch.from_numpy(silence.astype(np.float32)))

    def window_outputs(self, activations: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embeddings and head logits of windows' activations."""
        embedding = self.tail(activations).mean(dim=(2, 3))
        return embedding, self.head(embedding)

    def stage_inputs(self, embedding: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
        """`engine.temporal.temporal_inputs` in torch: [embedding, log(probabilities)]."""
        log_probs = torch.log(torch.clamp(torch.softmax(logits, dim=1), LOG_FLOOR, 1.0))
        return torch.cat([embedding, log_probs], dim=1)

    def forward(self, activations: torch.Tensor, loud: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Activations of the loud windows [L, ...] and the loud mask [T, B] -> stage logits [T, B, C], head logits [L, C]."""
        embedding, logits = self.window_outputs(activations)
        quiet = self.stage_inputs(*self.window_outputs(self.silence))
        x = quiet.expand(*loud.shape, quiet.shape[1]).clone()
        x[loud] = self.stage_inputs(embedding, logits)
        out, _ = self.stage(x)
        return out, logits


def batch_tensors(
    group: list[TrunkSequence], weights: list[Array], starts: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Loud activations in [T, B] order (time-major, like the mask), mask, labels and loss weights [T, B].

    `starts`: per sequence, the window it starts at (the stage sees it from there, from its zero state).
    """
    starts = starts or [0] * len(group)
    length = max(len(s.labels) - c for s, c in zip(group, starts, strict=True))
    loud = torch.zeros((length, len(group)), dtype=torch.bool)
    labels = torch.zeros((length, len(group)), dtype=torch.long)
    weight = torch.zeros((length, len(group)))
    where: list[tuple[int, int, int]] = []  # (time, sequence, row in its activations)
    for j, (s, c) in enumerate(zip(group, starts, strict=True)):
        n = len(s.labels) - c
        loud[:n, j] = torch.from_numpy(s.loud[c:])
        labels[:n, j] = torch.from_numpy(s.labels[c:])
        weight[:n, j] = torch.from_numpy(weights[j][c:])
        skipped = int(s.loud[:c].sum())
        where += [(int(t), j, skipped + r) for r, t in enumerate(np.flatnonzero(s.loud[c:]))]
    where.sort()
    acts = torch.from_numpy(np.stack([group[j].activations[r] for _t, j, r in where])).float()
    return acts, loud, labels, weight


CROP_WINDOWS = 12
"""A training sequence starts at a random window up to this one, each time it is drawn. The training
streams put their first event 2-8 s in: seen always from their start, a stage learns that events come
early in a stream, and fires on the first seconds after every (re)connect."""


def train_joint(
    model: Joint,
    train: list[TrunkSequence],
    *,
    epochs: int,
    batch: int,
    lr_tail: float,
    lr_stage: float,
    window_loss: float,
    seed: int,
    run_dir: Path,
) -> dict[str, object]:
    """Train tail, head and stage together; print throughput and windows seen; checkpoint each epoch."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    labels = np.concatenate([s.labels for s in train])
    class_weight = temporal.class_weights(labels)
    stage_ce = torch.nn.CrossEntropyLoss(weight=class_weight, reduction="none")
    window_ce = torch.nn.CrossEntropyLoss(weight=class_weight)
    emphasis = [temporal.window_emphasis(s, 1.0) for s in train]
    optimiser = torch.optim.AdamW(
        [
            {"params": [*model.tail.parameters(), *model.head.parameters()], "lr": lr_tail},
            {"params": [*model.stage.parameters()], "lr": lr_stage},
        ],
        weight_decay=1e-3,
    )
    steps = epochs * ((len(train) + batch - 1) // batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[lr_tail, lr_stage], total_steps=steps, pct_start=0.1
    )
    seen, started, history = 0, time.perf_counter(), []
    for epoch in range(epochs):
        model.train()
        model.tail.eval()  # BatchNorm keeps its statistics
        order = rng.permutation(len(train))
        total = 0.0
        for first in range(0, len(order), batch):
            picked = order[first : first + batch]
            starts = [
                int(rng.integers(0, max(1, min(CROP_WINDOWS, len(train[i].labels) - 8)) + 1)) for i in picked
            ]
            acts, loud, y, w = batch_tensors(
                [train[i] for i in picked], [emphasis[i] for i in picked], starts
            )
            logits, window_logits = model(acts, loud)
            per_window = stage_ce(logits.reshape(-1, len(LABELS)), y.reshape(-1)) * w.reshape(-1)
            loss = per_window.sum() / (stage_ce.weight[y.reshape(-1)] * w.reshape(-1)).sum()
            if window_loss > 0:
                loss = loss + window_loss * window_ce(window_logits, y[loud])
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(picked)
            seen += int((w > 0).sum())
            if (first // batch) % 20 == 0:
                elapsed = time.perf_counter() - started
                print(
                    f"  epoch {epoch + 1}, {first + len(picked)}/{len(order)} sequences: {seen:,} windows seen, "
                    f"{seen / elapsed:,.0f} windows/s",
                    flush=True,
                )
        elapsed = time.perf_counter() - started
        history.append({"epoch": epoch + 1, "loss": total / len(train), "windows_seen": seen})
        print(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(train):.4f}; {seen:,} windows seen, "
            f"{seen / elapsed:,.0f} windows/s",
            flush=True,
        )
        torch.save(model.state_dict(), run_dir / f"joint-epoch{epoch + 1}.pt")
    model.eval()
    return {"windows_seen": seen, "history": history, "seconds": time.perf_counter() - started}


def load_stage(path: Path) -> temporal.Stage:
    """A stage saved by `training.temporal` (stage.pt), its sizes read from the weights."""
    state = torch.load(path, map_location="cpu")
    hidden, inputs = state["gru.weight_ih_l0"].shape[0] // 3, state["gru.weight_ih_l0"].shape[1]
    stage = temporal.Stage(inputs, hidden, state["head.weight"].shape[0])
    stage.load_state_dict(state)
    return stage


# --- starting points: a checkpoint, or the shipped graphs read back into torch -------------------------


def soundnet_from_onnx(path: Path) -> SoundNet:
    """The accurate network of an exported graph, as a `SoundNet`: the inverse of `export_onnx`.

    The export folds each BatchNorm into its convolution, so each convolution takes the graph's weight
    and its BatchNorm becomes the identity plus the graph's bias (statistics 0 / 1, scale 1); the squeeze-
    excitation and head layers take the graph's Gemm weights. Nodes are matched by the names the export
    gives them (`/features/features.13/block/block.0/block.0.0/Conv` is `features.13.block.0.0`).
    """
    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    net = SoundNet().eval()
    with torch.no_grad():
        for node in model.graph.node:
            if node.op_type not in ("Conv", "Gemm"):
                continue
            name = _module_name(node.name)
            w, b = (torch.from_numpy(weights[x].copy()) for x in node.input[1:3])
            if node.op_type == "Gemm":
                linear = net.get_submodule(name)
                transposed = next((a.i for a in node.attribute if a.name == "transB"), 0) == 0
                linear.weight.copy_(w.T if transposed else w)
                linear.bias.copy_(b)
                continue
            conv = net.get_submodule(name)
            norm = net.get_submodule(name[: name.rindex(".")] + "." + str(int(name.rsplit(".", 1)[1]) + 1))
            conv.weight.copy_(w)
            norm.weight.fill_(1.0)
            norm.bias.copy_(b)
            norm.running_mean.zero_()
            norm.running_var.fill_(1.0 - norm.eps)
    return net


def _module_name(node_name: str) -> str:
    """`/features/features.13/block/block.2/fc1/Gemm` -> `features.13.block.2.se.fc1`; `/head/Gemm` -> `head`."""
    names, parent = [], ""
    for part in node_name.strip("/").split("/")[:-1]:  # each scope repeats its parent's name as a prefix
        names.append(part.removeprefix(parent + ".") if parent else part)
        parent = part
    return ".".join(names).replace(".fc", ".se.fc")


def stage_from_onnx(path: Path) -> temporal.Stage:
    """A temporal stage graph (`temporal.export_stage`) read back into a `Stage` (normalisation at identity)."""
    model = onnx.load(str(path))
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    w, r, b = weights["W"][0], weights["R"][0], weights["B"][0]
    hidden = r.shape[1]

    def torch_gates(t: np.ndarray) -> torch.Tensor:  # ONNX z, r, h -> torch r, z, n
        z, r_, n = np.split(t, 3)
        return torch.from_numpy(np.concatenate([r_, z, n]).astype(np.float32))

    stage = temporal.Stage(w.shape[1], hidden, weights["head_weight"].shape[0])
    with torch.no_grad():
        stage.gru.weight_ih_l0.copy_(torch_gates(w))
        stage.gru.weight_hh_l0.copy_(torch_gates(r))
        stage.gru.bias_ih_l0.copy_(torch_gates(b[: 3 * hidden]))
        stage.gru.bias_hh_l0.copy_(torch_gates(b[3 * hidden :]))
        stage.head.weight.copy_(torch.from_numpy(weights["head_weight"]))
        stage.head.bias.copy_(torch.from_numpy(weights["head_bias"]))
    return stage.eval()


def export(model: Joint, net: SoundNet, base: ModelInfo, run_dir: Path, version: str) -> ModelInfo:
    """The joint result as the engine runs it: network (with `embedding`) and stage graphs, sidecar."""
    network = run_dir / base.path.name
    export_onnx(net.eval(), network, bands=base.front_end.num_bands)  # type: ignore[union-attr]
    temporal.with_embedding_output(network, network)
    stage_path = network.with_name(network.stem + ".temporal.onnx")
    temporal.export_stage(model.stage.eval(), stage_path, f"Sound Sentry temporal stage, joint {version}")
    info = replace(
        base,
        path=network,
        version=version,
        sha256=file_sha256(network),
        temporal=TemporalInfo(
            path=stage_path, sha256=file_sha256(stage_path), hidden_size=model.stage.gru.hidden_size
        ),
    )
    info.save()
    return info


def main() -> None:
    """Extract the training streams' activations, train jointly, export, choose defaults, score the fold."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--fold",
        choices=sorted(crossval.folds()),
        help="start from this cross-source fold's network and stage and score on its sources; "
        "without it, start from the shipped accurate model",
    )
    parser.add_argument(
        "--stage-version",
        default="2.0.0",
        help="the fold stage's version (training.temporal --fold --version)",
    )
    parser.add_argument("--version", default="2.1.0", help="the result's model version")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="sequences per step")
    parser.add_argument("--lr-tail", type=float, default=1e-4, help="0: the stage alone trains (a control)")
    parser.add_argument("--lr-stage", type=float, default=3e-4)
    parser.add_argument("--window-loss", type=float, default=0.3)
    parser.add_argument("--copies", type=int, default=4, help="training streams each event clip is in")
    parser.add_argument("--seed", type=int, default=temporal.SEED)
    parser.add_argument(
        "--val-hours",
        type=float,
        help="background hours per val construction (default: 3 for a fold, else 10)",
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--network",
        type=Path,
        help="without --fold: start from this model file (with its sidecar and stage) instead of the shipped one",
    )
    parser.add_argument("--run", help="run folder name under <cache>/temporal")
    parser.add_argument("--ship", action="store_true", help="copy the result into the integration")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    hold_out = crossval.folds()[args.fold] if args.fold else ()
    run_dir = (
        cache_dir()
        / "temporal"
        / (args.run or f"joint-{args.version}" + (f"-fold-{args.fold}" if args.fold else ""))
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    if args.fold:
        fold_net = FOLDS / args.fold
        stage_dir = cache_dir() / "temporal" / f"accurate-{args.stage_version}-fold-{args.fold}"
        staged = ModelInfo.load(stage_dir / "sound_sentry_mobilenet.onnx")  # the fold network + its stage
        net = SoundNet()
        net.load_state_dict(torch.load(fold_net / "best.pt", map_location="cpu"))
        first_stage = load_stage(stage_dir / "stage.pt")
        # the fold stage's mining pass is cached with its network's streams
        mine_cache = (
            cache_dir() / "temporal" / f"streams-{ModelInfo.load(fold_net / staged.path.name).sha256[:12]}"
        )
    else:
        staged = ModelInfo.load(args.network or model_path("accurate"))
        if staged.temporal is None:
            raise SystemExit(f"{staged.path} has no temporal stage to start from")
        net = soundnet_from_onnx(staged.path)
        first_stage = stage_from_onnx(staged.temporal.path)
        mine_cache = cache_dir() / "temporal" / f"streams-{staged.sha256[:12]}"
    mine_cache.mkdir(parents=True, exist_ok=True)
    net.eval()
    print(f"joint fine-tuning from {staged.name} {staged.version} ({staged.path}) -> {run_dir}", flush=True)
    extractor = TrunkExtractor(staged, net)
    started = time.perf_counter()
    # The activations live in memory only (about 1 GB): a fresh folder keeps `training_sequences` from
    # reloading its own cache of a stream set, which holds the inputs and not the activations.
    trunk_cache = Path(tempfile.mkdtemp(prefix="joint-", dir=run_dir))
    train: list[streams.WindowSequence] = []
    train += streams.training_sequences(
        extractor, copies=args.copies, seed=args.seed, cache=trunk_cache, hold_out=hold_out
    )
    # The second round's streams, drawn as training.temporal drew them, weighted by what the fold's
    # stage fires on (its mining pass is cached with the fold network's streams).
    mined = streams.mine_hard_negatives(
        staged, streams.InputExtractor(staged), seed=args.seed + 10, cache=mine_cache, hold_out=hold_out
    )
    train += streams.training_sequences(
        extractor, copies=args.copies, seed=args.seed + 1, cache=trunk_cache, mined=mined, hold_out=hold_out
    )
    shutil.rmtree(trunk_cache)
    windows = sum(len(s.labels) for s in train)
    print(
        f"training streams: {len(train)} sequences, {windows:,} windows, activations of "
        f"{sum(int(s.loud.sum()) for s in train):,} loud ones "  # type: ignore[attr-defined, misc]
        f"in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    model = Joint(net, first_stage, extractor.silence)
    result = train_joint(
        model,
        train,  # type: ignore[arg-type]
        epochs=args.epochs,
        batch=args.batch,
        lr_tail=args.lr_tail,
        lr_stage=args.lr_stage,
        window_loss=args.window_loss,
        seed=args.seed,
        run_dir=run_dir,
    )
    info = export(model, net, staged, run_dir, args.version)
    info = replace(
        info,
        provenance={
            **dict(staged.provenance),
            "joint": {
                "recipe": "training.joint",
                "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                "training_windows": windows,
                **result,
            },
        },
    )
    info.save()
    scored = streams.InputExtractor(info)
    cache = cache_dir() / "temporal" / f"streams-{info.sha256[:12]}"
    cache.mkdir(exist_ok=True)
    hours = args.val_hours or (3.0 if args.fold else 10.0)
    detection, curve = temporal.choose_defaults(
        info, scored, seed=args.seed, hours=hours, cache=cache, hold_out=hold_out
    )
    if not args.fold:
        temporal.measure_and_ship(
            info, staged, detection, curve, cache=cache, run_dir=run_dir, ship=args.ship
        )
        return
    report = temporal.score_fold(
        info, scored, detection, fold=args.fold, seed=args.seed, cache=cache, run_dir=run_dir
    )
    baseline = json.loads((stage_dir / "fold.json").read_text())
    print(f"fold {args.fold}, the stage alone on the frozen network ({stage_dir.name}):")
    print(streams.fold_summary({args.fold: baseline}))
    print(f"fold {args.fold}, trained jointly ({run_dir.name}):")
    print(streams.fold_summary({args.fold: report}))


if __name__ == "__main__":
    main()
