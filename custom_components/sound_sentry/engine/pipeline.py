"""From 8 kHz PCM to window probabilities, sound levels and events: the streaming pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from .alarm import AlarmPatternDetector, AlarmSettings
from .backends import ModelBackend, one_blas_thread
from .detector import DetectorSettings, EventDetector
from .events import DetectionEvent
from .frontend import FrontEnd
from .level import DEFAULT_MIN_LEVEL_DBFS, level_dbfs
from .model import LoadedModel
from .model_info import DEFAULT_HOP_S, ModelInfo
from .taught import TaughtSound, taught_embeddings
from .temporal import TemporalRuntime, initial_state, temporal_inputs

__all__ = ["DEFAULT_HOP_S", "Pipeline", "PipelineOutput", "WindowResult", "to_float"]
DEFAULT_MAX_BATCH = 64
"""Most windows per `predict()` call: a long chunk is classified in several batches, bounding memory."""


@dataclass(frozen=True, slots=True)
class WindowResult:
    """One classified window of the stream."""

    start_s: float
    """Stream time of the window's first sample (0 = first sample since `reset()`)."""
    end_s: float
    """Stream time just after the window's last sample."""
    probabilities: dict[str, float]
    """What the detector reads, per label (`Pipeline.labels`): the temporal stage's output for a model
    that has one, else the network's; then each taught sound's."""
    dbfs: float
    """RMS level of the window relative to a full-scale square wave (a full-scale sine is -3.01)."""
    classified: bool = True
    """False for a window below the pipeline's level floor: not run through the model; its
    probabilities are then 1 for background (0 for the others, taught sounds too), so it cannot start an
    event."""


@dataclass(frozen=True, slots=True)
class PipelineOutput:
    """What one chunk of audio produced."""

    windows: list[WindowResult]
    events: list[DetectionEvent]
    """The model's `SoundEvent`s and, with alarms, the `AlarmEvent`s, in time order."""


def to_float(pcm: npt.ArrayLike) -> npt.NDArray[np.float32]:
    """int16 PCM (or floats already in [-1, 1]) as flat float32 in [-1, 1]."""
    samples = np.asarray(pcm)
    if samples.dtype == np.int16:
        return (samples.astype(np.float32) / 32768.0).reshape(-1)
    if not np.issubdtype(samples.dtype, np.floating):
        raise TypeError(f"PCM must be int16 or float in [-1, 1], not {samples.dtype}")
    return samples.astype(np.float32, copy=False).reshape(-1)


class Pipeline:
    """Windows a PCM stream, classifies each window and debounces the results into events.

    The model's feature frames (its front end: FBANK or log mel) are computed once as audio arrives
    and shared by the overlapping windows (a window every `hop_s`, rounded to the nearest whole 10 ms
    frame); the windows a chunk completes are classified in batches of at most `max_batch`, usually one
    call per chunk. Each window's features are exactly those of a one-shot front end of its samples.
    Chunks that complete no window are only stored (the front end runs when a window is due, so tiny
    chunks cost no more than large ones), and only
    the frames and samples that a future window still needs are kept: memory does not grow with the
    stream. With `min_level_dbfs`, a window whose RMS level is below it is not classified (see
    `WindowResult.classified`): in a quiet room the model does not run at all. A model with a temporal
    stage (`temporal.py`) decides on the sequence: each window's embedding and log-probabilities go
    through the stage, whose state the pipeline carries from chunk to chunk (a quiet window goes in as
    the network's view of silence), and the stage's probabilities go to the detector. With `alarms`, an
    `AlarmPatternDetector` hears every chunk too (quiet ones included) and its smoke and CO alarm
    starts and ends join the model's events, in time order. With `taught` sounds (label -> head, on
    the accurate model), each loud window's features also go through the model's taught network (the
    pretrained embedding, `taught.taught_embeddings`; quiet windows do not, and score 0), every head
    scores that embedding, and the detector debounces them like the model's sounds at the thresholds
    its settings give their labels.

    Not thread-safe: feed one stream from one thread (or under a lock), and `reset()` between streams.
    """

    def __init__(
        self,
        backend: ModelBackend,
        info: ModelInfo,
        *,
        temporal: TemporalRuntime | None = None,
        hop_s: float | None = None,
        detector: DetectorSettings | None = None,
        max_batch: int = DEFAULT_MAX_BATCH,
        min_level_dbfs: float | None = DEFAULT_MIN_LEVEL_DBFS,
        alarms: AlarmSettings | None = None,
        taught: Mapping[str, TaughtSound] | None = None,
        taught_network: ModelBackend | None = None,
    ) -> None:
        hop_s = info.hop_s if hop_s is None else hop_s
        if not (math.isfinite(hop_s) and hop_s > 0):
            raise ValueError(f"hop_s must be a positive number of seconds, not {hop_s}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, not {max_batch}")
        if (info.temporal is None) != (temporal is None):
            raise ValueError(
                f"{info.name} {'has' if info.temporal else 'has no'} temporal stage, but one was "
                f"{'not ' if temporal is None else ''}given: build the pipeline with Pipeline.for_model"
            )
        self.backend = backend
        self.info = info
        self.taught = dict(taught or {})
        """The taught sounds, by label."""
        if clash := set(self.taught) & set(info.labels):
            raise ValueError(f"taught sounds named like the model's labels: {sorted(clash)}")
        if self.taught and taught_network is None:
            raise ValueError(
                "taught sounds need the model's taught network: build the pipeline with for_model"
            )
        self.taught_network = taught_network
        """The network whose embedding the taught sounds read (`LoadedModel.taught_backend`)."""
        self.labels: tuple[str, ...] = (*info.labels, *self.taught)
        """What each window's probabilities are of: the model's labels, then the taught sounds'."""
        self.temporal = temporal
        self._quiet_inputs: npt.NDArray[np.float32] | None = None
        self.max_batch = max_batch
        self.min_level_dbfs = min_level_dbfs
        self._quiet = np.array([label == "background" for label in info.labels], dtype=np.float32)
        self.front_end = FrontEnd(info.front_end)
        self._shift = self.front_end.frame_shift
        self.window_frames = self.front_end.num_frames(info.window_samples)
        if self.window_frames < 1 or self.front_end.num_frames(info.window_samples + self._shift - 1) != (
            self.window_frames
        ):
            raise ValueError(f"window_samples {info.window_samples} is not a whole number of frames")
        self.hop_frames = max(1, round(hop_s * info.sample_rate_hz / self._shift))
        self.hop_s = self.hop_frames * self._shift / info.sample_rate_hz
        """The hop actually used: `hop_s` rounded to whole frames."""
        self.detector = EventDetector(list(self.labels), detector or info.detector_settings())
        if alarms is not None and alarms.sample_rate_hz != info.sample_rate_hz:
            raise ValueError(f"alarms at {alarms.sample_rate_hz} Hz, the model at {info.sample_rate_hz} Hz")
        self.alarms = AlarmPatternDetector(alarms) if alarms is not None else None
        """The smoke / CO alarm pattern detector, if asked for (it runs on the same PCM as the model)."""
        self.reset()

    @classmethod
    def for_model(cls, model: LoadedModel, **kwargs: Any) -> Pipeline:
        """The pipeline of a loaded model: its backend, sidecar and temporal stage (keywords as `__init__`).

        With taught sounds, also the model's taught network (loaded on first use: blocking the first time).
        """
        if kwargs.get("taught") and "taught_network" not in kwargs:
            kwargs["taught_network"] = model.taught_backend()
        return cls(model.backend, model.info, temporal=model.temporal, **kwargs)

    def reset(self) -> None:
        """Start over, as for a new stream: no audio, no events, time 0, the temporal stage's state at zero."""
        self.front_end.reset()
        self._state = initial_state(self.temporal) if self.temporal is not None else None
        self.detector.reset()
        if self.alarms is not None:
            self.alarms.reset()
        # Buffers with the absolute index (since reset) of their first element.
        self._frames = np.zeros((0, self.front_end.num_bands), dtype=np.float32)
        self._frames_start = 0
        self._samples = np.zeros(0, dtype=np.float32)
        self._samples_start = 0
        # Chunks not yet turned into frames: the front end runs once per completed window, not per (20 ms) chunk.
        self._pending: list[npt.NDArray[np.float32]] = []
        self._pending_size = 0
        self._next_window_end = self.window_frames  # frame count at which the next window completes

    def process(self, pcm: npt.ArrayLike) -> PipelineOutput:
        """Feed a chunk of 8 kHz mono PCM (any length); return the windows it completed and their events.

        NumPy's BLAS runs on one thread meanwhile (`one_blas_thread`): the caller's thread is the source's.
        """
        samples = to_float(pcm)
        with one_blas_thread:
            alarms = self.alarms.process(samples) if self.alarms is not None else []
            output = self._classify(samples)
        if alarms:
            output.events.extend(alarms)
            output.events.sort(key=lambda event: event.time_s)
        return output

    def finish(self) -> PipelineOutput:
        """The stream ended (a recording's last sample): the events of what is left to analyse.

        The alarm detector analyses in blocks and still holds the end of the stream; no window comes.
        `reset()` before another stream.
        """
        return PipelineOutput([], [*self.alarms.finish()] if self.alarms is not None else [])

    def _classify(self, samples: npt.NDArray[np.float32]) -> PipelineOutput:
        """The model's part of `process()`."""
        if samples.size:
            self._pending.append(samples)
            self._pending_size += samples.size
        received = self._samples_start + self._samples.size + self._pending_size
        if self.front_end.num_frames(received) < self._next_window_end:
            return PipelineOutput([], [])  # no window completes yet: keep the chunk for later
        samples = np.concatenate(self._pending) if len(self._pending) > 1 else self._pending[0]
        self._pending, self._pending_size = [], 0
        self._frames = np.concatenate([self._frames, self.front_end.process_streaming(samples)])
        self._samples = np.concatenate([self._samples, samples])
        frames_seen = self._frames_start + len(self._frames)
        ends = range(self._next_window_end, frames_seen + 1, self.hop_frames)
        windows: list[WindowResult] = []
        events: list[DetectionEvent] = []
        for first in range(0, len(ends), self.max_batch):
            batch = ends[first : first + self.max_batch]
            offset = self._frames_start + self.window_frames
            starts = [(end - self.window_frames) * self._shift for end in batch]
            levels = [level_dbfs(self._window_samples(start)) for start in starts]
            loud = [i for i, level in enumerate(levels) if self._loud(level)]
            features = np.zeros((len(loud), self.window_frames, self.front_end.num_bands), np.float32)
            for row, i in enumerate(loud):
                features[row] = self._frames[batch[i] - offset : batch[i] - offset + self.window_frames]
            probabilities = self._decide(self.front_end.window(features), loud, len(batch))
            for index, (start_sample, level, probs) in enumerate(
                zip(starts, levels, probabilities, strict=True)
            ):
                window = self._result(start_sample, level, probs, classified=index in loud)
                windows.append(window)
                events.extend(self.detector.process(window.end_s, probs))
        self._next_window_end = ends[-1] + self.hop_frames
        self._trim()
        return PipelineOutput(windows, events)

    def process_window(self, window: npt.ArrayLike, *, start_sample: int) -> PipelineOutput:
        """Classify one whole window outside the stream's hops (e.g. a recording's last), one-shot.

        Its result also goes to the event detector, so call it in time order with the stream's windows.
        """
        samples = to_float(window)
        if samples.size != self.info.window_samples:
            raise ValueError(f"a window has {self.info.window_samples} samples, got {samples.size}")
        level = level_dbfs(samples)
        loud = self._loud(level)
        with one_blas_thread:
            features = self.front_end.features(samples)[None]
            probs = self._decide(features if loud else features[:0], [0] if loud else [], 1)[0]
        result = self._result(start_sample, level, probs, classified=loud)
        return PipelineOutput([result], [*self.detector.process(result.end_s, probs)])

    def _decide(
        self, features: npt.NDArray[np.float32], loud: list[int], count: int
    ) -> npt.NDArray[np.float32]:
        """Probabilities [count, labels] of `count` windows in time order, `features` those of the `loud` ones.

        Without a temporal stage: the network's, and "background, certain" for a quiet window. With one:
        the stage's, fed every window (a quiet one as the network's output for silence), its state carried on.
        Then each taught sound's, from the taught network's embedding of the loud windows (0 for a quiet one).
        """
        if self.temporal is None:
            probabilities = np.tile(self._quiet, (count, 1))
            if loud:
                probabilities[loud] = self.backend.predict(features)
        else:
            inputs = np.tile(self._silence_inputs(), (count, 1))
            if loud:
                inputs[loud] = temporal_inputs(*self.backend.embed(features))
            assert self._state is not None  # reset() made it with the stage
            probabilities, self._state = self.temporal.run(inputs, self._state)
        if not self.taught:
            return probabilities
        taught = np.zeros((count, len(self.taught)), np.float32)
        if loud:
            assert self.taught_network is not None  # __init__ requires it with taught sounds
            embeddings = taught_embeddings(self.taught_network, features)
            for column, sound in enumerate(self.taught.values()):
                taught[loud, column] = sound.probabilities(embeddings)
        return np.hstack([probabilities, taught])

    def _silence_inputs(self) -> npt.NDArray[np.float32]:
        """The temporal stage's input for a window below the level floor: the network's view of silence."""
        if self._quiet_inputs is None:
            silence = self.front_end.features(np.zeros(self.info.window_samples, np.float32))[None]
            self._quiet_inputs = temporal_inputs(*self.backend.embed(silence))
        return self._quiet_inputs

    def _loud(self, level: float) -> bool:
        return self.min_level_dbfs is None or level >= self.min_level_dbfs

    def _window_samples(self, start_sample: int) -> npt.NDArray[np.float32]:
        offset = start_sample - self._samples_start
        return self._samples[offset : offset + self.info.window_samples]

    def _result(
        self, start_sample: int, level: float, probs: npt.NDArray[np.float32], *, classified: bool
    ) -> WindowResult:
        rate = self.info.sample_rate_hz
        return WindowResult(
            start_s=start_sample / rate,
            end_s=(start_sample + self.info.window_samples) / rate,
            probabilities={label: float(p) for label, p in zip(self.labels, probs, strict=True)},
            dbfs=level,
            classified=classified,
        )

    def _trim(self) -> None:
        """Drop the frames and samples before the next window's start; copy, so a huge chunk is freed."""
        first_frame = self._next_window_end - self.window_frames
        drop = min(max(0, first_frame - self._frames_start), len(self._frames))
        self._frames = self._frames[drop:].copy()
        self._frames_start += drop
        drop = min(max(0, first_frame * self._shift - self._samples_start), len(self._samples))
        self._samples = self._samples[drop:].copy()
        self._samples_start += drop
