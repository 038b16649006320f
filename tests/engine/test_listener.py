"""The listener's public observer hook: what benchmarks and tools watch a live source through."""

from __future__ import annotations

from pathlib import Path
import threading

import numpy as np
import numpy.typing as npt

from custom_components.sound_sentry.engine.backends import load_backend
from custom_components.sound_sentry.engine.listener import Listener, ListenerObserver
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline, PipelineOutput
from custom_components.sound_sentry.engine.sources import Backoff, FileSource, SourceError
from tests.audio import write_wav

MODEL = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "resnetse_random.onnx"
RATE = 8000


def test_an_observer_sees_every_chunk_output_and_status_and_a_removed_one_nothing(tmp_path: Path) -> None:
    """Through a real source thread: an observer gets each chunk's audio (all of the recording, in
    order), the very outputs and status changes the listener's owner gets; one removed before the
    start gets nothing."""
    time_s = np.arange(3 * RATE) / RATE
    audio = (0.3 * np.sin(2 * np.pi * 440 * time_s)).astype(np.float32)
    path = write_wav(tmp_path / "tone.wav", audio)
    info = ModelInfo.load(MODEL)
    outputs: list[PipelineOutput] = []
    statuses: list[tuple[bool, SourceError | None]] = []
    chunks: list[npt.NDArray[np.int16]] = []
    seen_outputs: list[PipelineOutput] = []
    seen_statuses: list[tuple[bool, SourceError | None]] = []
    removed_calls: list[object] = []
    done = threading.Event()

    def on_status(connected: bool, error: SourceError | None) -> None:
        statuses.append((connected, error))
        if not connected:
            done.set()  # the recording ended: stop after one pass

    listener = Listener(
        "observed",
        lambda: FileSource(str(path)),
        Pipeline(load_backend(MODEL, "numpy"), info),
        on_output=outputs.append,
        on_status=on_status,
        backoff=Backoff(30.0, 30.0),
    )
    remove = listener.add_observer(
        ListenerObserver(
            on_audio=removed_calls.append,
            on_output=removed_calls.append,
            on_status=lambda *change: removed_calls.append(change),
        )
    )
    listener.add_observer(
        ListenerObserver(
            on_audio=lambda chunk: chunks.append(chunk.copy()),
            on_output=seen_outputs.append,
            on_status=lambda connected, error: seen_statuses.append((connected, error)),
        )
    )
    remove()
    listener.start()
    try:
        assert done.wait(30)
    finally:
        listener.stop(10)
    pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
    assert np.array_equal(np.concatenate(chunks), pcm)
    assert len(seen_outputs) == len(outputs) == len(chunks)
    assert all(seen is output for seen, output in zip(seen_outputs, outputs, strict=True))
    assert sum(len(output.windows) for output in outputs) > 0
    assert seen_statuses == statuses
    assert [connected for connected, _ in statuses] == [True, False]
    assert removed_calls == []
