"""Sounds a user teaches from a few examples: a small head on a general-purpose window embedding.

The accurate model ships a second network for this (`ModelInfo.taught`, `model.TaughtNetwork`): EfficientAT
mn04 with its AudioSet weights, not fine-tuned, on the model's front end and hop. Its 384-d embedding
tells apart far more sounds than the fine-tuned one, which was narrowed to the three sounds it alerts on
(docs/taught-sounds.md measures both). It is loaded only for a source with taught sounds and runs only on
the windows their heads score (the loud ones). A taught sound is a logistic-regression head on that
embedding, learnt in NumPy on the Home Assistant machine in a few seconds:

- positives: each example's loud windows (within `POSITIVE_SPAN_DB` of its loudest, above the level
  floor), L2-normalised;
- negatives: half of a `BackgroundBank`, the embeddings of ten thousand varied background windows that
  ship with the model (`training.bank` builds it); each side weighs half;
- an L2 penalty, solved by Newton's method (385 unknowns).

Its sensitivity is chosen like the built-in sounds', as expected false alarms per day
(`detection_settings.SENSITIVITY_LEVELS`), read off the bank's other half: a few thousand windows cannot show a rate
of one window a day directly, so the tail of the bank's scores is modelled (peaks over threshold: the
logits above the bank's top `TAIL_SHARE` fall off exponentially) and extrapolated. That extrapolation
is strict: most sounds' own examples, left out in turn, do not reach it. So the examples bound it: each
Balanced threshold lies between the bank's highest held-out score (the floor) and its tail, as far up
as the left-out examples' median allows with `LOO_MARGIN` to spare, and the other levels keep their
spacing from it. `benchmarks.few_shot`
measures how well that holds on background the bank does not contain.

Examples that cannot teach anything are refused with a `TeachError` whose `reason` is a translation key:
too few, silent, clipped, or explained by ordinary background (left out in turn, fewer than
`MIN_HEARD_SHARE` of the examples score above the floor of the others' head).

The bank ships beside its model as `<model stem>.bank.npz` (`bank_path`; only the accurate model has
one) and names the model release and the embedding network (its sha256) it was built with: `load_bank`
refuses a missing bank or another release's. A bank has an id of its own (`BackgroundBank.id`, a hash of
its content) that every sound learnt on it records (`TaughtSound.bank`), so that a sound is learnt again
when the bank or the embedding changes, as when the model does (`taught_store.py`). `taught_embeddings` is
the one place that says which network output a head reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
import hashlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .detection_settings import SENSITIVITY_LEVELS
from .frontend import FrontEnd
from .level import DEFAULT_MIN_LEVEL_DBFS, level_dbfs, level_floor
from .sources import FileSource

if TYPE_CHECKING:
    from .backends import ModelBackend
    from .model import LoadedModel
    from .model_info import ModelInfo

Array = npt.NDArray[np.float32]

MIN_EXAMPLES = 3
MAX_EXAMPLES = 10
POSITIVE_SPAN_DB = 6.0
"""An example's windows within this many dB of its loudest window teach the sound (the rest is room)."""
CLIPPED_SHARE = 0.001
"""An example with more than this share of its samples at full scale is clipped: its sound is distorted."""
FULL_SCALE = 0.999
L2 = 1e-4
"""The head's L2 penalty (on normalised embeddings, with each side's weights summing to one)."""
TAIL_SHARE = 0.02
"""The bank's top share of logits whose exponential fall-off is extrapolated to rare false alarms."""
DEFAULT_LEVEL = "balanced"
MIN_HEARD_SHARE = 0.4
"""Left out in turn, at least this share of the examples must score above all of the bank's held-out half
(2 of 5; 0.5, 3 of 5, refused most draws of dogs, sirens and car horns on the pretrained embedding, and
0.2 let water drops through at 2-6 false alarms an hour: docs/taught-sounds.md)."""
LOO_MARGIN = 0.5
"""The thresholds sit this far (in `_Head.place` units) below the left-out examples' median place."""
BANK_SUFFIX = ".bank.npz"
"""A model's bank is its file with this suffix instead of `.onnx`, beside it."""


class TeachError(ValueError):
    """Examples that cannot teach a sound; `reason` is the translation key, `placeholders` its values."""

    def __init__(self, reason: str, message: str, **placeholders: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.placeholders = placeholders


@dataclass(frozen=True)
class ExampleWindows:
    """One example as the pipeline saw it: each window's embedding and level."""

    embeddings: Array
    """(windows, embedding size), as the network gives them."""
    dbfs: npt.NDArray[np.float64]

    def positives(self, min_level_dbfs: float | None = DEFAULT_MIN_LEVEL_DBFS) -> Array:
        """The windows that carry the sound: loud ones, normalised; empty for a silent example."""
        floor = level_floor(min_level_dbfs)
        if not len(self.dbfs) or float(self.dbfs.max()) < floor:
            return np.zeros((0, self.embeddings.shape[1]), np.float32)
        keep = (self.dbfs >= self.dbfs.max() - POSITIVE_SPAN_DB) & (self.dbfs >= floor)
        return normalise(self.embeddings[keep])


def example_windows(model: LoadedModel, samples: npt.NDArray[np.float32]) -> ExampleWindows:
    """An example's windows as a live source would see them: one every hop, each window's embedding.

    A recording shorter than a window is centred in one, padded with silence.
    """
    info = model.info
    size = info.window_samples
    if samples.size < size:
        pad = size - samples.size
        samples = np.pad(samples, (pad // 2, pad - pad // 2))
    hop = max(1, round(info.hop_s * info.sample_rate_hz))
    starts = range(0, samples.size - size + 1, hop)
    front_end = FrontEnd(info.front_end)
    windows = [samples[start : start + size] for start in starts]
    network = model.taught_backend()
    embeddings = [
        taught_embeddings(network, np.stack([front_end.features(w) for w in windows[first : first + 64]]))
        for first in range(0, len(windows), 64)  # a long recording in batches: bounded memory
    ]
    return ExampleWindows(
        embeddings=np.concatenate(embeddings),
        dbfs=np.array([level_dbfs(w) for w in windows], np.float64),
    )


def taught_embeddings(network: ModelBackend, features: Array) -> Array:
    """What a taught head reads of a batch of windows' features [B, frames, bands]: [B, 384].

    `network` is the model's taught network (`LoadedModel.taught_backend`): the pretrained mn04's
    embedding, not the fine-tuned one the model's own sounds are classified from. The one place that
    chooses the embedding: examples, the bank and the live pipeline all go through it.
    """
    return network.embed(features)[1]


def check_samples(samples: npt.NDArray[np.float32], name: str) -> None:
    """Refuse an example whose audio is clipped (raises TeachError `clipped_example`)."""
    if samples.size and np.mean(np.abs(samples) >= FULL_SCALE) > CLIPPED_SHARE:
        raise TeachError(
            "clipped_example", f"example {name} is louder than full scale (clipped)", example=name
        )


def normalise(embeddings: Array) -> Array:
    """Each row at unit length (the head reads directions, not how loud the network's view is)."""
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    unit: Array = (embeddings / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


@dataclass(frozen=True)
class BackgroundBank:
    """Normalised embeddings of varied background windows, for one model release and embedding network."""

    embeddings: Array
    model: str
    version: str
    hop_s: float
    network: str = ""
    """The sha256 of the network whose embeddings these are (`ModelInfo.taught`)."""
    id: str = field(init=False)
    """A hash of the bank's content (its float16 embeddings, model, release, network): what a sound
    learnt on it records (`TaughtSound.bank`)."""

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.embeddings.astype(np.float16).tobytes())
        digest.update(f"{self.model}\n{self.version}\n{self.network}\n{self.hop_s!r}".encode())
        object.__setattr__(self, "id", digest.hexdigest()[:16])

    @classmethod
    def load(cls, path: Path) -> BackgroundBank:
        """Read a bank written by `save` (float16 on disk); ValueError where its content is not its id's."""
        with np.load(path) as data:
            bank = cls(
                embeddings=data["embeddings"].astype(np.float32),
                model=str(data["model"]),
                version=str(data["version"]),
                hop_s=float(data["hop_s"]),
                network=str(data["network"]) if "network" in data else "",
            )
            stored = str(data["id"]) if "id" in data else bank.id
        if stored != bank.id:
            raise ValueError(f"its content is not that of bank {stored} (corrupt)")
        return bank

    def save(self, path: Path) -> None:
        """Write the bank, float16 (a few MB for a few thousand windows), with its id."""
        np.savez_compressed(
            path,
            embeddings=self.embeddings.astype(np.float16),
            model=self.model,
            version=self.version,
            hop_s=self.hop_s,
            network=self.network,
            id=self.id,
        )


def bank_id(info: ModelInfo) -> str | None:
    """The id of the bank the model ships (blocking; reads only the id), None where there is none.

    None also where it cannot be read: `load_bank` then says why.
    """
    try:
        with np.load(bank_path(info.path)) as data:
            return str(data["id"])
    except (OSError, ValueError, KeyError):
        return None


def bank_path(model_file: Path) -> Path:
    """Where a model's bank ships: beside its .onnx file, `<stem>.bank.npz`."""
    return model_file.with_name(model_file.stem + BANK_SUFFIX)


def teachable(info: ModelInfo) -> bool:
    """Whether sounds can be taught on this model: it ships a taught network and a bank (the accurate one)."""
    return info.taught is not None and bank_path(info.path).is_file()


def load_bank(info: ModelInfo) -> BackgroundBank:
    """The bank of the model `info` describes (blocking; a few ms).

    Raises TeachError `no_bank` where the model has none (the compact model: sounds are taught on the
    accurate one), `bank_mismatch` where the bank was built with another release of the model.
    """
    path = bank_path(info.path)
    if info.taught is None or not path.is_file():
        raise TeachError(
            "no_bank", f"{info.name} {info.version} has no background bank ({path.name})", model=info.name
        )
    try:
        bank = BackgroundBank.load(path)
    except (OSError, ValueError, KeyError) as err:
        raise TeachError(
            "no_bank", f"the background bank {path.name} cannot be read ({err})", model=info.name
        ) from err
    if (bank.model, bank.version, bank.network) != (info.name, info.version, info.taught.sha256):
        raise TeachError(
            "bank_mismatch",
            f"the background bank {path.name} is for {bank.model} {bank.version} (embedding network "
            f"{bank.network[:12] or 'unnamed'}), not {info.name} {info.version} (network "
            f"{info.taught.sha256[:12]}): rebuild it (python -m training.bank)",
            model=info.name,
            version=info.version,
        )
    return bank


def read_example(path: Path | str) -> Array:
    """An example's audio from any file PyAV opens (WAV, MP3, FLAC...): 8 kHz mono float32 in [-1, 1].

    Decoded like a file source (`FileSource`); raises SourceError for a file that cannot be decoded.
    """
    with FileSource(path) as source:
        chunks = [chunk.astype(np.float32) / 32768.0 for chunk in source]  # int16 PCM
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


@dataclass(frozen=True)
class TaughtSound:
    """A learnt sound: its head, the model release and bank it was learnt on, its thresholds by level."""

    name: str
    model: str
    version: str
    weights: Array
    bias: float
    thresholds: dict[str, float]
    """Probability threshold per sensitivity level key (from the bank's extrapolated tail)."""
    bank: str = ""
    """The id of the bank it was learnt against (`BackgroundBank.id`; empty: before banks had ids)."""

    def probabilities(self, embeddings: Array) -> npt.NDArray[np.float64]:
        """The sound's probability in each window (rows: the network's embeddings, not normalised)."""
        return _sigmoid(normalise(embeddings).astype(np.float64) @ self.weights + self.bias)

    def to_json(self) -> dict[str, Any]:
        """What a config entry stores (with the examples it can be learnt again from)."""
        return {
            "name": self.name,
            "model": self.model,
            "version": self.version,
            "weights": [round(float(w), 6) for w in self.weights],
            "bias": self.bias,
            "thresholds": self.thresholds,
            "bank": self.bank,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TaughtSound:
        """The inverse of `to_json`."""
        return cls(
            name=str(data["name"]),
            model=str(data["model"]),
            version=str(data["version"]),
            weights=np.asarray(data["weights"], np.float32),
            bias=float(data["bias"]),
            thresholds={str(k): float(v) for k, v in data["thresholds"].items()},
            bank=str(data.get("bank", "")),
        )


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def fit_head(positives: Array, negatives: Array, l2: float = L2) -> tuple[Array, float]:
    """Weighted, L2-penalised logistic regression by Newton's method -> (weights, bias).

    Each side's weights sum to one, so a handful of positives counts as much as the whole bank.
    """
    x = np.concatenate([positives, negatives]).astype(np.float64)
    x = np.hstack([x, np.ones((len(x), 1))])
    y = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    sample = np.concatenate(
        [np.full(len(positives), 0.5 / len(positives)), np.full(len(negatives), 0.5 / len(negatives))]
    )
    penalty = np.full(x.shape[1], l2)
    penalty[-1] = 0.0  # the bias is free
    theta = np.zeros(x.shape[1])
    for _ in range(50):
        p = _sigmoid(x @ theta)
        gradient = x.T @ (sample * (p - y)) + penalty * theta
        hessian = (x * (sample * p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, gradient)
        theta -= step
        if float(np.abs(step).max()) < 1e-6:
            break
    return theta[:-1].astype(np.float32), float(theta[-1])


def tail_thresholds(logits: npt.NDArray[np.float64], hop_s: float) -> dict[str, float]:
    """Per sensitivity level, the probability that background windows exceed about that many times a day."""
    return {key: float(_sigmoid(np.array(z))) for key, z in tail_logits(logits, hop_s).items()}


def tail_logits(logits: npt.NDArray[np.float64], hop_s: float) -> dict[str, float]:
    """Per sensitivity level, the logit that background windows exceed about that many times a day.

    The logits above the bank's (1 - TAIL_SHARE) quantile `u` are taken to fall off exponentially
    (their mean excess `beta`), so P(logit > z) = TAIL_SHARE * exp(-(z - u) / beta) for z >= u.
    Counting every window over the threshold as a false alarm overstates them (a hold merges neighbours).
    """
    u = float(np.quantile(logits, 1.0 - TAIL_SHARE))
    excess = logits[logits > u] - u
    beta = float(excess.mean()) if excess.size else 1.0
    windows_per_day = 86400.0 / hop_s
    thresholds = {}
    for level in SENSITIVITY_LEVELS:
        rate = level.false_alarms_per_day / windows_per_day
        thresholds[level.key] = u + beta * math.log(TAIL_SHARE / rate)
    return thresholds


def learn(
    name: str,
    examples: Sequence[ExampleWindows],
    bank: BackgroundBank,
    *,
    min_level_dbfs: float | None = DEFAULT_MIN_LEVEL_DBFS,
) -> TaughtSound:
    """Learn `name` from its examples' windows against the bank (raises TeachError, see the module)."""
    if len(examples) < MIN_EXAMPLES:
        raise TeachError(
            "too_few_examples",
            f"{name}: {len(examples)} examples; at least {MIN_EXAMPLES} are needed",
            count=str(len(examples)),
            minimum=str(MIN_EXAMPLES),
        )
    positives = [e.positives(min_level_dbfs) for e in examples[:MAX_EXAMPLES]]
    for index, windows in enumerate(positives, start=1):
        if not len(windows):
            raise TeachError("silent_example", f"{name}: example {index} is silent", example=str(index))
    # Each example left out in turn: where its best window lands between the others' head's floor (0)
    # and their extrapolated Balanced threshold (1).
    places = []
    for left_out in range(len(positives)):
        others = _fit(np.concatenate([p for i, p in enumerate(positives) if i != left_out]), bank)
        places.append(others.place(float(others.logits(positives[left_out]).max())))
    heard = sum(place >= 0.0 for place in places)
    if heard < MIN_HEARD_SHARE * len(positives):
        raise TeachError(
            "like_background",
            f"{name}: only {heard} of {len(positives)} examples stand out from ordinary background",
            heard=str(heard),
            count=str(len(positives)),
        )
    between = float(np.clip(np.median(places) - LOO_MARGIN, 0.0, 1.0))
    return fit_sound(name, positives, bank, between=between)


@dataclass(frozen=True)
class _Head:
    """A fitted head and, in logits, its floor and extrapolated thresholds on the bank's other half."""

    weights: Array
    bias: float
    floor: float
    """The highest logit of the bank's held-out half (about one window in that many)."""
    tails: dict[str, float]
    """Per sensitivity level, the tail's extrapolated logit (`tail_logits`)."""

    def logits(self, unit: Array) -> npt.NDArray[np.float64]:
        """The head's logits of normalised windows."""
        return unit.astype(np.float64) @ self.weights + self.bias

    def place(self, logit: float) -> float:
        """Where a logit lies from the floor (0) to the Balanced threshold (1)."""
        return (logit - self.floor) / max(self.tails[DEFAULT_LEVEL] - self.floor, 1e-6)

    def threshold(self, level: str, between: float) -> float:
        """A level's logit threshold: its tail, lowered by as much as Balanced's (the levels keep their spacing).

        Balanced's lies `between` (0..1) of the way from the floor up to its tail.
        """
        balanced = self.tails[DEFAULT_LEVEL]
        return self.tails[level] - (1.0 - between) * max(0.0, balanced - self.floor)


def _fit(positives: Array, bank: BackgroundBank) -> _Head:
    # Half the bank teaches, the other half sets the thresholds: windows the head was fit against would
    # score lower than unseen background does, and promise too few false alarms.
    weights, bias = fit_head(positives, bank.embeddings[0::2])
    held_out = bank.embeddings[1::2].astype(np.float64) @ weights + bias
    return _Head(weights, bias, float(held_out.max()), tail_logits(held_out, bank.hop_s))


def fit_sound(
    name: str, positives: Sequence[Array], bank: BackgroundBank, *, between: float = 1.0
) -> TaughtSound:
    """The head and thresholds of examples' positive windows (`ExampleWindows.positives`), unchecked.

    Balanced's threshold lies `between` (0..1) of the way from the bank's highest held-out score up to
    its extrapolated tail (1: the tails alone), the other levels as far below their tails (`_Head`);
    `learn` sets `between` from the examples.
    """
    head = _fit(np.concatenate(positives), bank)
    return TaughtSound(
        name=name,
        model=bank.model,
        version=bank.version,
        weights=head.weights,
        bias=head.bias,
        thresholds={
            level.key: float(_sigmoid(np.array(head.threshold(level.key, between))))
            for level in SENSITIVITY_LEVELS
        },
        bank=bank.id,
    )


def learn_from_samples(
    model: LoadedModel, bank: BackgroundBank, name: str, examples: Sequence[Array]
) -> TaughtSound:
    """Learn `name` from its examples' audio (8 kHz mono float32), as a live source would hear them.

    Blocking (the network runs on every example's windows). Raises TeachError (see the module).
    """
    for index, samples in enumerate(examples, start=1):
        check_samples(samples, str(index))
    windows = [example_windows(model, samples) for samples in examples]
    return learn(name, windows, bank)
