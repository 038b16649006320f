"""Streams as users meet sounds: events inside continuous background, with strong labels, in two constructions.

- `level`: each background clip at -40 dBFS RMS, each event at its recorded level (most events are far
  louder than the room, so a level jump alone gives much away);
- `no_level_cue`: each background clip at -45..-25 dBFS RMS (loud confusers exist), each event scaled to
  a random event-over-background ratio (training -5..+15 dB, evaluation 0..+15 dB): the RMS of its
  active part against the background's over the same span.

An event's active part is its 10 ms frames within 25 dB of its loudest; a window is an event's when it
holds at least `MIN_OVERLAP_S` of it. Every stream goes through the engine's own `Pipeline` (front end,
hop, level floor), which hands the temporal stage each window's input (`InputExtractor`); scoring runs
the exported stage on the engine's runtime and the engine's `EventDetector`, as a live source does.
Background streams hold no event: every event that starts there is a false alarm, attributed to the
background clip the deciding window ends in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine import temporal as stage
from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.detector import DetectorSettings
from custom_components.sound_sentry.engine.level import DEFAULT_MIN_LEVEL_DBFS
from custom_components.sound_sentry.engine.model_info import ModelInfo, TemporalInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from training.audio import LABELS, Clip, held_out, load_audio, read_clips
from training.audio_paths import extra_data_dir
from training.evaluate import detect, detector_settings, quiet_noise, sound_kind

Array = npt.NDArray[np.float32]
RATE = 8000
FRAME = 80
CONSTRUCTIONS = ("level", "no_level_cue")
MIN_OVERLAP_S = 0.15
HOLD_S = 2.0
EVENT_SLACK_S = HOLD_S
"""An event counts as heard when its class turns on between its onset and this long after its end."""
HARD_NEGATIVE_WEIGHT = 3.0
HARD_SOURCES = {
    "lookitlaughter",
    "babblecor-ocs2020",
    "nycu-knock",
    "cs496-sensing",
    "snu-b36-50",
    "kenney-cc0",
    "covid19-cough",
    "dcase2016_task2",
    "assaf_glass",
}
HARD_KINDS = (
    "laugh",
    "knock",
    "hammer",
    "jackhammer",
    "thunder",
    "door",
    "clap",
    "dog",
    "drill",
    "cough",
    "can_open",
)
THRESHOLDS = tuple(
    float(t)
    for t in np.round(
        np.concatenate(
            [
                np.arange(0.1, 0.9, 0.05),
                np.arange(0.9, 0.99, 0.01),
                [0.99, 0.995, 0.998, 0.999, 0.9995, 0.9998, 0.9999],
            ]
        ),
        5,
    )
)


# --- clips and their active parts --------------------------------------------------------------------


def rms(samples: Array) -> float:
    """RMS of samples (a tiny floor for digital silence)."""
    return float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)) + 1e-12))


def active_frames(samples: Array) -> npt.NDArray[np.bool_]:
    """The clip's 10 ms frames within 25 dB of its loudest (its active part)."""
    frames = samples[: samples.size // FRAME * FRAME].reshape(-1, FRAME).astype(np.float64)
    if not len(frames):
        return np.zeros(0, bool)
    energy = np.mean(frames**2, axis=1) + 1e-12
    return np.asarray(energy >= energy.max() * 10 ** (-25 / 10))


@dataclass(frozen=True)
class Placed:
    """An event in a stream."""

    label: int
    onset_s: float
    end_s: float
    start_sample: int
    active: npt.NDArray[np.bool_]
    """Active frames of the clip, from `start_sample`."""


@dataclass
class Stream:
    """A stream's samples and its events; `kinds` are (end time, kind) of the background clips in order."""

    samples: Array
    events: list[Placed] = field(default_factory=list)
    kinds: list[tuple[float, str]] = field(default_factory=list)


def _all_clips(data: str = "all") -> list[Clip]:
    """../shared/data and, with `data` "all" when it is built, the Debian-built set."""
    return read_clips("all" if data == "all" and (extra_data_dir() / "manifest.csv").is_file() else "shared")


def clip_sets(split: str, hold_out: Sequence[str] = (), data: str = "all") -> tuple[list[Clip], list[Clip]]:
    """(event clips, background clips) of a split, without the units of `hold_out` (a cross-source fold).

    `data`: "all" (with the Debian-built set when it is built) or "shared" (../shared/data alone).
    """
    clips = [c for c in _all_clips(data) if c.split == split and not held_out(c, hold_out)]
    return [c for c in clips if c.label != "background"], [c for c in clips if c.label == "background"]


def held_out_sets(hold_out: Sequence[str]) -> tuple[list[Clip], list[Clip]]:
    """A fold's evaluation clips: its held-out events (every split), in its held-out background.

    The background also holds the `val` background of the other sources.
    """
    clips = _all_clips()
    events = [c for c in clips if c.label != "background" and held_out(c, hold_out)]
    background = [c for c in clips if c.label == "background" and (held_out(c, hold_out) or c.split == "val")]
    return events, background


def is_hard(clip: Clip) -> bool:
    """A background clip that sounds like one of our events (weighted up in training beds)."""
    kind = sound_kind(clip)
    return clip.source in HARD_SOURCES or any(k in kind for k in HARD_KINDS)


class Bed:
    """Continuous background built from a split's clips, each at its construction's level."""

    def __init__(
        self,
        clips: Sequence[Clip],
        audio: dict[Path, Array],
        *,
        weighted: bool,
        mined: dict[str, float] | None = None,
    ) -> None:
        """The clips to draw from, with sampling weights.

        `weighted`: hard negatives are drawn HARD_NEGATIVE_WEIGHT times as often; `mined` (clip path ->
        weight, from `mine_hard_negatives`) multiplies that.
        """
        self.clips = [c for c in clips if audio[c.path].size >= FRAME]
        self.audio = audio
        weights = np.array(
            [
                (HARD_NEGATIVE_WEIGHT if weighted and is_hard(c) else 1.0)
                * (mined or {}).get(str(c.path), 1.0)
                for c in self.clips
            ]
        )
        self.p = weights / weights.sum()

    def draw(
        self, rng: np.random.Generator, size: int, construction: str, order: Sequence[int] | None = None
    ) -> Stream:
        """`size` samples of background: clips drawn (or in `order`) back to back, each at its level."""
        pieces, kinds, total = [], [], 0
        indices = (
            iter(order) if order is not None else iter(lambda: int(rng.choice(len(self.clips), p=self.p)), -1)
        )
        for index in indices:
            if order is None and total >= size:
                break
            clip = self.clips[index]
            samples = self.audio[clip.path]
            level = -40.0 if construction == "level" else float(rng.uniform(-45, -25))
            gain = min(10 ** (level / 20) / rms(samples), 100.0)
            pieces.append(samples * gain)
            total += samples.size
            kinds.append((total / RATE, sound_kind(clip)))
        bed = np.concatenate(pieces)[:size] if order is None else np.concatenate(pieces)
        return Stream(samples=bed.astype(np.float32), kinds=kinds)


def place(stream: Stream, event: Array, label: int, at_s: float, *, construction: str, snr_db: float) -> None:
    """Add an event clip into the stream at `at_s`, at its construction's level."""
    start = int(at_s * RATE)
    piece = event[: max(0, stream.samples.size - start)]
    if piece.size < FRAME:
        return
    active = active_frames(piece)
    if construction == "no_level_cue":
        mask = np.repeat(active, FRAME)
        span = stream.samples[start : start + mask.size]
        gain = rms(span[mask]) * 10 ** (snr_db / 20) / rms(piece[: mask.size][mask])
        piece = piece * gain
    stream.samples[start : start + piece.size] += piece
    first, last = int(np.argmax(active)), len(active) - int(np.argmax(active[::-1]))
    stream.events.append(
        Placed(label, (start + first * FRAME) / RATE, (start + last * FRAME) / RATE, start, active)
    )


def finish(stream: Stream, seed: int) -> Stream:
    """Clip to full scale and add the quiet microphone noise every stream has."""
    stream.samples = np.clip(stream.samples, -1, 1) + quiet_noise(stream.samples.size, seed)
    return stream


# --- through the engine's pipeline -------------------------------------------------------------------


@dataclass
class WindowSequence:
    """The temporal stage's inputs for one stream, with strong labels and the events' spans."""

    inputs: Array
    ends: npt.NDArray[np.float64]
    labels: npt.NDArray[np.int64]
    events: list[tuple[int, float, float]]
    kinds: list[tuple[float, str]] = field(default_factory=list)


class _Recorder:
    """A stand-in temporal stage that keeps what the pipeline feeds it."""

    name = "recorder"
    hidden_size = 1

    def __init__(self, input_size: int) -> None:
        self.input_size = input_size
        self.rows: list[Array] = []

    def run(self, inputs: Array, state: Array) -> tuple[Array, Array]:
        self.rows.append(np.array(inputs, np.float32))
        return np.zeros((len(inputs), len(LABELS)), np.float32), state


class InputExtractor:
    """The temporal stage's per-window inputs of a stream, computed by the engine's `Pipeline`."""

    def __init__(self, info: ModelInfo, backend: str = "onnxruntime") -> None:
        self.info = info
        model = load_backend(info.path, backend)  # type: ignore[arg-type]
        self.recorder = _Recorder(model.embedding_size + len(info.labels))
        probe = replace(info, temporal=TemporalInfo(path=info.path, sha256="", hidden_size=1))
        self.pipeline = Pipeline(model, probe, temporal=self.recorder, min_level_dbfs=DEFAULT_MIN_LEVEL_DBFS)

    def __call__(self, stream: Stream) -> WindowSequence:
        """Every window's input, end time and label."""
        self.pipeline.reset()
        self.recorder.rows = []
        ends: list[float] = []
        chunk = 60 * RATE
        for first in range(0, stream.samples.size, chunk):
            ends += [w.end_s for w in self.pipeline.process(stream.samples[first : first + chunk]).windows]
        inputs = (
            np.concatenate(self.recorder.rows)
            if self.recorder.rows
            else np.zeros((0, self.recorder.input_size), np.float32)
        )
        end_times = np.array(ends, np.float64)
        return WindowSequence(
            inputs=inputs,
            ends=end_times,
            labels=window_labels(stream.events, end_times, self.info.window_samples / RATE),
            events=[(e.label, e.onset_s, e.end_s) for e in stream.events],
            kinds=stream.kinds,
        )


def window_labels(
    events: list[Placed], ends: npt.NDArray[np.float64], window_s: float
) -> npt.NDArray[np.int64]:
    """Strong labels: a window is the event's that fills most of it, if at least MIN_OVERLAP_S."""
    labels = np.zeros(len(ends), np.int64)
    best = np.zeros(len(ends))
    for event in events:
        times = event.start_sample / RATE + (np.flatnonzero(event.active) + 0.5) * FRAME / RATE
        lo = np.searchsorted(times, ends - window_s)
        hi = np.searchsorted(times, ends)
        overlap = (hi - lo) * FRAME / RATE
        take = (overlap >= MIN_OVERLAP_S) & (overlap > best)
        labels[take], best[take] = event.label, overlap[take]
    return labels


# --- the streams ------------------------------------------------------------------------------------


def _cached(path: Path | None, build: Callable[[], list[WindowSequence]]) -> list[WindowSequence]:
    if path is None:
        return build()
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            return [
                WindowSequence(
                    inputs=data[f"x{i}"],
                    ends=data[f"t{i}"],
                    labels=data[f"y{i}"],
                    events=[tuple(e) for e in m["events"]],  # type: ignore[misc]
                    kinds=[tuple(k) for k in m["kinds"]],  # type: ignore[misc]
                )
                for i, m in enumerate(meta)
            ]
    sequences = build()
    arrays: dict[str, Any] = {}
    for i, s in enumerate(sequences):
        arrays |= {f"x{i}": s.inputs, f"t{i}": s.ends, f"y{i}": s.labels}
    meta = [{"events": s.events, "kinds": s.kinds} for s in sequences]
    np.savez(path, meta=json.dumps(meta), **arrays)
    return sequences


def _decode(clips: Sequence[Clip]) -> dict[Path, Array]:
    return {c.path: load_audio(c.path) for c in clips}


def _key(*parts: object) -> str:
    return hashlib.sha1(json.dumps([str(p) for p in parts]).encode()).hexdigest()[:10]


def training_sequences(
    extractor: InputExtractor,
    *,
    copies: int,
    seed: int,
    cache: Path,
    mined: dict[str, float] | None = None,
    hold_out: Sequence[str] = (),
) -> list[WindowSequence]:
    """Training streams from the `train` split: 40 s beds with 1-3 events (sometimes two close together).

    Each event clip is in `copies` streams; a quarter of the streams are background only. Three in four
    streams have no level cue (-5..+15 dB over the background), one in four is at the recorded level.
    `mined`: background clips' sampling weights from `mine_hard_negatives`; `hold_out`: a fold's units.
    """
    events, background = clip_sets("train", hold_out)
    parts: list[object] = [copies, seed, len(events), len(background), extractor.info.hop_s]
    if mined:
        parts.append(hashlib.sha1(json.dumps(sorted(mined.items())).encode()).hexdigest()[:8])
    if hold_out:
        parts.append(sorted(hold_out))
    path = cache / f"train-{_key(*parts)}.npz"

    def build() -> list[WindowSequence]:
        rng = np.random.default_rng(seed)
        audio = _decode([*events, *background])
        bed = Bed(background, audio, weighted=True, mined=mined)
        queue = [i for i in range(len(events)) for _ in range(copies)]
        rng.shuffle(queue)
        sequences: list[WindowSequence] = []
        size = 40 * RATE
        while queue:
            construction = "level" if rng.random() < 0.25 else "no_level_cue"
            stream = bed.draw(rng, size, construction)
            if rng.random() >= 0.25:
                at = float(rng.uniform(2, 8))
                for _ in range(int(rng.integers(1, 4))):
                    if not queue or at > 36:
                        break
                    clip = events[queue.pop()]
                    place(
                        stream,
                        audio[clip.path],
                        clip.label_index,
                        at,
                        construction=construction,
                        snr_db=float(rng.uniform(-5, 15)),
                    )
                    end = stream.events[-1].end_s if stream.events else at
                    at = end + (
                        float(rng.uniform(-0.5, 1.0)) if rng.random() < 0.15 else float(rng.uniform(3, 12))
                    )
            sequences.append(extractor(finish(stream, int(rng.integers(1 << 30)))))
            if len(sequences) % 200 == 0:
                print(f"  {len(sequences)} training streams, {len(queue)} event copies left", flush=True)
        return sequences

    return _cached(path, build)


MINED_WEIGHT = 10.0
"""A training background clip on which the first stage fired with probability p is drawn 1 + p x this
times as often in the second round."""


def mine_hard_negatives(
    info: ModelInfo, extractor: InputExtractor, *, seed: int, cache: Path, hold_out: Sequence[str] = ()
) -> dict[str, float]:
    """Sampling weights of the `train` split's background clips, from what the stage fires on.

    A clip's weight is 1 + MINED_WEIGHT x the highest event probability the stage gives any window
    ending in it, over one pass of all of them in each construction.
    """
    _events, background = clip_sets("train", hold_out)
    audio = _decode(background)
    bed = Bed(background, audio, weighted=False)
    hardness = np.zeros(len(bed.clips))
    for offset, construction in enumerate(CONSTRUCTIONS):
        parts: list[object] = [
            seed,
            len(background),
            extractor.info.hop_s,
            *([sorted(hold_out)] if hold_out else []),
        ]
        path = cache / f"mine-{construction}-{_key(*parts)}.npz"

        def build(construction: str = construction, offset: int = offset) -> list[WindowSequence]:
            rng = np.random.default_rng(seed + offset)
            stream = bed.draw(rng, 0, construction, order=list(range(len(bed.clips))))
            return [extractor(finish(stream, int(rng.integers(1 << 30))))]

        (sequence,) = _cached(path, build)
        (probs,) = stage_probabilities(info, [sequence])
        bounds = np.array([k[0] for k in sequence.kinds])
        clip_of = np.minimum(np.searchsorted(bounds, sequence.ends), len(bed.clips) - 1)
        np.maximum.at(hardness, clip_of, probs[:, 1:].max(axis=1))
    kinds = Counter(sound_kind(c) for c, h in zip(bed.clips, hardness, strict=True) if h >= 0.5)
    print(
        f"mined {int((hardness >= 0.5).sum())} of {len(bed.clips)} training background clips with an event "
        f"probability >= 0.5: {dict(kinds.most_common(12))}",
        flush=True,
    )
    return {str(c.path): 1.0 + MINED_WEIGHT * float(h) for c, h in zip(bed.clips, hardness, strict=True)}


@dataclass
class EvaluationSet:
    """One construction's streams of a split: events in background, and background alone."""

    events: list[WindowSequence]
    background: list[WindowSequence]
    background_hours: float


def evaluation_sets(
    extractor: InputExtractor,
    split: str,
    *,
    hours: float,
    seed: int,
    cache: Path | None,
    copies: int = 3,
    clips: tuple[list[Clip], list[Clip]] | None = None,
) -> dict[str, EvaluationSet]:
    """Both constructions of a split (or of `clips`, named `split`).

    Its background played (reshuffled) until `hours`, and every event clip `copies` times in 10-minute
    background streams, 12-20 s apart (events 0..+15 dB over the background without level cue).
    """
    events, background = clips if clips is not None else clip_sets(split)
    audio = _decode([*events, *background])
    bed = Bed(background, audio, weighted=False)
    sets = {}
    for offset, construction in enumerate(CONSTRUCTIONS):
        key = _key(hours, seed, copies, len(events), len(background), extractor.info.hop_s)
        path = cache / f"{split}-{construction}-{key}.npz" if cache is not None else None

        def build_background(construction: str = construction, offset: int = offset) -> list[WindowSequence]:
            rng = np.random.default_rng(seed + 100 * offset)
            out, total = [], 0.0
            while total < hours * 3600:
                stream = bed.draw(rng, 0, construction, order=rng.permutation(len(bed.clips)).tolist())
                total += stream.samples.size / RATE
                out.append(extractor(finish(stream, int(rng.integers(1 << 30)))))
            return out

        def build_events(construction: str = construction, offset: int = offset) -> list[WindowSequence]:
            rng = np.random.default_rng(seed + 100 * offset + 1)
            queue = [i for i in range(len(events)) for _ in range(copies)]
            rng.shuffle(queue)
            out = []
            while queue:
                stream = bed.draw(rng, 600 * RATE, construction)
                at = float(rng.uniform(6, 12))
                while queue and at < 590:
                    clip = events[queue.pop()]
                    place(
                        stream,
                        audio[clip.path],
                        clip.label_index,
                        at,
                        construction=construction,
                        snr_db=float(rng.uniform(0, 15)),
                    )
                    at = stream.events[-1].end_s + float(rng.uniform(12, 20)) if stream.events else at + 15
                out.append(extractor(finish(stream, int(rng.integers(1 << 30)))))
            return out

        bg = _cached(path.with_suffix(".bg.npz") if path else None, build_background)
        ev = _cached(path.with_suffix(".ev.npz") if path else None, build_events)
        hours_bg = sum(float(s.ends[-1]) if len(s.ends) else 0.0 for s in bg) / 3600
        sets[construction] = EvaluationSet(events=ev, background=bg, background_hours=hours_bg)
        print(
            f"{split} {construction}: {len(ev)} event streams ({sum(len(s.events) for s in ev)} events), "
            f"{hours_bg:.2f} h of background",
            flush=True,
        )
    return sets


# --- scoring through the engine ----------------------------------------------------------------------


def stage_probabilities(info: ModelInfo, sequences: list[WindowSequence]) -> list[Array]:
    """The exported stage's probabilities over each sequence, on the engine's runtime, from a zero state."""
    assert info.temporal is not None
    runtime = stage.load_temporal(info.temporal.path, "onnxruntime")
    out = []
    for s in sequences:
        probs, _ = runtime.run(s.inputs, stage.initial_state(runtime))
        out.append(probs)
    return out


def class_tracks(info: ModelInfo, evaluation: EvaluationSet) -> tuple[list[Array], list[Array]]:
    """Stage probabilities of the event streams and of the background streams."""
    return stage_probabilities(info, evaluation.events), stage_probabilities(info, evaluation.background)


def stream_metrics(
    info: ModelInfo,
    evaluation: EvaluationSet,
    detection: dict[str, Any],
    tracks: tuple[list[Array], list[Array]] | None = None,
    *,
    best: bool = True,
) -> dict[str, Any]:
    """Recall, false alarms per hour (and their background kinds), latency at one detection setting.

    With `best`, also per class the best recall at <= 1 and <= 10 false alarms per hour.
    """
    event_probs, bg_probs = tracks or class_tracks(info, evaluation)
    settings = detector_settings(detection)
    heard: dict[str, list[bool]] = {label: [] for label in LABELS[1:]}
    confused: Counter[str] = Counter()
    latency: dict[str, list[float]] = {label: [] for label in LABELS[1:]}
    for seq, probs in zip(evaluation.events, event_probs, strict=True):
        found = detect(probs, seq.ends, settings)
        for label, onset, end in seq.events:
            name = LABELS[label]
            hits = [s for s in found if onset <= s[1] <= end + EVENT_SLACK_S]
            mine = [s[1] for s in hits if s[0] == name]
            heard[name].append(bool(mine))
            if mine:
                latency[name].append(min(mine) - onset)
            confused.update(f"{name}->{s[0]}" for s in hits if s[0] != name)
    alarms: Counter[str] = Counter()
    kinds: dict[str, Counter[str]] = {label: Counter() for label in LABELS[1:]}
    for seq, probs in zip(evaluation.background, bg_probs, strict=True):
        bounds = np.array([k[0] for k in seq.kinds])
        for label, time_s, _peak in detect(probs, seq.ends, settings):
            alarms[label] += 1
            kind = seq.kinds[min(int(np.searchsorted(bounds, time_s)), len(seq.kinds) - 1)][1]
            kinds[label][kind] += 1
    hours = evaluation.background_hours
    best_recalls = {
        label: {
            str(budget): best_recall(
                evaluation, (event_probs, bg_probs), index, budget=budget, detection=detection
            )
            for budget in (1.0, 10.0)
        }
        for index, label in enumerate(LABELS[1:], start=1)
        if best
    }
    return {
        "recall": {label: float(np.mean(v)) if v else 0.0 for label, v in heard.items()},
        "events": {label: len(v) for label, v in heard.items()},
        "false_alarms_per_hour": {label: alarms[label] / hours for label in LABELS[1:]},
        "background_hours": hours,
        "false_alarm_kinds": {label: dict(c.most_common(6)) for label, c in kinds.items()},
        "confusions": dict(confused.most_common(6)),
        "latency_s": {
            label: {"p50": float(np.median(v)), "p95": float(np.quantile(v, 0.95))}
            for label, v in latency.items()
            if v
        },
        "best": best_recalls,
    }


Tracks = tuple[list[Array], list[Array]]
"""The stage's probabilities over an evaluation set's event streams and its background streams."""


def class_counts(
    evaluation: EvaluationSet, tracks: Tracks, index: int, settings: DetectorSettings
) -> tuple[int, int, int]:
    """(false alarms, events heard, events) of one class at one setting, by the engine's detector."""
    event_probs, bg_probs = tracks
    alarms = sum(
        len(detect(p, s.ends, settings)) for s, p in zip(evaluation.background, bg_probs, strict=True)
    )
    heard = total = 0
    for seq, probs in zip(evaluation.events, event_probs, strict=True):
        mine = [e for e in seq.events if e[0] == index]
        if not mine:
            continue
        found = [t for _label, t, _p in detect(probs, seq.ends, settings)]
        for _label, onset, end in mine:
            total += 1
            heard += any(onset <= t <= end + EVENT_SLACK_S for t in found)
    return alarms, heard, total


def one_class(detection: dict[str, Any], index: int, threshold: float) -> DetectorSettings:
    """The detector of one class at `threshold`, with `detection`'s k, n and hold."""
    return DetectorSettings(
        thresholds={LABELS[index]: threshold},
        k=int(detection["k"]),
        n=int(detection["n"]),
        hold_s=float(detection["hold_s"]),
    )


def best_recall(
    evaluation: EvaluationSet, tracks: Tracks, index: int, *, budget: float, detection: dict[str, Any]
) -> dict[str, float]:
    """The best recall of a class over THRESHOLDS with at most `budget` false alarms per hour."""
    best = {"threshold": 1.0, "recall": 0.0, "false_alarms_per_hour": 0.0}
    for threshold in THRESHOLDS:
        alarms, heard, total = class_counts(evaluation, tracks, index, one_class(detection, index, threshold))
        rate = alarms / evaluation.background_hours
        if rate <= budget and heard / max(1, total) > best["recall"]:
            best = {"threshold": threshold, "recall": heard / max(1, total), "false_alarms_per_hour": rate}
    return best


def choose_detection(
    val: dict[str, EvaluationSet], tracks: dict[str, Tracks]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per-class thresholds (1 of 1 window, hold 2 s) on the val streams, and the operating curve.

    `tracks`: the stage's probabilities over each construction's streams (`class_tracks`).
    A class's threshold allows at most 1 false alarm per hour in each construction; among those, the
    highest threshold whose recall (both constructions pooled) is within 1 point of the best.
    The curve: per threshold, false alarms per day (both constructions pooled) and recall.
    """
    k, n = 1, 1
    detection_base = {"k": k, "n": n, "hold_s": HOLD_S}
    thresholds: dict[str, float] = {}
    curve: dict[str, list[dict[str, float]]] = {}
    for index, label in enumerate(LABELS[1:], start=1):
        rows = []
        for threshold in THRESHOLDS:
            per = {
                c: class_counts(val[c], tracks[c], index, one_class(detection_base, index, threshold))
                for c in val
            }
            rates = {c: per[c][0] / val[c].background_hours for c in val}
            heard, total = sum(p[1] for p in per.values()), sum(p[2] for p in per.values())
            alarms, hours = sum(p[0] for p in per.values()), sum(v.background_hours for v in val.values())
            rows.append((threshold, max(rates.values()), heard / max(1, total), 24 * alarms / hours))
        allowed = [r for r in rows if r[1] <= 1.0] or [rows[-1]]
        top = max(r[2] for r in allowed)
        thresholds[label] = max(r[0] for r in allowed if r[2] >= top - 0.01)
        curve[label] = [{"threshold": r[0], "false_alarms_per_day": r[3], "recall": r[2]} for r in rows]
        print(
            f"val {label}: threshold {thresholds[label]} (recall {top:.1%} at <= 1 FA/h in each construction)"
        )
    detection = {"thresholds": thresholds, "k": k, "n": n, "hold_s": HOLD_S}
    hours = sum(v.background_hours for v in val.values())
    return detection, {"background_hours": hours, "k": k, "n": n, "classes": curve}


def clip_metrics(
    info: ModelInfo, extractor: InputExtractor, split: str, detection: dict[str, Any], data: str = "all"
) -> dict[str, Any]:
    """Per clip at the defaults, and the balanced accuracy over the 4 classes.

    Each clip alone in quiet noise (4 s before, 2 s after); predicted: the class whose stage probability
    peaks highest over its threshold, else background.
    """
    events, background = clip_sets(split, data=data)
    clips = [*events, *background]
    sequences = []
    for index, clip in enumerate(clips):
        samples = load_audio(clip.path)
        lead, tail = np.zeros(4 * RATE, np.float32), np.zeros(2 * RATE, np.float32)
        stream = Stream(samples=np.concatenate([lead, samples, tail]))
        sequences.append(extractor(finish(stream, 3_000_000 + index)))
    probs = stage_probabilities(info, sequences)
    thresholds = detection["thresholds"]
    correct: dict[str, list[bool]] = {label: [] for label in LABELS}
    for clip, p in zip(clips, probs, strict=True):
        peaks = {label: float(p[:, i].max()) for i, label in enumerate(LABELS) if label in thresholds}
        passing = {label: v for label, v in peaks.items() if v >= thresholds[label]}
        predicted = max(passing, key=passing.__getitem__) if passing else "background"
        correct[clip.label].append(predicted == clip.label)
    recall = {label: float(np.mean(v)) if v else 0.0 for label, v in correct.items()}
    return {
        "recall": recall,
        "balanced_accuracy": float(np.mean(list(recall.values()))),
        "clips": {k: len(v) for k, v in correct.items()},
    }


TEST_HOURS = 1.0
"""Background hours per construction of the test streams: passes over the test split's background (0.46 h
in ../shared/data) until at least this much."""
TEST_SEED = 20261209


def measure(
    info: ModelInfo,
    detection: dict[str, Any],
    *,
    split: str = "test",
    cache: Path | None = None,
    best: bool = True,
) -> dict[str, Any]:
    """The card's figures at one detection setting: both constructions' streams, and per clip.

    On ../shared/data alone (the Debian-built set is not built everywhere, and this is what a CI run
    re-measures). `best`: also the best recall per class at <= 1 and <= 10 false alarms per hour.
    """
    extractor = InputExtractor(info)
    clips = clip_sets(split, data="shared")
    sets = evaluation_sets(
        extractor, f"{split}-shared", hours=TEST_HOURS, seed=TEST_SEED, cache=cache, clips=clips
    )
    return {
        "split": split,
        "data": "shared",
        "streams": {c: stream_metrics(info, sets[c], detection, best=best) for c in sets},
        "clips": clip_metrics(info, extractor, split, detection, data="shared"),
    }


def format_report(report: dict[str, Any]) -> str:
    """`measure`'s figures as the log and the cards show them."""
    lines = [format_metrics(f"{report['split']} streams, {c}", m) for c, m in report["streams"].items()]
    clips = report["clips"]
    lines.append(
        f"{report['split']} clips at the defaults: balanced accuracy {clips['balanced_accuracy']:.1%}, recall "
        + " / ".join(f"{clips['recall'][label]:.0%}" for label in LABELS)
        + f" (background / babycry / glassbreak / gunshot; clips {clips['clips']})"
    )
    return "\n".join(lines)


def format_metrics(title: str, m: dict[str, Any]) -> str:
    """A few lines for the log and the card."""

    def row(values: dict[str, float]) -> str:
        return " / ".join(f"{values[label]:.0%}" for label in LABELS[1:])

    lines = [
        f"{title}: recall at the defaults {row(m['recall'])} (events {m['events']}), false alarms per hour "
        + " / ".join(f"{m['false_alarms_per_hour'][label]:.2f}" for label in LABELS[1:])
        + f" in {m['background_hours']:.2f} h",
        *(
            [
                "  best at <= 1 FA/h: "
                + row({label: m["best"][label]["1.0"]["recall"] for label in LABELS[1:]})
                + "; at <= 10 FA/h: "
                + row({label: m["best"][label]["10.0"]["recall"] for label in LABELS[1:]})
            ]
            if m["best"]
            else []
        ),
        "  latency onset -> on: "
        + ", ".join(
            f"{label} p50 {v['p50']:.2f} s p95 {v['p95']:.2f} s" for label, v in m["latency_s"].items()
        ),
        f"  false alarms from: {m['false_alarm_kinds']}; confusions: {m['confusions']}",
    ]
    return "\n".join(lines)


def fold_summary(reports: dict[str, dict[str, Any]]) -> str:
    """Markdown of cross-source folds, each scored on its held-out sources at its own val defaults.

    Per fold and construction: recall at the defaults, false alarms per hour, the best recall at <= 1 and
    <= 10 FA/h, latency p95; then recall pooled over events (the false alarms: the folds' mean).
    """
    labels = LABELS[1:]
    lines = [
        "| fold | construction | at the defaults | FA/h | best at <= 1 / <= 10 FA/h | latency p95 | events |",
        "|---|---|---|---|---|---|---|",
    ]
    pooled: dict[str, dict[str, list[float]]] = {}
    for name, report in sorted(reports.items()):
        for construction in CONSTRUCTIONS:
            m = report[construction]
            sums = pooled.setdefault(construction, {})
            for label in labels:
                n = m["events"][label]
                for key, value in (
                    ("recall", m["recall"][label]),
                    ("best1", m["best"][label]["1.0"]["recall"]),
                    ("best10", m["best"][label]["10.0"]["recall"]),
                ):
                    sums.setdefault(f"{key}:{label}", []).append(value * n)
                sums.setdefault(f"n:{label}", []).append(n)
                sums.setdefault(f"fa:{label}", []).append(m["false_alarms_per_hour"][label])
            latency = m["latency_s"]

            def held(value: float, label: str, m: dict[str, Any] = m) -> str:
                return f"{value:.0%}" if m["events"][label] else "-"

            lines.append(
                f"| {name} | {construction} | "
                + " / ".join(held(m["recall"][label], label) for label in labels)
                + " | "
                + " / ".join(f"{m['false_alarms_per_hour'][label]:.1f}" for label in labels)
                + " | "
                + " / ".join(
                    f"{m['best'][label]['1.0']['recall']:.0%}-{m['best'][label]['10.0']['recall']:.0%}"
                    if m["events"][label]
                    else "-"
                    for label in labels
                )
                + " | "
                + " / ".join(
                    f"{latency[label]['p95']:.1f} s" if label in latency else "-" for label in labels
                )
                + " | "
                + " / ".join(str(m["events"][label]) for label in labels)
                + " |"
            )
    for construction, sums in pooled.items():

        def share(key: str, label: str, sums: dict[str, list[float]] = sums) -> str:
            return f"{sum(sums[f'{key}:{label}']) / max(1, sum(sums[f'n:{label}'])):.0%}"

        lines.append(
            f"| **all** | {construction} | "
            + " / ".join(f"**{share('recall', label)}**" for label in labels)
            + " | "
            + " / ".join(f"{np.mean(sums[f'fa:{label}']):.1f}" for label in labels)
            + " | "
            + " / ".join(f"{share('best1', label)}-{share('best10', label)}" for label in labels)
            + " | | "
            + " / ".join(str(int(sum(sums[f"n:{label}"]))) for label in labels)
            + " |"
        )
    return "\n".join(lines)
