"""Build the demo recording that `scripts/develop` streams: a quiet room with a baby crying, glass
breaking and a gunshot at known times, from the dev `test` split of ../shared/data, and then a smoke
alarm (a synthetic temporal-three pattern at 3.1 kHz, three cycles).

    PYTHONPATH=. python scripts/demo_audio.py OUT.wav

Beside OUT.wav it writes OUT.json: where each sound is in the loop, {"events": {label: [start_s, end_s]}}.

The demo shows what a detection looks like, so for each sound it uses the test clip that the shipped
model tells most clearly from the other sounds *in the demo's room* (chosen by running the model, so the
choice follows the model when it is replaced). How often the model detects such sounds in general is
the model card's business, not the demo's.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
import sys

import av
import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.alarm import AlarmSettings
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, LoadedModel, load_model, model_path
from custom_components.sound_sentry.engine.pipeline import Pipeline
from tests.audio import T3_PIEZO, alarm_signal

RATE_HZ = 8000
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LENGTH_S = 70.0
EVENTS = {"babycry": 8.0, "glassbreak": 26.0, "gunshot": 44.0}
"""Where each event starts in the loop, in seconds."""
SMOKE_ALARM_S = 52.0
"""Where the smoke alarm starts: its three cycles end by 63 s, and its sensor turns off before the loop ends."""
SMOKE_ALARM_DBFS = -20.0
ROOM_GAIN = 0.3
CONTEXT_S = 2.0
"""How much of the room before and after a candidate clip is classified with it."""


def read(path: Path) -> npt.NDArray[np.float32]:
    """An 8 kHz mono FLAC as float32."""
    with av.open(str(path)) as container:
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])
    return pcm.astype(np.float32) / 32768.0


def kth_of_n(probs: npt.NDArray[np.float32], k: int, n: int) -> npt.NDArray[np.float32]:
    """Per window, the k-th highest probability of the last n windows: the highest threshold at which
    the detector (k of the last n windows must pass) is on at that window. Axis 0 is time."""
    if len(probs) < n:
        return np.zeros((0, *probs.shape[1:]), dtype=np.float32)
    runs = np.lib.stride_tricks.sliding_window_view(probs, n, axis=0)  # [time, ..., n]
    return np.sort(runs, axis=-1)[..., n - k]


def mix(room: npt.NDArray[np.float32], clip: npt.NDArray[np.float32], at: int) -> npt.NDArray[np.float32]:
    """`room` with `clip` added from sample `at` (cut at the room's end)."""
    mixed = room.copy()
    part = clip[: max(0, room.size - at)]
    mixed[at : at + part.size] += part
    return mixed


def _logit(p: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return np.log(p / (1 - p))


def clarity(pipeline: Pipeline, audio: npt.NDArray[np.float32], label: str) -> float:
    """How clearly the detector hears `label` in `audio` at the model's defaults: how far (in log-odds)
    its best k-of-n score for `label` passes its threshold, less how close any other sound comes to its own."""
    pipeline.reset()
    windows = pipeline.process(audio).windows
    events = [name for name in pipeline.info.labels if name != "background"]
    probs = np.array([[w.probabilities[name] for name in events] for w in windows], dtype=np.float32)
    scores = kth_of_n(probs, pipeline.info.k, pipeline.info.n).max(axis=0).astype(np.float64)
    margins = _logit(scores) - _logit(np.array([pipeline.info.thresholds[name] for name in events]))
    own = events.index(label)
    return float(margins[own] - max(0.0, np.delete(margins, own).max()))


DEFAULT_MODEL_PATH = model_path(DEFAULT_MODEL)
"""New sources' model: the demo's sounds are the ones it hears most clearly."""


def build(model: Path = DEFAULT_MODEL_PATH) -> tuple[npt.NDArray[np.float32], dict[str, list[float]]]:
    """The demo loop: room noise from the test split with the clearest test clip of each sound; and
    where each sound is in it (start and end, in seconds).

    The first stretch of the test split's room recordings whose loop the engine hears exactly as meant at
    the model's defaults: each sound once per loop, nothing else, over LOOPS loops and every quarter of
    the model's hop (where the window grid falls). So the demo shows each sound detected in every loop.
    """
    rows = [row for row in csv.DictReader((DATA / "manifest.csv").open()) if row["split"] == "test"]
    room = [DATA / r["path"] for r in rows if r["label"] == "background" and r["source"] == "zalmotek_mssnsd"]
    bed = np.concatenate([read(path) for path in room])
    loaded = load_model(model)
    pipeline = Pipeline.for_model(loaded)
    clips = {label: [read(DATA / r["path"]) for r in rows if r["label"] == label] for label in EVENTS}
    for offset_s in range(0, int(bed.size / RATE_HZ - LENGTH_S), 7):
        start = offset_s * RATE_HZ
        out, events = _loop(pipeline, clips, bed[start : start + int(LENGTH_S * RATE_HZ)])
        if _heard_as_meant(loaded, out, events):
            return out, events
    raise SystemExit(f"no stretch of the test room recordings gives a clean demo loop with {model.name}")


LOOPS = 3
"""Loops the demo must be heard exactly as meant in (the sensors reset between loops by their hold)."""


def _heard_as_meant(
    model: LoadedModel, loop: npt.NDArray[np.float32], events: dict[str, list[float]]
) -> bool:
    """Whether the engine, at the model's defaults, turns each sound on once per loop within its span and
    nothing else, wherever the window grid falls."""
    expected = sorted(events, key=lambda label: events[label][0])
    audio = np.tile(loop, LOOPS)
    for quarter in range(4):
        shift = round(model.info.hop_s * quarter / 4 * RATE_HZ)
        pipeline = Pipeline.for_model(model, alarms=AlarmSettings(sample_rate_hz=RATE_HZ))
        output = pipeline.process(np.concatenate([np.zeros(shift, np.float32), audio]))
        starts = [(e.label, e.time_s - shift / RATE_HZ) for e in output.events if e.active]
        if [label for label, _ in starts] != expected * LOOPS:
            return False
        for index, (label, time_s) in enumerate(starts):
            begin, end = events[label]
            at = time_s - (index // len(expected)) * LENGTH_S
            if not begin <= at <= end + model.info.window_samples / RATE_HZ + 4.0:
                return False
    return True


def _loop(
    pipeline: Pipeline, clips: dict[str, list[npt.NDArray[np.float32]]], room: npt.NDArray[np.float32]
) -> tuple[npt.NDArray[np.float32], dict[str, list[float]]]:
    """One demo loop on a stretch of room recording: the clearest clip of each sound, then the alarm."""
    out = room * np.float32(ROOM_GAIN)
    events: dict[str, list[float]] = {}
    for label, start_s in EVENTS.items():
        start = int(start_s * RATE_HZ)
        margin = int(CONTEXT_S * RATE_HZ)
        best = max(
            clips[label],
            key=lambda clip: clarity(
                pipeline, mix(out[start - margin : start + clip.size + margin], clip, margin), label
            ),
        )
        out[start : start + best.size] += best
        events[label] = [start_s, start_s + best.size / RATE_HZ]
    alarm = alarm_signal(T3_PIEZO, cycles=3, level_dbfs=SMOKE_ALARM_DBFS)
    start = int(SMOKE_ALARM_S * RATE_HZ)
    out[start : start + alarm.size] += alarm
    events["smoke_alarm"] = [SMOKE_ALARM_S, SMOKE_ALARM_S + alarm.size / RATE_HZ]
    return np.clip(out, -1.0, 1.0), events


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    """Mono 16-bit WAV through PyAV."""
    pcm = (samples * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE_HZ, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE_HZ
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    samples, events = build()
    write_wav(target, samples)
    target.with_suffix(".json").write_text(json.dumps({"events": events}, indent=2) + "\n")
    print(f"demo recording: {target} ({LENGTH_S:.0f} s loop; sounds at {events} s)", file=sys.stderr)
