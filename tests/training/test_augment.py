"""The feature-domain sampler: real slices of the cached frames, the batch shares it promises, hard
negatives at their share, teacher-softened targets (torch: runs in the training environment)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from training.audio import LABELS, held_out, read_manifest
from training.augment import AugmentSettings, FrameSampler
from training.frames import VARIANTS, ClipFrames
from training.train import soft_targets


def _sampler(settings: AugmentSettings | None = None, teacher: dict | None = None) -> FrameSampler:
    """Two background clips (loud white-ish, quiet) and one clip per event class, 400 frames each."""
    template = read_manifest()[0]
    rng = np.random.default_rng(0)
    clips, frames = [], []
    for index, label in enumerate(["background", "background", *LABELS[1:]]):
        clips.append(replace(template, label=label, source=f"synthetic{index}", original=f"clip{index}"))
        level = 0.0 if index == 0 else -12.0
        frames.append((rng.standard_normal((400, 24)) * 0.3 + level + index * 0.01).astype(np.float16))
    offsets = np.arange(0, 401 * len(frames), 400)[: len(frames) + 1]
    stored = ClipFrames(np.concatenate(frames), offsets.astype(np.int64))
    return FrameSampler(clips, [stored] * len(VARIANTS), seed=1, settings=settings, teacher=teacher)


def test_a_batch_is_normalised_windows_with_the_promised_background_share() -> None:
    sampler = _sampler(AugmentSettings(background_share=0.7, spec_time_masks=0, spec_mel_masks=0))
    x, y, teacher = sampler.batch(2000)
    assert x.shape == (2000, 192, 24)
    assert torch.isfinite(x).all()
    assert abs(float(x.mean(dim=1).abs().max())) < 1e-3  # mean-normalised per mel bin
    assert 0.66 < float((y == 0).float().mean()) < 0.74
    assert torch.isnan(teacher).all()  # no teacher given


def test_event_windows_contain_their_event() -> None:
    sampler = _sampler()
    for clip in (2, 3, 4):
        for _ in range(50):
            start = sampler._event_start(clip)
            window = sampler._slice(clip, start, 0)
            assert (window > -20).any(axis=1).sum() >= 1  # at least one frame of the clip itself


def test_hard_negatives_are_drawn_at_their_share() -> None:
    sampler = _sampler()
    sampler.hard_negatives = [(0, 100)]  # the loud clip
    sampler.hard_share = 1.0
    assert all(sampler.background_window(0)[1] == 0 for _ in range(50))
    sampler.hard_share = 0.0
    assert {sampler.background_window(0)[1] for _ in range(100)} == {0, 1}


def test_teacher_scores_soften_event_targets() -> None:
    template = read_manifest()[0]
    sampler = _sampler(teacher={str(template.path): {"babycry": [0.1, 0.4, 0.2]}})
    labels = torch.tensor([0, 1, 1, 3])
    scores = torch.tensor([float("nan"), 0.25, float("nan"), 1.0])
    targets = soft_targets(labels, scores, 0.5)
    assert targets.tolist()[0] == [1.0, 0.0, 0.0, 0.0]
    assert targets.tolist()[1] == pytest.approx([0.375, 0.625, 0.0, 0.0])
    assert targets.tolist()[2] == [0.0, 1.0, 0.0, 0.0]  # no score: the label alone
    assert torch.allclose(targets.sum(dim=1), torch.ones(4))
    assert sampler.teacher[2] is not None  # the babycry clip shares the template's path


def test_hold_out_units() -> None:
    clip = replace(
        read_manifest()[0], label="gunshot", source="kaggle_gunshot", group="kaggle_gunshot:MG-42+x"
    )
    assert held_out(clip, ("kaggle_gunshot",))
    assert held_out(clip, ("gunshot:kaggle_gunshot",))
    assert held_out(clip, ("gunshot:kaggle_gunshot:kaggle_gunshot:MG-42",))
    assert not held_out(clip, ("gunshot:kaggle_gunshot:kaggle_gunshot:M16",))
    assert not held_out(clip, ("glassbreak:kaggle_gunshot",))
