"""The compact model's distillation: the loss, the teacher's view of real audio, and one tiny run end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from custom_components.sound_sentry.engine.fbank import FbankExtractor  # noqa: E402
from custom_components.sound_sentry.engine.model import load_model, model_path  # noqa: E402
from training import distill  # noqa: E402
from training.audio import LABELS, WINDOW_SAMPLES, load_audio, read_clips  # noqa: E402
from training.finetune import WINDOW  # noqa: E402


def test_loss_is_cross_entropy_at_lambda_one_and_pulls_towards_the_teacher() -> None:
    logits = torch.tensor([[2.0, 0.5, -1.0, 0.0], [0.0, 0.0, 3.0, -2.0]])
    labels = torch.tensor([0, 2])
    teacher = torch.log_softmax(torch.tensor([[0.0, 3.0, 0.0, 0.0], [0.0, 0.0, 3.0, 0.0]]), dim=-1)
    ce = torch.nn.functional.cross_entropy(logits, labels)
    assert distill.distillation_loss(logits, labels, teacher, weight=1.0, temperature=2.0) == pytest.approx(
        float(ce)
    )
    # Pure distillation is zero when the student says what the teacher says, and positive otherwise.
    assert float(
        distill.distillation_loss(teacher, labels, teacher, weight=0.0, temperature=2.0)
    ) == pytest.approx(0.0, abs=1e-6)
    student = logits.clone().requires_grad_(True)
    loss = distill.distillation_loss(student, labels, teacher, weight=0.0, temperature=2.0)
    assert loss.item() > 0.01
    loss.backward()
    assert student.grad is not None
    # The first window's teacher hears a cry: a gradient step raises the student's cry logit.
    assert float(student.grad[0, 1]) < 0


def loudest_window(path: Path) -> np.ndarray:
    """The 2.02 s around a clip's loudest half second (a short clip zero-padded)."""
    audio = load_audio(path)
    window = np.zeros(WINDOW, np.float32)
    start = 0
    if audio.size > WINDOW:
        peak = int(np.argmax(np.convolve(np.square(audio), np.ones(4000), "valid")))
        start = min(max(0, peak - WINDOW // 2), audio.size - WINDOW)
    piece = audio[start : start + WINDOW]
    window[: piece.size] = piece
    return window


def test_teacher_hears_real_cries_and_the_student_sees_the_engines_fbank(data_dir: Path) -> None:
    del data_dir  # only checks that the data is there
    clips = read_clips("shared")
    cries = [loudest_window(c.path) for c in clips if c.label == "babycry" and c.split == "test"][:12]
    rooms = [loudest_window(c.path) for c in clips if c.label == "background" and c.split == "test"][:12]
    featuriser = distill.Featuriser(model_path("accurate"))
    log_p = featuriser.teacher_log_probabilities([*cries, *rooms])
    assert log_p.shape == (24, len(LABELS))
    np.testing.assert_allclose(np.exp(log_p).sum(axis=1), 1.0, atol=1e-4)
    cry = LABELS.index("babycry")
    assert np.sum(np.argmax(log_p[:12], axis=1) == cry) >= 9  # 10 of these 12 when written
    assert np.exp(log_p[:12, cry]).mean() > np.exp(log_p[12:, cry]).mean() + 0.5
    window = cries[1]
    # The teacher's figures are the shipped model's own, through the engine.
    engine = load_model(model_path("accurate"), "onnxruntime")
    features = featuriser.teacher_front_end.features(window)[None]
    np.testing.assert_allclose(np.exp(log_p[1:2]), engine.backend.predict(features), atol=1e-5)
    frames = featuriser.student([window])
    assert frames.shape == (1, 192, 24)
    assert frames.dtype == np.float16
    expected = FbankExtractor().compute(window[-WINDOW_SAMPLES:])
    np.testing.assert_allclose(frames[0].astype(np.float32), expected, atol=0.02, rtol=1e-3)


def test_a_tiny_run_caches_trains_and_exports_a_loadable_compact_model(
    data_dir: Path, tmp_path: Path
) -> None:
    del data_dir
    clips = read_clips("shared")

    def pick(split: str, label: str, count: int) -> list:
        return [c for c in clips if c.split == split and c.label == label][:count]

    train_clips = [
        clip for label in LABELS for clip in pick("train", label, 6 if label == "background" else 2)
    ]
    val_clips = [clip for label in LABELS for clip in pick("val", label, 2)]
    args = distill.parser().parse_args(
        ["--rounds", "2", "--mixes", "1", "--workers", "2", "--windows", "128"]
    )
    args.run_dir = tmp_path
    cache = distill.prepare(train_clips, val_clips, args)
    # Per round: one mix of each of the six event clips, drawn in six parts (one clip each), and each
    # part's int(1 x 0.6 / 0.4) = 1 background window.
    assert np.bincount(cache.train_labels, minlength=4).tolist() == [2 * 6, 2 * 2, 2 * 2, 2 * 2]
    assert cache.train_frames.shape == (len(cache.train_labels), 192, 24)
    assert cache.train_teacher.shape == (len(cache.train_labels), 4)
    assert np.all(np.isfinite(cache.train_teacher))
    assert len(np.unique(cache.val_ids)) == len(val_clips)
    # Rounds draw differently: no two cached windows are the same.
    flat = cache.train_frames.reshape(len(cache.train_frames), -1)
    assert len(np.unique(flat, axis=0)) == len(flat)
    summary = distill.fit(cache, args, tmp_path)
    assert summary["windows_seen"] == 128
    assert (tmp_path / "best.pt").is_file()
    path = distill.export_checkpoint(
        tmp_path / "best.pt", tmp_path, version="3.0.0-test", provenance={"teacher": "t"}
    )
    model = load_model(path, "numpy")
    assert model.info.version == "3.0.0-test"
    assert model.info.provenance["teacher"] == "t"
    probs = model.backend.predict(np.zeros((1, 192, 24), np.float32))
    assert probs.shape == (1, 4)
    assert probs.sum() == pytest.approx(1.0, abs=1e-5)
