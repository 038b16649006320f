"""A live source classified: the source thread feeding a pipeline, for Home Assistant and the CLI alike."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from .clips import ClipRecorder
    from .pipeline import Pipeline
    from .sources import AudioChunk, AudioSource, Backoff, SourceError

from .pipeline import PipelineOutput
from .sources import SourceRunner


class Listener:
    """Read a live source in its own thread (`SourceRunner`) and classify it (`Pipeline`).

    The pipeline starts afresh at every status change: a new connection is a new stream. `on_output`
    gets the output of every chunk, `on_status(connected, error)` every change of the connection; both
    run in the source thread and never after `stop()` returned. A `recorder` gets every chunk with its
    events, before `on_output`, and names each starting event's clip (its `clip_key`); it is reset with
    the pipeline and flushed when the listener stops.
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
        self.runner = SourceRunner(
            name, source_factory, on_audio=self._audio, on_status=self._status, backoff=backoff
        )

    def _audio(self, chunk: AudioChunk) -> None:
        output = self.pipeline.process(chunk)
        if self.recorder is not None:
            output = PipelineOutput(output.windows, self.recorder.process(chunk, output.events))
        self._on_output(output)

    def _status(self, connected: bool, error: SourceError | None) -> None:
        self.pipeline.reset()
        if self.recorder is not None:
            self.recorder.reset()  # an unfinished clip is handed over with what it has
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
