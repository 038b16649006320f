"""Train a model's temporal stage on streams: `TRAIN_MODULE=training.temporal scripts/train --model accurate`.

The network stays frozen. Streams with strong labels are built from the `train` split: event clips (and
two events close together) inside continuous background beds made of every background source (the
Debian-built set, infant laughter and babble, knocks, hammering, jackhammers, thunder weighted up as
hard negatives), in two constructions:

- `level`: each background clip at -40 dBFS RMS, each event at its recorded level;
- `no_level_cue`: each background clip at -45..-25 dBFS RMS, each event scaled to -5..+15 dB over the
  background it lands on (the RMS of its active part against the background's over the same span), so
  that loudness gives nothing away.

Every stream goes through the engine's own `Pipeline` (front end, a window every `--hop` s, the level
floor), which hands the temporal stage its per-window inputs; those inputs are cached, a causal GRU is
trained on them (class-weighted cross-entropy per window; a window is an event's when it holds at least
0.15 s of the event's active part), exported as the stage's ONNX graph, and scored through the engine's
temporal runtime and `EventDetector` on validation and test streams (`training.streams`).
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import json
from pathlib import Path
import shutil
import time
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
import torch

from custom_components.sound_sentry.engine import temporal as stage
from custom_components.sound_sentry.engine.backends import EMBEDDING_OUTPUT
from custom_components.sound_sentry.engine.model import MODELS_DIR, model_path
from custom_components.sound_sentry.engine.model_info import (
    ModelInfo,
    OperatingCurve,
    TemporalInfo,
    file_sha256,
)
from training import crossval, streams
from training.audio import LABELS
from training.audio_paths import cache_dir

HIDDEN = 96
SEED = 20261207


# --- the network's embedding output ------------------------------------------------------------------


def with_embedding_output(source: Path, target: Path) -> None:
    """Copy a model file, adding its softmax head's input as a second output named `embedding`."""
    model = onnx.load(str(source))
    graph = model.graph
    softmax = next(n for n in graph.node if n.output[0] == graph.output[0].name)
    gemm = next(n for n in graph.node if n.output[0] == softmax.input[0])
    if gemm.op_type != "Gemm" or softmax.op_type != "Softmax":
        raise ValueError(f"{source}: the output is not Softmax(Gemm(...))")
    old = gemm.input[0]
    if len(graph.output) == 1:
        for node in graph.node:
            for i, name in enumerate(node.input):
                if name == old:
                    node.input[i] = EMBEDDING_OUTPUT
            for i, name in enumerate(node.output):
                if name == old:
                    node.output[i] = EMBEDDING_OUTPUT
        width = next((i.dims[1] for i in graph.initializer if i.name == gemm.input[1]), None)
        graph.output.append(
            helper.make_tensor_value_info(EMBEDDING_OUTPUT, TensorProto.FLOAT, ["batch", width])
        )
    onnx.checker.check_model(model)
    onnx.save(model, str(target))


# --- the stage in torch, and its export --------------------------------------------------------------


class Stage(torch.nn.Module):
    """GRU over normalised per-window inputs, a linear layer to the classes (logits)."""

    def __init__(
        self, inputs: int, hidden: int, classes: int, dropout: float = 0.0, input_noise: float = 0.0
    ) -> None:
        super().__init__()
        self.dropout = torch.nn.Dropout(dropout)
        self.input_noise = input_noise
        self.gru = torch.nn.GRU(inputs, hidden)
        self.head = torch.nn.Linear(hidden, classes)
        self.register_buffer("mean", torch.zeros(inputs))
        self.register_buffer("scale", torch.ones(inputs))

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """X [T, B, D] -> logits [T, B, C], h [1, B, H]."""
        x = (x - self.mean) * self.scale
        if self.training and self.input_noise:  # the network is surer of its training clips than of new ones
            x = x + self.input_noise * torch.randn_like(x)
        y, h = self.gru(self.dropout(x), h)
        return self.head(self.dropout(y)), h


def merge_stages(models: list[Stage]) -> Stage:
    """One stage equal to the ensemble of `models` (same inputs): their logits averaged.

    A GRU's gates act element-wise, so K GRUs side by side are one GRU of K x H units whose recurrent
    weights are block-diagonal; the averaged heads are one linear layer over the joined states. The
    engine runs it as any stage (its graph does not change), at K times the GRU's small cost.
    """
    first = models[0]
    hidden, k = first.gru.hidden_size, len(models)
    merged = Stage(first.gru.input_size, k * hidden, first.head.out_features)
    merged.mean.copy_(first.mean)
    merged.scale.copy_(first.scale)
    with torch.no_grad():
        for name in ("weight_ih_l0", "bias_ih_l0", "weight_hh_l0", "bias_hh_l0"):
            target = getattr(merged.gru, name)
            target.zero_()
            for i, model in enumerate(models):
                source = getattr(model.gru, name)
                for gate in range(3):
                    rows = slice(gate * k * hidden + i * hidden, gate * k * hidden + (i + 1) * hidden)
                    part = source[gate * hidden : (gate + 1) * hidden]
                    if name == "weight_hh_l0":
                        target[rows, i * hidden : (i + 1) * hidden] = part
                    else:
                        target[rows] = part
        merged.head.weight.copy_(torch.cat([m.head.weight for m in models], dim=1) / k)
        merged.head.bias.copy_(torch.stack([m.head.bias for m in models]).mean(0))
    return merged.eval()


def export_stage(model: Stage, path: Path, doc: str) -> None:
    """Write the stage as the engine's temporal graph (temporal.py's docstring), normalisation folded in."""
    gru, head = model.gru, model.head
    hidden = gru.hidden_size
    mean, scale = model.mean.detach().double(), model.scale.detach().double()

    def gates(t: torch.Tensor) -> np.ndarray:  # torch r, z, n -> ONNX z, r, h
        r, z, n = t.detach().double().chunk(3, 0)
        return torch.cat([z, r, n]).numpy()

    w = gates(gru.weight_ih_l0) * scale.numpy()[None, :]
    wb = gates(gru.bias_ih_l0) - w @ mean.numpy()
    rec, rb = gates(gru.weight_hh_l0), gates(gru.bias_hh_l0)
    f32 = np.float32
    inits = [
        numpy_helper.from_array(w[None].astype(f32), "W"),
        numpy_helper.from_array(rec[None].astype(f32), "R"),
        numpy_helper.from_array(np.concatenate([wb, rb])[None].astype(f32), "B"),
        numpy_helper.from_array(head.weight.detach().numpy().astype(f32), "head_weight"),
        numpy_helper.from_array(head.bias.detach().numpy().astype(f32), "head_bias"),
        numpy_helper.from_array(np.array([1], np.int64), "axis1"),
        numpy_helper.from_array(np.array([0], np.int64), "axis0"),
        numpy_helper.from_array(np.array([1, 2], np.int64), "axes12"),
    ]
    nodes = [
        helper.make_node("Unsqueeze", [stage.INPUTS, "axis1"], ["x"]),
        helper.make_node("Unsqueeze", [stage.STATE, "axis0"], ["h0"]),
        helper.make_node(
            "GRU", ["x", "W", "R", "B", "", "h0"], ["y", "y_h"], hidden_size=hidden, linear_before_reset=1
        ),
        helper.make_node("Squeeze", ["y", "axes12"], ["y_flat"]),
        helper.make_node("Gemm", ["y_flat", "head_weight", "head_bias"], ["logits"], transB=1),
        helper.make_node("Softmax", ["logits"], [stage.PROBABILITIES], axis=1),
        helper.make_node("Squeeze", ["y_h", "axis0"], [stage.NEXT_STATE]),
    ]
    graph = helper.make_graph(
        nodes,
        "temporal_stage",
        [
            helper.make_tensor_value_info(stage.INPUTS, TensorProto.FLOAT, ["windows", w.shape[1]]),
            helper.make_tensor_value_info(stage.STATE, TensorProto.FLOAT, [1, hidden]),
        ],
        [
            helper.make_tensor_value_info(
                stage.PROBABILITIES, TensorProto.FLOAT, ["windows", head.out_features]
            ),
            helper.make_tensor_value_info(stage.NEXT_STATE, TensorProto.FLOAT, [1, hidden]),
        ],
        inits,
    )
    onnx_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx_model.ir_version = 8
    onnx_model.producer_name = "sound-sentry-training"
    onnx_model.doc_string = doc
    onnx.checker.check_model(onnx_model)
    onnx.save(onnx_model, str(path))


# --- training ----------------------------------------------------------------------------------------


def class_weights(labels: np.ndarray) -> torch.Tensor:
    """Inverse-frequency class weights, square-root damped, mean 1."""
    counts = np.bincount(labels, minlength=len(LABELS)).astype(np.float64) + 1.0
    weights = (counts.sum() / counts) ** 0.5
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


ONSET_S = 2.5
"""Seconds after an event's onset whose windows `--onset-weight` weighs up."""


def window_emphasis(sequence: streams.WindowSequence, onset_weight: float) -> np.ndarray:
    """Per-window loss weight: `onset_weight` for an event's first windows (ending within ONSET_S of its onset)."""
    weights = np.ones(len(sequence.labels), np.float32)
    for label, onset, _end in sequence.events:
        early = (sequence.labels == label) & (sequence.ends >= onset) & (sequence.ends <= onset + ONSET_S)
        weights[early] = onset_weight
    return weights


def train_stage(
    train: list[streams.WindowSequence],
    *,
    hidden: int,
    epochs: int,
    batch: int,
    lr: float,
    seed: int,
    dropout: float = 0.0,
    weight_decay: float = 1e-4,
    onset_weight: float = 1.0,
    input_noise: float = 0.0,
    log: Any = print,
) -> Stage:
    """Fit the GRU on the training sequences; print throughput and windows seen.

    With `onset_weight`, an event's windows that end within ONSET_S of its onset weigh that much more:
    the stage learns to decide early (the latency target), not only somewhere in the event.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    inputs = np.concatenate([s.inputs for s in train]).astype(np.float32)
    labels = np.concatenate([s.labels for s in train])
    model = Stage(inputs.shape[1], hidden, len(LABELS), dropout, input_noise)
    model.mean.copy_(torch.from_numpy(inputs.mean(0)))
    model.scale.copy_(torch.from_numpy(1.0 / (inputs.std(0) + 1e-3)))
    loss_fn = torch.nn.CrossEntropyLoss(weight=class_weights(labels), reduction="none")
    emphasis = [window_emphasis(s, onset_weight) for s in train]
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=lr, total_steps=epochs * ((len(train) + batch - 1) // batch)
    )
    seen, started = 0, time.perf_counter()
    for epoch in range(epochs):
        order = rng.permutation(len(train))
        total = 0.0
        for first in range(0, len(order), batch):
            group = [train[i] for i in order[first : first + batch]]
            length = max(len(s.labels) for s in group)
            x = torch.zeros(length, len(group), inputs.shape[1])
            y = torch.zeros((length, len(group)), dtype=torch.long)
            w = torch.zeros((length, len(group)))
            for j, index in enumerate(order[first : first + batch]):
                s = train[index]
                x[: len(s.labels), j] = torch.from_numpy(s.inputs.astype(np.float32))
                y[: len(s.labels), j] = torch.from_numpy(s.labels)
                w[: len(s.labels), j] = torch.from_numpy(emphasis[index])
            logits, _ = model(x)
            per_window = loss_fn(logits.reshape(-1, len(LABELS)), y.reshape(-1)) * w.reshape(-1)
            loss = per_window.sum() / (loss_fn.weight[y.reshape(-1)] * w.reshape(-1)).sum()
            optimiser.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            schedule.step()
            total += float(loss.detach()) * len(group)
            seen += int((w > 0).sum())
        elapsed = time.perf_counter() - started
        log(
            f"epoch {epoch + 1}/{epochs}: loss {total / len(train):.4f}; {seen:,} windows seen, "
            f"{seen / elapsed:,.0f} windows/s"
        )
    return model.eval()


# --- defaults and folds ------------------------------------------------------------------------------


def choose_defaults(
    info: ModelInfo,
    extractor: streams.InputExtractor,
    *,
    seed: int,
    hours: float,
    cache: Path,
    hold_out: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The defaults (and operating curve) chosen on `hours` of val streams per construction; prints them."""
    val = streams.evaluation_sets(
        extractor,
        "val",
        hours=hours,
        seed=seed + 1,
        cache=cache,
        clips=streams.clip_sets("val", hold_out) if hold_out else None,
    )
    val_tracks = {c: streams.class_tracks(info, val[c]) for c in val}
    detection, curve = streams.choose_detection(val, val_tracks)
    print(f"defaults chosen on val streams: {json.dumps(detection)}")
    for construction, evaluation in val.items():
        metrics = streams.stream_metrics(info, evaluation, detection, val_tracks[construction])
        print(streams.format_metrics(f"val streams, {construction}", metrics))
    return detection, curve


def score_fold(
    info: ModelInfo,
    extractor: streams.InputExtractor,
    detection: dict[str, Any],
    *,
    fold: str,
    seed: int,
    cache: Path,
    run_dir: Path,
) -> dict[str, Any]:
    """The fold's held-out streams scored at `detection`, printed and written to `run_dir`/fold.json."""
    hold_out = crossval.folds()[fold]
    held = streams.evaluation_sets(
        extractor,
        f"fold-{fold}",
        hours=3.0,
        seed=seed + 3,
        cache=cache,
        clips=streams.held_out_sets(hold_out),
    )
    report: dict[str, Any] = {"units": list(hold_out), "detection": detection}
    for construction, evaluation in held.items():
        report[construction] = streams.stream_metrics(info, evaluation, detection)
        print(streams.format_metrics(f"fold {fold} (held out), {construction}", report[construction]))
    (run_dir / "fold.json").write_text(json.dumps(report, indent=2))
    return report


def measure_and_ship(
    info: ModelInfo,
    base: ModelInfo,
    detection: dict[str, Any],
    curve: dict[str, Any],
    *,
    cache: Path,
    run_dir: Path,
    ship: bool,
) -> ModelInfo:
    """Measure the card's figures on the test streams at `detection`, record them, and optionally ship.

    The sidecar gets the defaults, the operating curve, the figures (and `base`'s CPU measurements); with
    `ship`, the network and its stage are copied into the integration with that sidecar.
    """
    metrics = streams.measure(info, detection, cache=cache)
    print(streams.format_report(metrics))
    info = replace(
        info,
        thresholds=dict(detection["thresholds"]),
        k=int(detection["k"]),
        n=int(detection["n"]),
        hold_s=float(detection["hold_s"]),
        operating_curve=OperatingCurve.from_json(curve),
        metrics={k: v for k, v in base.metrics.items() if k.startswith("cpu")} | metrics,
    )
    info.save()
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return ship_model(info) if ship else info


def ship_model(info: ModelInfo) -> ModelInfo:
    """Copy a trained network and its stage into the integration, with their sidecar."""
    assert info.temporal is not None
    for path in (info.path, info.temporal.path):
        shutil.copyfile(path, MODELS_DIR / path.name)
    shipped = replace(
        info,
        path=MODELS_DIR / info.path.name,
        temporal=replace(info.temporal, path=MODELS_DIR / info.temporal.path.name),
    )
    shipped.save()
    print(f"shipped {shipped.path} and {info.temporal.path.name}")
    return shipped


def main() -> None:
    """Build the streams, train the stage, choose the defaults on val, measure on test; optionally ship."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="accurate", help="a shipped model (accurate, compact)")
    parser.add_argument(
        "--network",
        type=Path,
        help="another network of that model (its .onnx with sidecar), e.g. a fold's from training.crossval",
    )
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--version", required=True, help="the new model version, e.g. 2.0.0")
    parser.add_argument("--hop", type=float, default=1.0, help="seconds between windows")
    parser.add_argument("--hidden", type=int, default=HIDDEN)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--copies", type=int, default=4, help="training streams each event clip is in")
    parser.add_argument(
        "--dropout", type=float, default=0.3, help="dropout on the stage's inputs and GRU outputs"
    )
    parser.add_argument("--weight-decay", type=float, default=1e-3)
    parser.add_argument(
        "--ensemble", type=int, default=3, help="GRUs trained with successive seeds, merged into one stage"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="training rounds; each after the first mines hard negatives"
    )
    parser.add_argument(
        "--onset-weight", type=float, default=1.0, help="loss weight of an event's first windows"
    )
    parser.add_argument(
        "--input-noise", type=float, default=0.0, help="Gaussian noise on the normalised inputs in training"
    )
    parser.add_argument("--sweep", action="store_true", help="val only: no test figures, nothing shipped")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--val-hours", type=float, default=10.0, help="background hours per val construction")
    parser.add_argument("--run", default=None, help="run folder name under <cache>/temporal")
    parser.add_argument("--ship", action="store_true", help="copy the result into the integration")
    parser.add_argument(
        "--fold",
        choices=sorted(crossval.folds()),
        help="a cross-source fold (training.crossval): train without its sources, score on them",
    )
    parser.add_argument(
        "--fold-summary", action="store_true", help="only print the table of this version's stored folds"
    )
    args = parser.parse_args()
    if args.fold_summary:
        found = sorted((cache_dir() / "temporal").glob(f"{args.model}-{args.version}-fold-*/fold.json"))
        print(
            streams.fold_summary({p.parent.name.rsplit("-", 1)[1]: json.loads(p.read_text()) for p in found})
        )
        return
    hold_out = crossval.folds()[args.fold] if args.fold else ()
    torch.set_num_threads(args.threads)
    source = args.network or model_path(args.model)
    base = ModelInfo.load(source)
    run_dir = (
        cache_dir()
        / "temporal"
        / (args.run or f"{args.model}-{args.version}" + (f"-fold-{args.fold}" if args.fold else ""))
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    stream_cache = cache_dir() / "temporal" / f"streams-{base.sha256[:12]}"
    """The streams' inputs, shared by the runs of one network (keyed by what makes them)."""
    stream_cache.mkdir(parents=True, exist_ok=True)
    network = run_dir / source.name
    with_embedding_output(source, network)
    stage_path = network.with_name(network.stem + ".temporal.onnx")
    info = replace(base, path=network, version=args.version, sha256=file_sha256(network), hop_s=args.hop)
    print(f"{args.model}: {base.name} {base.version} -> {args.version}, hop {args.hop} s; run in {run_dir}")

    extractor = streams.InputExtractor(info)
    started = time.perf_counter()
    train = streams.training_sequences(
        extractor, copies=args.copies, seed=args.seed, cache=stream_cache, hold_out=hold_out
    )
    windows = sum(len(s.labels) for s in train)
    print(
        f"training streams: {len(train)} sequences, {windows:,} windows "
        f"({np.bincount(np.concatenate([s.labels for s in train]), minlength=4).tolist()} by class) "
        f"in {time.perf_counter() - started:.0f} s"
    )
    recipe: dict[str, Any] = {
        "hidden": args.hidden,
        "epochs": args.epochs,
        "batch": args.batch,
        "lr": args.lr,
        "dropout": args.dropout,
        "weight_decay": args.weight_decay,
        "onset_weight": args.onset_weight,
        "input_noise": args.input_noise,
    }
    for round_ in range(1, args.rounds):
        model = train_stage(train, seed=args.seed, **recipe)
        export_stage(model, stage_path, "mining round")
        probe = replace(info, temporal=TemporalInfo(path=stage_path, sha256="", hidden_size=args.hidden))
        mined = streams.mine_hard_negatives(
            probe, extractor, seed=args.seed + 10 * round_, cache=stream_cache, hold_out=hold_out
        )
        train += streams.training_sequences(
            extractor,
            copies=args.copies,
            seed=args.seed + round_,
            cache=stream_cache,
            mined=mined,
            hold_out=hold_out,
        )
        windows = sum(len(s.labels) for s in train)
        print(f"round {round_ + 1}: {len(train)} sequences, {windows:,} windows with mined hard negatives")
    members = [train_stage(train, seed=args.seed + member, **recipe) for member in range(args.ensemble)]
    model = merge_stages(members) if len(members) > 1 else members[0]
    torch.save(model.state_dict(), run_dir / "stage.pt")
    export_stage(model, stage_path, f"Sound Sentry temporal stage for {base.name} {args.version}")
    info = replace(
        info,
        temporal=TemporalInfo(
            path=stage_path, sha256=file_sha256(stage_path), hidden_size=model.gru.hidden_size
        ),
        provenance={
            **dict(base.provenance),
            "temporal": {
                "recipe": "training.temporal",
                "arguments": {
                    k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "ship"
                },
                "training_windows": windows,
                "training_sequences": len(train),
            },
        },
    )
    info.save()
    detection, curve = choose_defaults(
        info, extractor, seed=args.seed, hours=args.val_hours, cache=stream_cache, hold_out=hold_out
    )
    if args.fold:
        score_fold(
            info, extractor, detection, fold=args.fold, seed=args.seed, cache=stream_cache, run_dir=run_dir
        )
        return
    if args.sweep:
        return
    measure_and_ship(info, base, detection, curve, cache=stream_cache, run_dir=run_dir, ship=args.ship)


if __name__ == "__main__":
    main()
