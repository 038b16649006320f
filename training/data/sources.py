"""The curated list of what the extra set uses (`sources.csv`) and the rules it must follow."""

from __future__ import annotations

import csv
from dataclasses import dataclass
import fnmatch
from pathlib import Path
import re

from training.labels import EVENT_LABELS, LABELS

SOURCES_CSV = Path(__file__).with_name("sources.csv")
SKIP = "skip"
"""Label of rows that keep files out (reviewed and rejected, or of unclear licence); the first match wins."""
GROUPINGS = ("file", "package")
"""Or `group:<name>`: a family of near-identical files (e.g. three takes of one pistol) kept together."""
COLUMNS = ("package", "pattern", "label", "licence", "category", "grouping", "max_files", "max_s", "note")
OPEN_LICENCES = (
    "BSD-3-Clause",
    "CC0-1.0",
    "public-domain",
    "CC-BY-3.0",
    "CC-BY-SA-2.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "GFDL-1.3-only",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0-or-later",
    "MIT",
    "ODbL-1.0/DbCL-1.0",
    "Zlib",
)
"""SPDX-like ids free for any use (no NC, no unstated): the only ones sources.csv may use, and what makes a
clip of either data set count as openly licensed (`ODbL-1.0/DbCL-1.0` is the shared set's donateacry)."""


@dataclass(frozen=True)
class Source:
    """One row of sources.csv: files of one Debian package that match `pattern` (fnmatch, `*` spans `/`)."""

    package: str
    pattern: str
    label: str
    licence: str
    category: str
    """What the sound is (speech, music, siren, laughter, ...), for the report per hard-negative kind."""
    grouping: str
    """`file`: each file is its own group (split unit); `package`: all matched files share one group;
    `group:<name>`: the named group (within the package)."""
    max_files: int
    """At most this many matched files are used (a seeded sample), 0 = all: variety beats hours."""
    max_s: float
    """At most this many seconds taken from one file (segments spread over it)."""
    note: str

    def matches(self, path: str) -> bool:
        """Whether the package-relative `path` is one of this row's files."""
        return fnmatch.fnmatchcase(path, self.pattern)


def read_sources(path: Path = SOURCES_CSV) -> list[Source]:
    """All rows of sources.csv, in order (order matters: the first row that matches a file decides)."""
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {','.join(COLUMNS)}")
        return [
            Source(
                package=row["package"],
                pattern=row["pattern"],
                label=row["label"],
                licence=row["licence"],
                category=row["category"],
                grouping=row["grouping"],
                max_files=int(row["max_files"] or 0),
                max_s=float(row["max_s"] or 60),
                note=row["note"],
            )
            for row in reader
        ]


def problems(sources: list[Source]) -> list[str]:
    """What is wrong with the curated list (empty when it is well-formed)."""
    found = []
    seen = set()
    for number, source in enumerate(sources, start=2):
        where = f"line {number} ({source.package} {source.pattern})"
        if source.label not in (*LABELS, SKIP):
            found.append(f"{where}: unknown label {source.label!r}")
        if source.label != SKIP and source.licence not in OPEN_LICENCES:
            found.append(f"{where}: licence {source.licence!r} is not an open SPDX-like id")
        if source.grouping not in GROUPINGS and not re.fullmatch(r"group:[A-Za-z0-9._-]+", source.grouping):
            found.append(f"{where}: grouping must be one of {GROUPINGS}")
        if not source.package or not source.pattern or not source.category:
            found.append(f"{where}: package, pattern and category are required")
        if source.label in EVENT_LABELS and any(c in source.pattern for c in "*?["):
            found.append(f"{where}: event rows name single reviewed files, not patterns")
        if source.label != SKIP and not source.note and source.label != "background":
            found.append(f"{where}: event rows need a review note")
        if (source.package, source.pattern) in seen:
            found.append(f"{where}: duplicate row")
        seen.add((source.package, source.pattern))
    return found


def is_open(licence: str) -> bool:
    """Free for any use: every part of a combined licence (`A AND B`) is an open id."""
    return all(part in OPEN_LICENCES for part in licence.split(" AND "))
