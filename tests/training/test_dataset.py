"""Training data choices and hard-negative sampling (NumPy only: runs in the Home Assistant environments)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from training.audio import LABELS, WINDOW_SAMPLES, is_open, read_clips, read_manifest
from training.dataset import LoadedClip, WindowSampler


@pytest.mark.parametrize(
    ("licence", "expected"),
    [
        ("CC-BY-NC-3.0", False),
        ("none-stated", False),
        ("", False),
        ("CC-BY-SA-3.0 AND GPL-2.0-only", True),
        ("ODbL-1.0/DbCL-1.0", True),
        ("MIT", True),
        ("CC-BY-4.0", True),
    ],
)
def test_open_licences(licence: str, expected: bool) -> None:
    assert is_open(licence) is expected


def test_shared_data_is_the_manifest(data_dir: object) -> None:
    assert read_clips("shared") == read_manifest()


def test_missing_built_set_says_how_to_build_it(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SOUND_SENTRY_CACHE", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"python -m training\.data\.build"):
        read_clips("all")


def _sampler() -> WindowSampler:
    """Two synthetic background clips (a loud one and a quiet one) and one clip per event class."""
    rng = np.random.default_rng(0)
    template = read_manifest()[0]
    clips = []
    for index, label in enumerate(["background", "background", *LABELS[1:]]):
        level = 0.5 if index == 0 else 0.001
        samples = (rng.standard_normal(3 * WINDOW_SAMPLES) * level).astype(np.float32)
        clip = replace(template, label=label, source="synthetic", original=f"clip{index}")
        clips.append(LoadedClip(clip, samples, np.zeros(1, dtype=np.int64)))
    return WindowSampler(clips, seed=1, augment=False)


def test_hard_negatives_are_drawn_at_the_configured_share() -> None:
    sampler = _sampler()
    refs, feats = sampler.mining_candidates(20)
    assert feats.shape == (20, 192, 24)
    assert all(0 <= start <= 2 * WINDOW_SAMPLES for _clip, start in refs)
    # Only the loud clip is a hard negative: with share 1 every background window comes from it.
    sampler.hard_negatives = [(0, WINDOW_SAMPLES)]
    sampler.hard_share = 1.0
    levels = [np.sqrt(np.mean(sampler.waveform(0) ** 2)) for _ in range(20)]
    assert min(levels) > 0.3
    sampler.hard_share = 0.0
    levels = [np.sqrt(np.mean(sampler.waveform(0) ** 2)) for _ in range(40)]
    assert min(levels) < 0.01  # the quiet clip is drawn again
