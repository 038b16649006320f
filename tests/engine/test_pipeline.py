"""Streaming pipeline: windows of a stream fed in any chunks equal one-shot classification of each window."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.backends import ModelBackend, load_backend
from custom_components.sound_sentry.engine.detector import DetectorSettings, EventDetector
from custom_components.sound_sentry.engine.events import SoundEvent
from custom_components.sound_sentry.engine.fbank import FbankExtractor, FbankSettings, normalise
from custom_components.sound_sentry.engine.level import SILENCE_DBFS, level_dbfs
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline, WindowResult, to_float
from tests.audio import scene

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / "tests" / "fixtures" / "resnetse_random.onnx"
RATE = 8000
WINDOW = 15_480
PROB_ATOL = 1e-5


def backend_names() -> list[str]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return ["numpy"]
    return ["numpy", "onnxruntime"]


@pytest.fixture(scope="module")
def info() -> ModelInfo:
    return ModelInfo.load(MODEL)


@pytest.fixture(scope="module", params=backend_names())
def backend(request: pytest.FixtureRequest) -> ModelBackend:
    return load_backend(MODEL, request.param)


@pytest.fixture(scope="module")
def numpy_backend() -> ModelBackend:
    return load_backend(MODEL, "numpy")


@pytest.fixture(scope="module")
def audio(data_dir: Path) -> npt.NDArray[np.float32]:
    """About 12 s of real audio: a quiet room with a baby crying in it."""
    return scene(data_dir, "babycry", lead_s=3.0, tail_s=4.0)


def random_chunks(samples: npt.NDArray[np.float32], seed: int) -> Iterator[npt.NDArray[np.float32]]:
    """Chunks of random sizes, from 1 sample to more than a window."""
    rng = np.random.default_rng(seed)
    position = 0
    while position < samples.size:
        size = int(rng.choice([1, 79, 80, 81, 160, 1999, 2000, 2001, 4096, 20_000]))
        yield samples[position : position + size]
        position += size


def stream(
    pipeline: Pipeline, chunks: Iterator[npt.ArrayLike]
) -> tuple[list[WindowResult], list[SoundEvent]]:
    windows: list[WindowResult] = []
    events: list[SoundEvent] = []
    for chunk in chunks:
        output = pipeline.process(chunk)
        windows += output.windows
        events += output.events
    return windows, events


def one_shot(
    backend: ModelBackend, info: ModelInfo, samples: npt.NDArray[np.float32], hop_frames: int
) -> list[tuple[int, npt.NDArray[np.float32]]]:
    """(start sample, probabilities) of each window, each classified on its own from its own samples."""
    assert isinstance(info.front_end, FbankSettings)
    extractor = FbankExtractor(info.front_end)
    hop = hop_frames * info.front_end.frame_shift
    results = []
    for start in range(0, samples.size - WINDOW + 1, hop):
        features = normalise(extractor.compute(samples[start : start + WINDOW]))
        results.append((start, backend.predict(features[None])[0]))
    return results


def rms_dbfs(samples: npt.NDArray[np.float32]) -> float:
    return float(10 * np.log10(np.mean(samples.astype(np.float64) ** 2)))


# Streaming equals one-shot.


@pytest.mark.parametrize(("hop_s", "seed"), [(0.25, 0), (0.25, 1), (0.1, 2), (1.0, 3), (3.0, 4)])
def test_stream_in_random_chunks_equals_one_shot_windows(
    backend: ModelBackend,
    info: ModelInfo,
    audio: npt.NDArray[np.float32],
    hop_s: float,
    seed: int,
) -> None:
    pipeline = Pipeline(backend, info, hop_s=hop_s)
    windows, _ = stream(pipeline, random_chunks(audio, seed))
    expected = one_shot(backend, info, audio, pipeline.hop_frames)

    assert len(windows) == len(expected) > 2
    for window, (start, probs) in zip(windows, expected, strict=True):
        assert window.start_s == start / RATE
        assert window.end_s == (start + WINDOW) / RATE
        assert list(window.probabilities) == list(info.labels)
        np.testing.assert_allclose(list(window.probabilities.values()), probs, rtol=0, atol=PROB_ATOL)
        assert window.dbfs == pytest.approx(rms_dbfs(audio[start : start + WINDOW]), abs=1e-9)


def test_int16_pcm_is_scaled_like_float(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    pcm = (audio * 32768).round().clip(-32768, 32767).astype(np.int16)
    from_int, _ = stream(Pipeline(numpy_backend, info), iter([pcm]))
    from_float, _ = stream(Pipeline(numpy_backend, info), iter([pcm.astype(np.float32) / 32768]))
    assert from_int == from_float


def test_process_window_equals_one_shot(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    pipeline = Pipeline(numpy_backend, info)
    output = pipeline.process_window(audio[1234 : 1234 + WINDOW], start_sample=1234)
    (window,) = output.windows
    expected = numpy_backend.predict(normalise(FbankExtractor().compute(audio[1234 : 1234 + WINDOW]))[None])[
        0
    ]
    np.testing.assert_allclose(list(window.probabilities.values()), expected, atol=PROB_ATOL)
    assert (window.start_s, window.end_s) == (1234 / RATE, (1234 + WINDOW) / RATE)
    with pytest.raises(ValueError, match="15480 samples"):
        pipeline.process_window(audio[: WINDOW - 1], start_sample=0)


# Hops and window times.


@pytest.mark.parametrize(
    ("hop_s", "frames"),
    [
        (0.25, 25),
        (0.1, 10),
        (0.5, 50),
        (0.013, 1),
        (0.016, 2),
        (0.001, 1),
        (0.254, 25),
        (0.256, 26),
        (3.0, 300),
    ],
)
def test_hop_is_rounded_to_whole_frames(
    numpy_backend: ModelBackend, info: ModelInfo, hop_s: float, frames: int
) -> None:
    pipeline = Pipeline(numpy_backend, info, hop_s=hop_s)
    assert pipeline.hop_frames == frames
    assert pipeline.hop_s == pytest.approx(frames * 0.01)


def test_default_hop_is_a_quarter_second(numpy_backend: ModelBackend, info: ModelInfo) -> None:
    pipeline = Pipeline(numpy_backend, info)
    assert (pipeline.hop_frames, pipeline.hop_s, pipeline.window_frames) == (25, 0.25, 192)


@pytest.mark.parametrize("hop_s", [0.0, -0.25, float("nan"), float("inf")])
def test_nonsense_hop_is_rejected(numpy_backend: ModelBackend, info: ModelInfo, hop_s: float) -> None:
    with pytest.raises(ValueError, match="hop_s"):
        Pipeline(numpy_backend, info, hop_s=hop_s)


def test_windows_complete_exactly_when_their_last_sample_arrives(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    pipeline = Pipeline(numpy_backend, info)
    assert pipeline.process(audio[: WINDOW - 1]).windows == []
    (first,) = pipeline.process(audio[WINDOW - 1 : WINDOW]).windows
    assert (first.start_s, first.end_s) == (0.0, 1.935)
    assert pipeline.process(audio[WINDOW : WINDOW + 1999]).windows == []
    (second,) = pipeline.process(audio[WINDOW + 1999 : WINDOW + 2000]).windows
    assert (second.start_s, second.end_s) == (0.25, 2.185)
    # 1 s more completes four windows at once, 0.25 s apart.
    more = pipeline.process(audio[WINDOW + 2000 : WINDOW + 10_000]).windows
    assert [w.start_s for w in more] == [0.5, 0.75, 1.0, 1.25]
    assert [w.end_s for w in more] == [2.435, 2.685, 2.935, 3.185]


def test_empty_chunks_change_nothing(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    pipeline = Pipeline(numpy_backend, info)
    chunks = [audio[:5000], audio[:0], audio[5000 : WINDOW + 2000], np.zeros(0, np.int16)]
    windows, _ = stream(pipeline, iter(chunks))
    assert [w.start_s for w in windows] == [0.0, 0.25]


# Sound level.


def sine(amplitude: float, seconds: float = 2.0, freq_hz: float = 1000.0) -> npt.NDArray[np.float32]:
    t = np.arange(round(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


@pytest.mark.parametrize(
    ("signal", "dbfs"),
    [
        (sine(1.0), -3.0103),
        (sine(0.1), -23.0103),
        (np.sign(sine(1.0, freq_hz=500.0) + 1e-9).astype(np.float32), 0.0),  # full-scale square
        (np.full(WINDOW + 100, 0.5, dtype=np.float32), -6.0206),  # DC counts: it is a level, not a spectrum
        (np.zeros(WINDOW + 100, dtype=np.float32), SILENCE_DBFS),
        (np.full(WINDOW + 100, 1e-9, dtype=np.float32), SILENCE_DBFS),  # -180 dB: floored
    ],
)
def test_window_level_of_known_signals(
    numpy_backend: ModelBackend, info: ModelInfo, signal: npt.NDArray[np.float32], dbfs: float
) -> None:
    (window,) = Pipeline(numpy_backend, info).process(signal[:WINDOW]).windows
    assert window.dbfs == pytest.approx(dbfs, abs=2e-3)
    assert level_dbfs(signal) == pytest.approx(dbfs, abs=2e-3)


def test_full_scale_int16_sine(numpy_backend: ModelBackend, info: ModelInfo) -> None:
    pcm = (sine(1.0) * 32767).round().astype(np.int16)
    (window,) = Pipeline(numpy_backend, info).process(pcm[:WINDOW]).windows
    assert window.dbfs == pytest.approx(-3.0103, abs=2e-3)


def test_silence_still_gets_probabilities(numpy_backend: ModelBackend, info: ModelInfo) -> None:
    (window,) = Pipeline(numpy_backend, info).process(np.zeros(WINDOW, np.int16)).windows
    assert window.dbfs == SILENCE_DBFS
    assert sum(window.probabilities.values()) == pytest.approx(1.0, abs=1e-5)


def test_pcm_of_other_types_is_refused() -> None:
    with pytest.raises(TypeError, match="int32"):
        to_float(np.zeros(10, dtype=np.int32))
    np.testing.assert_array_equal(to_float(np.array([-32768, 0, 16384], np.int16)), [-1.0, 0.0, 0.5])


# Events.


def median_thresholds(windows: list[WindowResult], info: ModelInfo) -> dict[str, float]:
    """Thresholds that some windows pass and others do not, whatever the (random) model says."""
    return {label: float(np.median([w.probabilities[label] for w in windows])) for label in info.thresholds}


def test_events_are_the_detector_run_over_the_windows_in_order(
    backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    probe, _ = stream(Pipeline(backend, info), iter([audio]))
    settings = DetectorSettings(thresholds=median_thresholds(probe, info), k=2, n=3, hold_s=0.5)
    windows, events = stream(Pipeline(backend, info, detector=settings), random_chunks(audio, 7))

    detector = EventDetector(list(info.labels), settings)
    expected = [
        event
        for window in windows
        for event in detector.process(window.end_s, list(window.probabilities.values()))
    ]
    assert events == expected
    assert {e.active for e in events} == {True, False}  # starts and ends both happened
    assert [e.time_s for e in events] == sorted(e.time_s for e in events)
    assert {e.time_s for e in events} <= {w.end_s for w in windows}


def test_events_start_after_k_windows(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    settings = DetectorSettings(thresholds=dict.fromkeys(info.thresholds, 1e-6), k=3, n=3, hold_s=1.0)
    windows, events = stream(Pipeline(numpy_backend, info, detector=settings), iter([audio]))
    # Every window passes: each class starts at the end of the third window and never ends.
    assert [(e.label, e.active, e.time_s) for e in events] == [
        (label, True, 2.435) for label in info.thresholds
    ]
    for event in events:
        assert event.peak_probability == max(w.probabilities[event.label] for w in windows[:3])


def test_reset_starts_a_new_stream(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    settings = DetectorSettings(thresholds=dict.fromkeys(info.thresholds, 1e-6), k=1, n=1, hold_s=1.0)
    pipeline = Pipeline(numpy_backend, info, detector=settings)
    _, first_events = stream(pipeline, random_chunks(audio[:30_000], 8))
    assert first_events
    assert all(e.active for e in first_events)
    pipeline.process(audio[30_000:30_123])  # leaves half a frame behind

    pipeline.reset()
    second = audio[50_000:]
    windows, events = stream(pipeline, random_chunks(second, 9))
    fresh_windows, fresh_events = stream(Pipeline(numpy_backend, info, detector=settings), iter([second]))
    assert windows[0].start_s == 0.0
    assert [w.start_s for w in windows] == [w.start_s for w in fresh_windows]
    for got, want in zip(windows, fresh_windows, strict=True):
        np.testing.assert_allclose(
            list(got.probabilities.values()), list(want.probabilities.values()), atol=PROB_ATOL
        )
        assert got.dbfs == pytest.approx(want.dbfs, abs=1e-9)
    # Events started again (no "ended" for the old stream's events, which reset forgot).
    assert [(e.label, e.active, e.time_s) for e in events] == [
        (e.label, e.active, e.time_s) for e in fresh_events
    ]


# Memory and batching.


@pytest.mark.parametrize("hop_s", [0.25, 3.0])
def test_buffers_stay_bounded_over_a_long_stream(
    backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32], hop_s: float
) -> None:
    pipeline = Pipeline(backend, info, hop_s=hop_s)
    chunk = 1600  # 0.2 s
    long_stream = np.tile(audio, 8)  # about 100 s
    long_stream = long_stream[: long_stream.size // chunk * chunk]  # whole chunks: the same phases repeat
    sizes: list[tuple[int, int]] = []
    windows = 0
    for start in range(0, long_stream.size, chunk):
        windows += len(pipeline.process(long_stream[start : start + chunk]).windows)
        sizes.append((len(pipeline._frames), pipeline._samples.size + pipeline._pending_size))
    hop = round(hop_s * RATE)
    assert windows >= (long_stream.size - WINDOW) // hop
    assert max(f for f, _ in sizes) <= pipeline.window_frames + chunk // 80
    assert max(s for _, s in sizes) <= max(WINDOW, hop) + chunk
    # Not growing: once the first window is out, the end of the stream needs no more than its start.
    quarter = len(sizes) // 4
    assert max(sizes[3 * quarter :]) <= max(sizes[quarter : 2 * quarter])


@dataclass
class RecordingBackend:
    """A real backend that also records the batch size of every predict() call."""

    inner: ModelBackend
    name: str = "recording"
    batches: list[int] = field(default_factory=list)

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.batches.append(len(features))
        return self.inner.predict(features)


def test_one_predict_call_per_chunk_with_all_its_windows(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    recorder = RecordingBackend(numpy_backend)
    pipeline = Pipeline(recorder, info)
    completed = []
    for chunk in random_chunks(audio, 11):
        calls = len(recorder.batches)
        windows = pipeline.process(chunk).windows
        if windows:
            assert recorder.batches[calls:] == [len(windows)]
            completed.append(len(windows))
        else:
            assert len(recorder.batches) == calls
    assert max(completed) > 1  # some chunk completed several windows, in one batch


def test_long_chunks_are_classified_in_bounded_batches(
    numpy_backend: ModelBackend, info: ModelInfo, audio: npt.NDArray[np.float32]
) -> None:
    recorder = RecordingBackend(numpy_backend)
    batched = Pipeline(recorder, info, max_batch=4)
    windows = batched.process(audio).windows
    expected_windows = (audio.size - WINDOW) // 2000 + 1
    assert len(windows) == expected_windows
    assert recorder.batches == [4] * (expected_windows // 4) + (
        [expected_windows % 4] if expected_windows % 4 else []
    )
    unbatched = Pipeline(numpy_backend, info).process(audio).windows
    for got, want in zip(windows, unbatched, strict=True):
        assert got.start_s == want.start_s
        np.testing.assert_allclose(
            list(got.probabilities.values()), list(want.probabilities.values()), atol=PROB_ATOL
        )


# The level floor: quiet windows are not classified.


@dataclass
class CountingBackend:
    """Says "babycry, certainly" for every window it is asked about, and counts them."""

    name: str = "counting"
    windows: int = 0

    def predict(self, features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        self.windows += len(features)
        return np.tile(np.array([0.0, 1.0, 0.0, 0.0], np.float32), (len(features), 1))


def noise_at(dbfs: float, seconds: float, seed: int = 0) -> npt.NDArray[np.float32]:
    """White noise of this RMS level (dBFS)."""
    noise = np.random.default_rng(seed).standard_normal(round(seconds * RATE))
    return (noise / np.sqrt(np.mean(noise**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def test_quiet_windows_are_not_classified_and_start_no_event(info: ModelInfo) -> None:
    backend = CountingBackend()
    pipeline = Pipeline(backend, info, detector=DetectorSettings(thresholds={"babycry": 0.5}, k=1, n=1))
    assert pipeline.min_level_dbfs == -60.0  # on by default
    out = pipeline.process(noise_at(-63.0, 10.0))
    assert len(out.windows) > 30
    assert backend.windows == 0
    assert out.events == []
    assert all(not w.classified and w.probabilities["background"] == 1.0 for w in out.windows)
    assert all(w.dbfs == pytest.approx(-63.0, abs=0.2) for w in out.windows)
    # The room gets louder: the model runs and the event starts, with the quiet windows before it.
    loud = pipeline.process(noise_at(-50.0, 3.0, seed=1))
    assert backend.windows == sum(w.classified for w in loud.windows) > 0
    assert [e.label for e in loud.events] == ["babycry"]
    assert all(w.classified == (w.dbfs >= -60.0) for w in loud.windows)


def test_process_window_obeys_the_floor(info: ModelInfo) -> None:
    backend = CountingBackend()
    pipeline = Pipeline(backend, info)
    quiet = pipeline.process_window(noise_at(-70.0, WINDOW / RATE), start_sample=0).windows[0]
    assert not quiet.classified
    assert backend.windows == 0
    loud = pipeline.process_window(noise_at(-40.0, WINDOW / RATE), start_sample=WINDOW).windows[0]
    assert loud.classified
    assert loud.probabilities["babycry"] == 1.0


def test_no_floor_classifies_every_window(info: ModelInfo) -> None:
    backend = CountingBackend()
    out = Pipeline(backend, info, min_level_dbfs=None).process(np.zeros(3 * WINDOW, np.float32))
    assert backend.windows == len(out.windows) > 0
    assert all(w.classified for w in out.windows)
