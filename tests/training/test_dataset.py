"""Training data choices (NumPy only: runs in the Home Assistant environments)."""

from __future__ import annotations

import pytest

from training.audio import is_open, read_clips, read_manifest


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
