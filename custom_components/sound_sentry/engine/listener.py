"""A live source classified: the source thread feeding a pipeline, for every front end (`SourceMonitor`, the CLI)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .alarm import AlarmSettings
    from .clips import Clip
    from .detector import DetectorSettings
    from .events import DetectionEvent
    from .model import LoadedModel
    from .sources import AudioChunk, AudioSource, Backoff, SourceError
    from .taught import TaughtSound

from .clips import ClipRecorder
from .pipeline import Pipeline, PipelineOutput
from .sources import SourceRunner


@dataclass(frozen=True, kw_only=True)
class ListenerObserver:
    """Watches a `Listener` without changing what it does (e.g. a benchmark stamping arrivals).

    Each callback runs in the source thread, before the listener's own: keep it quick, and copy a chunk
    to keep it beyond the call.
    """

    on_audio: Callable[[AudioChunk], None] | None = None
    """Each chunk of 8 kHz mono int16 PCM as it arrives, before the pipeline sees it."""
    on_output: Callable[[PipelineOutput], None] | None = None
    """What each chunk produced (windows and events, starts with their `clip_key`)."""
    on_status: Callable[[bool, SourceError | None], None] | None = None
    """Every change of the connection: (connected, the error that ended it or kept it from starting)."""


class Listener:
    """Read a live source in its own thread (`SourceRunner`) and classify it (`Pipeline`).

    The pipeline starts afresh at every status change: a new connection is a new stream. `on_output`
    gets the output of every chunk, `on_status(connected, error)` every change of the connection; both
    run in the source thread and never after `stop()` returned. A `recorder` gets every chunk with its
    events, before `on_output`, and names each starting event's clip (its `clip_key`); it is reset with
    the pipeline and flushed when the listener stops. Observers (`add_observer`) see the same, and the
    audio itself, without taking part.
    """

    def __init__(
        self,
        name: str,
        source_factory: Callable[[], AudioSource],
        pipeline: Pipeline,
        *,
        on_output: Callable[[PipelineOutput], None],
        on_status: Callable[[bool, SourceError | None], None],
        backoff: Backoff | None = None,
        recorder: ClipRecorder | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.recorder = recorder
        self._on_output = on_output
        self._on_status = on_status
        self._observers: tuple[ListenerObserver, ...] = ()
        self._observers_lock = threading.Lock()
        self.runner = SourceRunner(
            name, source_factory, on_audio=self._audio, on_status=self._status, backoff=backoff
        )

    @classmethod
    def for_model(
        cls,
        name: str,
        source_factory: Callable[[], AudioSource],
        model: LoadedModel,
        *,
        detector: DetectorSettings,
        alarms: AlarmSettings | None,
        on_output: Callable[[PipelineOutput], None],
        on_status: Callable[[bool, SourceError | None], None],
        clips: tuple[Callable[[DetectionEvent], str], Callable[[Clip], None]] | None = None,
        backoff: Backoff | None = None,
        taught: Mapping[str, TaughtSound] | None = None,
    ) -> Listener:
        """A source classified by `model` with these settings: how every front end builds one.

        With `clips` = (key_for, on_clip), a `ClipRecorder` cuts the audio of each event (see there);
        `backoff` paces reconnects (`SourceRunner`'s default if None); `taught` sounds are heard too
        (`Pipeline`), at the thresholds `detector` gives their labels.
        """
        info = model.info
        recorder = None
        if clips is not None:
            key_for, on_clip = clips
            recorder = ClipRecorder(
                info.sample_rate_hz,
                info.window_samples / info.sample_rate_hz,
                key_for=key_for,
                on_clip=on_clip,
            )
        return cls(
            name,
            source_factory,
            Pipeline.for_model(model, detector=detector, alarms=alarms, taught=taught),
            on_output=on_output,
            on_status=on_status,
            backoff=backoff,
            recorder=recorder,
        )

    def add_observer(self, observer: ListenerObserver) -> Callable[[], None]:
        """Let `observer` watch from now on (from any thread, also while the listener runs).

        Returns the function that removes it; after that returned, only the chunk being processed (if
        any) may still reach it.
        """
        with self._observers_lock:
            self._observers = (*self._observers, observer)

        def remove() -> None:
            with self._observers_lock:
                self._observers = tuple(o for o in self._observers if o is not observer)

        return remove

    def _audio(self, chunk: AudioChunk) -> None:
        observers = self._observers  # one snapshot per chunk: the source thread never takes the lock
        for observer in observers:
            if observer.on_audio is not None:
                observer.on_audio(chunk)
        output = self.pipeline.process(chunk)
        if self.recorder is not None:
            output = PipelineOutput(output.windows, self.recorder.process(chunk, output.events))
        for observer in observers:
            if observer.on_output is not None:
                observer.on_output(output)
        self._on_output(output)

    def _status(self, connected: bool, error: SourceError | None) -> None:
        self.pipeline.reset()
        if self.recorder is not None:
            self.recorder.reset()  # an unfinished clip is handed over with what it has
        for observer in self._observers:
            if observer.on_status is not None:
                observer.on_status(connected, error)
        self._on_status(connected, error)

    def start(self) -> None:
        """Start the source thread; it connects, and reconnects, by itself."""
        self.runner.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop the source thread and join it; then hand over the recorder's unfinished clips."""
        self.runner.stop(timeout)
        if self.recorder is not None and not self.runner.is_alive():
            self.recorder.flush()

    def is_alive(self) -> bool:
        """Whether the source thread still runs."""
        return self.runner.is_alive()
