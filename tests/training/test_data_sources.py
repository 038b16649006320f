"""The extra-data builder's curated list (training/data/sources.csv) and its offline parts (no downloads)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
import struct
import zipfile

import numpy as np
import pytest

from training.data import scenes
from training.data.audio_io import SAMPLE_RATE_HZ, decode, segments, write_flac
from training.data.build import package_files, read_input, split_of, stem_of
from training.data.review import main as review_main, spectrogram_rows
from training.data.sources import LABELS, SKIP, is_open, problems, read_sources


def test_curated_list_is_well_formed() -> None:
    sources = read_sources()
    assert sources
    assert problems(sources) == []
    assert {s.label for s in sources} <= {*LABELS, SKIP}
    assert all(is_open(s.licence) for s in sources if s.label != SKIP)
    used = [(s.package, s.pattern) for s in sources]
    assert len(used) == len(set(used))


def test_every_event_class_has_a_reviewed_file() -> None:
    events = [s for s in read_sources() if s.label in LABELS[1:]]
    assert events
    assert all(s.note for s in events)


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"label": "dog"}, "unknown label"),
        ({"licence": "CC-BY-NC-3.0"}, "not an open"),
        ({"licence": ""}, "not an open"),
        ({"label": "gunshot", "pattern": "sounds/*.wav", "note": "x"}, "single reviewed files"),
        ({"label": "glassbreak", "pattern": "a.wav", "note": ""}, "review note"),
        ({"grouping": "folder"}, "grouping"),
    ],
)
def test_bad_rows_are_reported(change: dict[str, str], complaint: str) -> None:
    good = read_sources()[0]
    bad = replace(good, **change)  # type: ignore[arg-type]
    assert any(complaint in p for p in problems([bad]))


def test_duplicate_rows_are_reported() -> None:
    row = read_sources()[0]
    assert any("duplicate" in p for p in problems([row, row]))


def test_splits_are_stable_and_about_70_15_15() -> None:
    groups = [f"pkg:file{n}" for n in range(3000)]
    counts = Counter(split_of(g) for g in groups)
    assert abs(counts["train"] / 3000 - 0.70) < 0.04
    assert abs(counts["val"] / 3000 - 0.15) < 0.03
    assert [split_of(g) for g in groups[:50]] == [split_of(g) for g in groups[:50]]


def test_long_files_become_spread_segments_and_silence_is_dropped() -> None:
    rng = np.random.default_rng(0)
    sound = (rng.standard_normal(35 * SAMPLE_RATE_HZ) * 0.1).astype(np.float32)
    pieces = segments(sound, max_s=20)
    assert [start for start, _ in pieces] == [0.0, 30.0]
    assert all(piece.size <= 10 * SAMPLE_RATE_HZ for _, piece in pieces)
    assert segments(np.zeros(5 * SAMPLE_RATE_HZ, dtype=np.float32), max_s=60) == []


def test_flac_round_trip(tmp_path: Path) -> None:
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ)).astype(np.float32)
    write_flac(tmp_path / "tone.flac", tone)
    back = decode(tmp_path / "tone.flac")
    assert back.size == tone.size
    assert np.max(np.abs(back - tone)) < 1e-3


def test_scenes_take_parts_from_their_own_split_and_mix_deterministically() -> None:
    categories = ("speech", "music", "dishes", "appliance", "door")
    parts = [
        scenes.Part(key=f"{c}{n}", category=c, licence="CC0-1.0", split=split)
        for c in categories
        for n in range(5)
        for split in ("train", "val", "test")
    ]
    parts = [replace(p, key=f"{p.key}-{p.split}") for p in parts]
    planned = scenes.plan("kitchen", 20, parts, 7, split_of) + scenes.plan("tv", 20, parts, 7, split_of)
    assert planned == scenes.plan("kitchen", 20, parts, 7, split_of) + scenes.plan(
        "tv", 20, parts, 7, split_of
    )
    assert all(part.split == scene.split for scene in planned for part, _, _ in scene.parts)

    def load(key: str) -> np.ndarray:
        seed = sum(map(ord, key))
        return (np.random.default_rng(seed).standard_normal(3 * SAMPLE_RATE_HZ) * 0.1).astype(np.float32)

    first = scenes.mix(planned[0], load)
    assert first.size == scenes.SCENE_S * SAMPLE_RATE_HZ
    assert np.array_equal(first, scenes.mix(planned[0], load))
    assert 0 < np.max(np.abs(first)) <= 0.9


def test_sounds_inside_doom_wads_and_pk3_archives(tmp_path: Path) -> None:
    tone = bytes(128 + int(100 * np.sin(2 * np.pi * 440 * n / 11025)) for n in range(11025))
    lump = struct.pack("<HHI", 3, 11025, len(tone) + 32) + bytes(16) + tone + bytes(16)
    directory = struct.pack("<ii8s", 12, len(lump), b"DSPISTOL") + struct.pack("<ii8s", 12, 0, b"MAP01")
    (tmp_path / "game.wad").write_bytes(b"IWAD" + struct.pack("<ii", 2, 12 + len(lump)) + lump + directory)
    with zipfile.ZipFile(tmp_path / "pak0.pk3", "w") as archive:
        archive.writestr("sound/weapons/shot.wav", b"RIFF")
        archive.writestr("maps/q.bsp", b"")

    assert package_files(tmp_path) == ["game.wad!DSPISTOL", "pak0.pk3!sound/weapons/shot.wav"]
    pistol = decode(read_input(tmp_path, "game.wad!DSPISTOL"))
    assert abs(pistol.size - SAMPLE_RATE_HZ) <= 2
    assert read_input(tmp_path, "pak0.pk3!sound/weapons/shot.wav") == b"RIFF"


def test_clip_names_keep_the_archive_member() -> None:
    names = {stem_of(f"usr/share/games/doom/freedoom2.wad!{lump}") for lump in ("DSPISTOL", "DSSHOTGN")}
    assert names == {"doom_freedoom2_DSPISTOL", "doom_freedoom2_DSSHOTGN"}
    assert stem_of("usr/share/games/x/data.pk3!sound/a.ogg") == "x_data_sound_a"


def test_review_sheet_shows_a_tone_as_a_line(tmp_path: Path) -> None:
    tone = (0.5 * np.sin(2 * np.pi * 1000 * np.arange(SAMPLE_RATE_HZ) / SAMPLE_RATE_HZ)).astype(np.float32)
    image = spectrogram_rows(tone)
    brightest_row = int(np.argmax(image[:, :50].mean(axis=1)))
    assert brightest_row == image.shape[0] - 1 - round(1000 / (SAMPLE_RATE_HZ / 256))
    write_flac(tmp_path / "tone.flac", tone)
    assert review_main([str(tmp_path / "sheet.png"), str(tmp_path / "tone.flac")]) == 0
    assert (tmp_path / "sheet.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
