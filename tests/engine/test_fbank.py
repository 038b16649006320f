"""FbankExtractor against kaldi-native-fbank on real clips of the data set."""

from __future__ import annotations

import csv
from pathlib import Path

import kaldi_native_fbank as knf
import numpy as np
import numpy.typing as npt
import pytest

from custom_components.sound_sentry.engine.fbank import FbankExtractor, FbankSettings, normalise
from tests.audio import read_clip


def clips(data_dir: Path, per_label: int) -> list[Path]:
    rows = list(csv.DictReader((data_dir / "manifest.csv").open()))
    chosen: list[Path] = []
    for label in ("background", "babycry", "glassbreak", "gunshot"):
        matching = [row for row in rows if row["label"] == label and row["split"] == "test"]
        chosen += [
            data_dir / row["path"] for row in matching[:: max(1, len(matching) // per_label)][:per_label]
        ]
    return chosen


def kaldi_fbank(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = 8000
    opts.frame_opts.dither = 0.0
    opts.frame_opts.window_type = "povey"
    opts.frame_opts.snip_edges = True
    opts.mel_opts.num_bins = 24
    opts.mel_opts.low_freq = 20.0
    fbank = knf.OnlineFbank(opts)
    fbank.accept_waveform(8000, samples.tolist())
    fbank.input_finished()
    return np.stack([fbank.get_frame(i) for i in range(fbank.num_frames_ready)]).astype(np.float32)


def test_matches_kaldi_on_real_clips(data_dir: Path) -> None:
    extractor = FbankExtractor()
    paths = clips(data_dir, per_label=5)
    assert len(paths) == 20
    worst = 0.0
    for path in paths:
        samples = read_clip(path)
        ours, reference = extractor.compute(samples), kaldi_fbank(samples)
        assert ours.shape == reference.shape == (extractor.num_frames(samples.size), 24)
        worst = max(worst, float(np.abs(ours - reference).max()))
    assert worst <= 1e-3, worst


def test_streaming_equals_one_shot(data_dir: Path) -> None:
    samples = read_clip(clips(data_dir, per_label=1)[1])
    extractor = FbankExtractor()
    one_shot = extractor.compute(samples)
    rng = np.random.default_rng(7)
    pieces, start = [], 0
    while start < samples.size:
        size = int(rng.integers(1, 2500))
        pieces.append(extractor.process_streaming(samples[start : start + size]))
        start += size
    np.testing.assert_allclose(np.concatenate(pieces), one_shot, atol=1e-5)
    extractor.reset()
    np.testing.assert_allclose(
        extractor.process_streaming(samples[:1000]), one_shot[: extractor.num_frames(1000)], atol=1e-5
    )


@pytest.mark.parametrize(
    ("samples", "frames"), [(0, 0), (199, 0), (200, 1), (279, 1), (280, 2), (15480, 192)]
)
def test_snip_edges_frame_count(samples: int, frames: int) -> None:
    extractor = FbankExtractor()
    assert extractor.num_frames(samples) == frames
    assert extractor.compute(np.zeros(samples, dtype=np.float32)).shape == (frames, 24)


def test_silence_is_log_eps() -> None:
    features = FbankExtractor().compute(np.zeros(15480, dtype=np.float32))
    np.testing.assert_allclose(features, np.log(np.finfo(np.float32).eps), rtol=1e-6)


def test_window_is_192_by_24_and_normalised(data_dir: Path) -> None:
    samples = read_clip(clips(data_dir, per_label=1)[0])[:15480]
    features = normalise(FbankExtractor(FbankSettings()).compute(samples))
    assert features.shape == (192, 24)
    np.testing.assert_allclose(features.mean(axis=0), 0.0, atol=1e-4)
