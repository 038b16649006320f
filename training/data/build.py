"""Build the extra training set: `python -m training.data.build [--stage N]` (idempotent, cached).

Writes `$SOUND_SENTRY_CACHE/data-extra/` (default ~/.cache/sound-sentry/data-extra): `manifest.csv` in the
columns of ../shared/data/manifest.csv and `audio/<label>/<source>__<stem>.flac` (8 kHz mono FLAC).
Downloads (debs/), extracted packages (pkgs/), tools (tools/) and converted clips are reused on re-runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
import csv
from dataclasses import asdict, dataclass, replace
from functools import partial
import hashlib
import itertools
import json
from pathlib import Path
import random
import re
import subprocess
import sys
import time

from training.audio_paths import extra_data_dir
from training.data import archives, debian, music, scenes, speech
from training.data.audio_io import SAMPLE_RATE_HZ, Samples, decode, segments, trim_silence, write_flac
from training.data.sources import SKIP, Source, read_sources

SEED = 20261122
MANIFEST_COLUMNS = ("path", "label", "source", "group", "split", "duration_s", "licence", "original")
AUDIO_SUFFIXES = (".wav", ".ogg", ".oga", ".flac", ".mp3", ".opus", ".au", ".aif", ".aiff")
VERSION = "2"
"""Bump to rebuild every cached clip (when the conversion changes)."""


@dataclass(frozen=True)
class Row:
    """One manifest row, plus the category the report and the scene mixer use."""

    path: str
    label: str
    source: str
    group: str
    split: str
    duration_s: float
    licence: str
    original: str
    category: str


def split_of(group: str) -> str:
    """Train / val / test (about 70/15/15) for a group, stable however many other groups there are."""
    draw = random.Random(f"{SEED}:{group}").random()
    return "train" if draw < 0.70 else "val" if draw < 0.85 else "test"


def safe(text: str) -> str:
    """File-name-safe form: characters outside A-Za-z0-9._- become _."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", text)


def stem_of(relative: str) -> str:
    """A short readable stem from a package path (without usr/share/ and the suffix)."""
    text = re.sub(r"^usr/(share/|lib/)?(games/)?", "", relative)
    parts = [str(Path(part).with_suffix("")) for part in text.split(archives.SEPARATOR)]
    return safe("_".join(parts))[-120:]


class Builder:
    """Converts selected files to clips and remembers what it made (rows.json) to skip them next time."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.index_path = root / "rows.json"
        self.index: dict[str, list[dict[str, object]]] = (
            json.loads(self.index_path.read_text()) if self.index_path.exists() else {}
        )
        self.rows: list[Row] = []
        self.failed: list[str] = []
        # Which input wrote each clip last: a cached entry counts only while it still owns its files.
        self.owner = {str(r["path"]): key for key, rows in self.index.items() for r in rows}

    def save_index(self) -> None:
        """Write rows.json (atomically)."""
        partial = self.index_path.with_suffix(".partial")
        partial.write_text(json.dumps(self.index))
        partial.replace(self.index_path)

    def cached(self, key: str, prefix: str) -> list[Row] | None:
        """The rows made earlier for `key` under the clip name `prefix`, if it still owns their files."""
        found = self.index.get(key)
        if found is None or not all(
            str(r["path"]).startswith(prefix)
            and self.owner.get(str(r["path"])) == key
            and (self.root / str(r["path"])).exists()
            for r in found
        ):
            return None
        return [Row(**r) for r in found]  # type: ignore[arg-type]

    def add(
        self,
        key: str,
        make: Callable[[], Samples],
        *,
        label: str,
        source: str,
        group: str,
        licence: str,
        original: str,
        category: str,
        stem: str,
        max_s: float,
    ) -> None:
        """Rows for one input (from the cache, or by calling `make()` for its samples)."""
        prefix = f"audio/{label}/{safe(source)}__{stem}"
        rows = self.cached(key, prefix)
        if rows is not None:  # the audio is the same; the curated facts may have been corrected since
            rows = [replace(r, licence=licence, category=category, split=split_of(group)) for r in rows]
            self.index[key] = [asdict(r) for r in rows]
        else:
            try:
                samples: Samples = trim_silence(make())
            except (OSError, ValueError, RuntimeError, subprocess.SubprocessError) as error:
                print(f"  skipped {original}: {error}", file=sys.stderr, flush=True)
                self.failed.append(original)
                return
            pieces = segments(samples, max_s)
            rows = []
            for number, (start_s, piece) in enumerate(pieces):
                suffix = f"__{int(start_s):04d}s" if len(pieces) > 1 else ""
                path = f"{prefix}{suffix}.flac"
                write_flac(self.root / path, piece)
                rows.append(
                    Row(
                        path=path,
                        label=label,
                        source=source,
                        group=group,
                        split=split_of(group),
                        duration_s=round(piece.size / SAMPLE_RATE_HZ, 3),
                        licence=licence,
                        original=original if len(pieces) == 1 else f"{original}@{start_s:g}s",
                        category=category,
                    )
                )
                del number
            for row in rows:
                previous = self.owner.get(row.path)
                if previous is not None and previous != key:
                    self.index.pop(previous, None)  # its clip is overwritten now
                self.owner[row.path] = key
            self.index[key] = [asdict(r) for r in rows]
        self.rows.extend(rows)


def package_files(root: Path) -> list[str]:
    """Package-relative paths of the audio files in an extracted package (and of sounds in its archives)."""
    out = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.is_symlink():
            continue
        relative = str(path.relative_to(root))
        suffix = path.suffix.lower()
        if suffix in AUDIO_SUFFIXES + music.MIDI_SUFFIXES:
            out.append(relative)
        elif suffix in archives.ARCHIVE_SUFFIXES:
            out.extend(f"{relative}{archives.SEPARATOR}{m}" for m in archives.members(path, AUDIO_SUFFIXES))
    return out


def read_input(root: Path, relative: str) -> bytes:
    """The bytes of a file in a package, or of a sound inside one of its archives."""
    if archives.SEPARATOR in relative:
        container, member = relative.split(archives.SEPARATOR, 1)
        return archives.read_member(root / container, member)
    return (root / relative).read_bytes()


def select(package: str, rows: list[Source], files: list[str]) -> list[tuple[Source, str]]:
    """(row, file) pairs: the first matching row decides a file; `skip` rows drop it; max_files samples."""
    by_row: dict[int, list[str]] = {}
    for path in files:
        for number, source in enumerate(rows):
            if source.matches(path):
                by_row.setdefault(number, []).append(path)
                break
    out: list[tuple[Source, str]] = []
    for number, matched in sorted(by_row.items()):
        source = rows[number]
        if source.label == SKIP:
            continue
        paths = matched
        if source.max_files and len(matched) > source.max_files:
            rng = random.Random(f"{SEED}:{package}:{source.pattern}")
            paths = sorted(rng.sample(matched, source.max_files))
        out.extend((source, path) for path in paths)
    return out


def build_packages(builder: Builder, sources: list[Source], packages: list[str] | None) -> None:
    """Clips from the Debian packages of sources.csv (all, or only `packages`)."""
    cache = builder.root
    tools = debian.tools_root(cache)
    seen_content: set[str] = set()
    order = list(dict.fromkeys(s.package for s in sources))
    for package in order:
        if packages is not None and package not in packages:
            continue
        started = time.monotonic()
        root = debian.extract(package, cache)
        rows = [s for s in sources if s.package == package]
        chosen = select(package, rows, package_files(root))
        before = len(builder.rows)
        for source, relative in chosen:
            path = root / relative
            content = read_input(root, relative)
            digest = hashlib.sha1(content).hexdigest()
            if digest in seen_content:  # the same file in two places: keep the first
                continue
            seen_content.add(digest)
            is_midi = path.suffix.lower() in music.MIDI_SUFFIXES
            group = {"package": package, "file": f"{package}:{stem_of(relative)}"}.get(
                source.grouping, f"{package}:{source.grouping.removeprefix('group:')}"
            )
            licence = source.licence
            if is_midi and licence != music.SOUNDFONT_LICENCE:
                licence = f"{licence} AND {music.SOUNDFONT_LICENCE}"
            builder.add(
                f"{VERSION}|{package}|{relative}|{source.label}|{source.max_s}|{group}|{digest}",
                partial(music.render, path, tools) if is_midi else partial(decode, content),
                label=source.label,
                source=package,
                group=group,
                licence=licence,
                original=relative,
                category=source.category,
                stem=stem_of(relative),
                max_s=source.max_s,
            )
        builder.save_index()
        made = builder.rows[before:]
        print(
            f"{package}: {len(chosen)} files -> {len(made)} clips, "
            f"{sum(r.duration_s for r in made) / 60:.1f} min ({time.monotonic() - started:.0f} s)",
            flush=True,
        )


def build_speech(builder: Builder, count: int) -> None:
    """`count` espeak-ng utterances."""
    started = time.monotonic()
    tools = debian.tools_root(builder.root)
    before = len(builder.rows)
    for utterance in speech.plan(builder.root, count, SEED):
        builder.add(
            f"{VERSION}|espeak|{json.dumps(asdict(utterance), ensure_ascii=False)}",
            partial(speech.speak, utterance, tools),
            label="background",
            source="espeak-ng",
            group=utterance.group,
            licence=speech.LICENCE,
            original=f"{utterance.voice} s{utterance.speed_wpm} p{utterance.pitch}: "
            + " / ".join(utterance.texts),
            category="speech",
            stem=utterance.name,
            max_s=10,
        )
    builder.save_index()
    made = builder.rows[before:]
    print(f"espeak-ng: {len(made)} clips, {sum(r.duration_s for r in made) / 60:.1f} min "
          f"({time.monotonic() - started:.0f} s)", flush=True)  # fmt: skip


def build_scenes(builder: Builder, count: int) -> None:
    """`count` TV and `count` kitchen scenes from the background clips built so far."""
    started = time.monotonic()
    parts = [
        scenes.Part(key=r.path, category=r.category, licence=r.licence, split=r.split)
        for r in builder.rows
        if r.label == "background" and r.source not in ("scene-tv", "scene-kitchen")
    ]
    before = len(builder.rows)
    for kind in ("tv", "kitchen"):
        for scene in scenes.plan(kind, count, parts, SEED, split_of):
            description = " + ".join(f"{p.key}@{start:.1f}s{gain:+.0f}dB" for p, start, gain in scene.parts)
            builder.add(
                f"{VERSION}|scene|{description}",
                partial(scenes.mix, scene, lambda key: decode(builder.root / key)),
                label="background",
                source=f"scene-{kind}",
                group=f"scene-{kind}:{scene.name}",
                licence=scene.licence,
                original=description,
                category=f"scene-{kind}",
                stem=scene.name,
                max_s=10,
            )
    builder.save_index()
    made = builder.rows[before:]
    print(f"scenes: {len(made)} clips ({time.monotonic() - started:.0f} s)", flush=True)


def write_manifest(builder: Builder) -> Path:
    """manifest.csv (shared columns) and categories.csv (path -> category, for the report)."""
    rows = sorted(builder.rows, key=lambda r: r.path)
    clashes = sorted({a.path for a, b in itertools.pairwise(rows) if a.path == b.path})
    if clashes:
        raise RuntimeError(f"two inputs would write the same clip: {clashes[:5]}")
    manifest = builder.root / "manifest.csv"
    partial = manifest.with_suffix(".partial")
    with partial.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(MANIFEST_COLUMNS)
        for r in rows:
            writer.writerow([r.path, r.label, r.source, r.group, r.split, f"{r.duration_s:.3f}", r.licence,
                             r.original])  # fmt: skip
    partial.replace(manifest)
    kept = {builder.root / r.path for r in rows}
    for stale in (builder.root / "audio").rglob(
        "*.flac"
    ):  # clips of rows that are gone (sources.csv changed)
        if stale not in kept:
            stale.unlink()
    with (builder.root / "categories.csv").open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("path", "category"))
        writer.writerows((r.path, r.category) for r in rows)
    return manifest


def main(argv: list[str] | None = None) -> int:
    """Build everything (or part, see --help) and write the manifest."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--packages", nargs="*", help="only these packages of sources.csv (default: all)")
    parser.add_argument("--speech", type=int, default=800, help="espeak-ng utterances (0: none)")
    parser.add_argument(
        "--scenes", type=int, default=300, help="scenes of each kind, TV and kitchen (0: none)"
    )
    args = parser.parse_args(argv)
    started = time.monotonic()
    builder = Builder(extra_data_dir())
    builder.root.mkdir(parents=True, exist_ok=True)
    build_packages(builder, read_sources(), args.packages)
    if args.speech:
        build_speech(builder, args.speech)
    if args.scenes:
        build_scenes(builder, args.scenes)
    manifest = write_manifest(builder)
    hours = sum(r.duration_s for r in builder.rows) / 3600
    print(f"{manifest}: {len(builder.rows)} clips, {hours:.2f} h ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
