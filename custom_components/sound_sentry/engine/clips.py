"""Clips of detections: each event's audio, from a few seconds before it started to just after it ended."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
import math
from pathlib import Path
from typing import Literal, TypeAlias
import wave

import numpy as np
import numpy.typing as npt

from .events import DetectionEvent, SoundEvent

DEFAULT_PRE_ROLL_S = 5.0
"""Audio kept before the start of the window that started an event (the sound's onset is in that window)."""
DEFAULT_POST_ROLL_S = 1.0
"""Audio kept after the window that ended an event."""
DEFAULT_MAX_CLIP_S = 60.0
"""A clip is closed (and handed over) at this length even if its event goes on."""
RING_SLACK_S = 2.0
"""Ring room beyond pre-roll and window: events come at the end of a window, up to a chunk before its end."""

ClipEnd: TypeAlias = Literal["ended", "capped", "interrupted"]
"""Why a clip was closed: its event ended, it reached the cap, or the stream stopped or reconnected."""


class AudioRing:
    """The last `capacity` samples of a 16-bit PCM stream in one fixed buffer: memory never grows."""

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 sample, not {capacity}")
        self._buffer = np.zeros(capacity, dtype=np.int16)
        self.end = 0
        """Samples written since `reset()`: the absolute index just after the newest sample."""

    @property
    def capacity(self) -> int:
        """How many samples the ring holds."""
        return self._buffer.size

    @property
    def nbytes(self) -> int:
        """The ring's memory, in bytes."""
        return self._buffer.nbytes

    @property
    def start(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.end - self.capacity)

    def reset(self) -> None:
        """Forget everything (a new stream)."""
        self.end = 0

    def write(self, pcm: npt.NDArray[np.int16]) -> None:
        """Append samples; the oldest are overwritten."""
        samples = pcm.reshape(-1)[-self.capacity :]
        at = (self.end + pcm.size - samples.size) % self.capacity
        first = min(samples.size, self.capacity - at)
        self._buffer[at : at + first] = samples[:first]
        self._buffer[: samples.size - first] = samples[first:]
        self.end += pcm.size

    def read(self, start: int) -> npt.NDArray[np.int16]:
        """A copy of the samples from absolute index `start` (or the oldest held, if later) to the newest."""
        start = min(max(start, self.start), self.end)
        indices = np.arange(start, self.end) % self.capacity
        samples: npt.NDArray[np.int16] = self._buffer[indices]
        return samples


@dataclass(frozen=True, slots=True)
class Clip:
    """The audio of one event, ready to be stored."""

    key: str
    """What `key_for` gave the event when it started (e.g. the file name); the event carries it as its
    `clip_key`."""
    label: str
    pcm: npt.NDArray[np.int16]
    sample_rate_hz: int
    detected_at_s: float
    """Offset in the clip of the end of the window that started the event (when it was detected)."""
    peak_probability: float | None
    """Highest probability of the event, as far as the clip saw it (at its end, or at its start if cut);
    None for an alarm's clip (a pattern has no probability)."""
    end: ClipEnd

    @property
    def duration_s(self) -> float:
        """Length of the clip in seconds."""
        return self.pcm.size / self.sample_rate_hz


@dataclass(slots=True)
class _OpenClip:
    key: str
    label: str
    start: int
    """Absolute sample index of the clip's first sample."""
    detected: int
    peak: float | None
    parts: list[npt.NDArray[np.int16]] = field(default_factory=list)
    size: int = 0
    stop: int | None = None
    """Absolute sample index where the clip ends, once its event has ended."""

    def append(self, pcm: npt.NDArray[np.int16]) -> None:
        self.parts.append(pcm)
        self.size += pcm.size


class ClipRecorder:
    """Cuts the clip of every event out of a stream: feed it each chunk with the events it produced.

    An event's clip starts `pre_roll_s` before the start of the window that started it (as far as the
    ring still holds) and ends `post_roll_s` after the window that ended it, or at `max_clip_s`,
    whichever comes first; then `on_clip` gets it. Events of different labels that overlap get a clip
    each (the same audio twice): each event has its own clip to link to. `key_for(event)` is called when
    an event starts and names its clip; `process()` returns the events with that name as their `clip_key`. `reset()` (a new stream) and `flush()` hand over unfinished clips
    with what they hold. Memory is bounded: the ring (`ring_bytes`) plus at most `max_clip_s` of audio per
    open clip, and at most one open clip per label plus those still in their post-roll.

    Not thread-safe: call it from the thread that feeds the pipeline, in stream order.
    """

    def __init__(
        self,
        sample_rate_hz: int,
        window_s: float,
        *,
        key_for: Callable[[DetectionEvent], str],
        on_clip: Callable[[Clip], None],
        pre_roll_s: float = DEFAULT_PRE_ROLL_S,
        post_roll_s: float = DEFAULT_POST_ROLL_S,
        max_clip_s: float = DEFAULT_MAX_CLIP_S,
    ) -> None:
        for name, value in (("pre_roll_s", pre_roll_s), ("post_roll_s", post_roll_s), ("window_s", window_s)):
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a number of seconds >= 0, not {value}")
        if not (math.isfinite(max_clip_s) and max_clip_s > 0):
            raise ValueError(f"max_clip_s must be a positive number of seconds, not {max_clip_s}")
        self.sample_rate_hz = sample_rate_hz
        self.window_s = window_s
        self.pre_roll_s = pre_roll_s
        self.post_roll_s = post_roll_s
        self.max_samples = round(max_clip_s * sample_rate_hz)
        self._key_for = key_for
        self._on_clip = on_clip
        self._ring = AudioRing(round((pre_roll_s + window_s + RING_SLACK_S) * sample_rate_hz))
        self._open: list[_OpenClip] = []

    @property
    def ring_bytes(self) -> int:
        """Memory of the ring of recent audio, in bytes."""
        return self._ring.nbytes

    @property
    def open_clips(self) -> int:
        """Clips being recorded now."""
        return len(self._open)

    def process(self, pcm: npt.NDArray[np.int16], events: Iterable[DetectionEvent]) -> list[DetectionEvent]:
        """Take the next chunk of the stream and the events the pipeline found in it (or up to its end).

        Returns the events, each start with its clip's key as `clip_key`.
        """
        chunk = np.array(pcm, dtype=np.int16).reshape(-1)  # a copy: the caller may reuse its buffer
        self._ring.write(chunk)
        for clip in self._open:
            clip.append(chunk)
        rate = self.sample_rate_hz
        keyed: list[DetectionEvent] = []
        for event in events:
            peak = event.peak_probability if isinstance(event, SoundEvent) else None
            if event.active:
                start = round((event.time_s - self.window_s - self.pre_roll_s) * rate)
                clip = _OpenClip(
                    key=self._key_for(event),
                    label=event.label,
                    start=max(start, self._ring.start),
                    detected=round(event.time_s * rate),
                    peak=peak,
                )
                clip.append(self._ring.read(clip.start))
                self._open.append(clip)
                keyed.append(replace(event, clip_key=clip.key))
            else:
                for clip in self._open:
                    if clip.label == event.label and clip.stop is None:
                        clip.stop = round((event.time_s + self.post_roll_s) * rate)
                        clip.peak = None if clip.peak is None or peak is None else max(clip.peak, peak)
                # None open: its clip reached the cap while the event went on.
                keyed.append(event)
        for clip in list(self._open):
            if clip.stop is not None and clip.start + clip.size >= clip.stop:
                self._finish(clip, clip.stop - clip.start, "ended")
            elif clip.size >= self.max_samples:
                self._finish(clip, self.max_samples, "capped")
        return keyed

    def flush(self) -> None:
        """Hand over every unfinished clip with the audio it has (the stream stops)."""
        for clip in list(self._open):
            end: ClipEnd = "ended" if clip.stop is not None else "interrupted"
            self._finish(clip, min(clip.size, self.max_samples), end)

    def reset(self) -> None:
        """A new stream: flush unfinished clips and forget the recent audio."""
        self.flush()
        self._ring.reset()

    def _finish(self, clip: _OpenClip, samples: int, end: ClipEnd) -> None:
        self._open.remove(clip)
        pcm = np.concatenate(clip.parts)[:samples] if clip.parts else np.zeros(0, dtype=np.int16)
        self._on_clip(
            Clip(
                key=clip.key,
                label=clip.label,
                pcm=pcm,
                sample_rate_hz=self.sample_rate_hz,
                detected_at_s=(clip.detected - clip.start) / self.sample_rate_hz,
                peak_probability=clip.peak,
                end=end,
            )
        )


def write_clip(clip: Clip, path: Path) -> None:
    """Write a clip as a 16-bit mono WAV via a hidden temporary name: `path` is never half-written."""
    write_wav(path, clip.pcm, clip.sample_rate_hz)


def write_wav(path: Path, pcm: npt.NDArray[np.int16], sample_rate_hz: int) -> None:
    """Write int16 mono PCM as a WAV via a hidden temporary name: `path` is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        with wave.open(str(temporary), "wb") as file:
            file.setnchannels(1)
            file.setsampwidth(2)
            file.setframerate(sample_rate_hz)
            file.writeframes(pcm.astype("<i2").tobytes())
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
