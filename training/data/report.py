"""Print what the extra set holds: `python -m training.data.report [--by category] [--with-shared]`.

Per class and source (or hard-negative category): clips, hours, licence, split counts; optionally the
developer set (../shared/data) beside it, for the before/after table.
"""

from __future__ import annotations

import argparse
from collections import defaultdict
import csv
from pathlib import Path
import sys

from training.audio_paths import extra_data_dir
from training.data.sources import LABELS, is_open

SPLITS = ("train", "val", "test")


def read(manifest: Path) -> list[dict[str, str]]:
    """Rows of a manifest.csv, with the category from categories.csv beside it (or the source)."""
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    categories: dict[str, str] = {}
    beside = manifest.with_name("categories.csv")
    if beside.exists():
        with beside.open(newline="") as handle:
            categories = {r["path"]: r["category"] for r in csv.DictReader(handle)}
    for row in rows:
        row["category"] = categories.get(row["path"], row["source"])
    return rows


def table(rows: list[dict[str, str]], key: str) -> list[str]:
    """Markdown table: label x `key` with clips, hours, licences and split counts."""
    cells: dict[tuple[str, str], list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        cells[(row["label"], row[key])].append(row)
    lines = [
        f"| label | {key} | clips | hours | open | licence | train | val | test |",
        "|---|---|---:|---:|---|---|---:|---:|---:|",
    ]
    for (label, name), members in sorted(cells.items(), key=lambda kv: (LABELS.index(kv[0][0]), kv[0][1])):
        hours = sum(float(r["duration_s"]) for r in members) / 3600
        licences = sorted({r["licence"] for r in members})
        licence = licences[0] if len(licences) == 1 else f"{len(licences)} combinations"
        opened = "yes" if all(is_open(r["licence"]) for r in members) else "no"
        splits = [sum(r["split"] == s for r in members) for s in SPLITS]
        lines.append(f"| {label} | {name} | {len(members)} | {hours:.3f} | {opened} | {licence} | "
                     + " | ".join(map(str, splits)) + " |")  # fmt: skip
    return lines


def totals(rows: list[dict[str, str]], title: str) -> list[str]:
    """Hours per class and split."""
    lines = [f"| {title} | clips | hours | train h | val h | test h |", "|---|---:|---:|---:|---:|---:|"]
    for label in LABELS:
        members = [r for r in rows if r["label"] == label]
        hours = [sum(float(r["duration_s"]) for r in members if r["split"] == s) / 3600 for s in SPLITS]
        lines.append(
            f"| {label} | {len(members)} | {sum(hours):.3f} | " + " | ".join(f"{h:.3f}" for h in hours) + " |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--by", choices=("source", "category"), default="source")
    parser.add_argument("--with-shared", type=Path, nargs="?", const=Path("../shared/data/manifest.csv"))
    parser.add_argument("--manifest", type=Path, default=extra_data_dir() / "manifest.csv")
    args = parser.parse_args(argv)
    extra = read(args.manifest)
    out = [f"Extra set: {args.manifest}", "", *totals(extra, "class (extra)"), ""]
    if args.with_shared:
        shared = read(args.with_shared)
        out += [
            *totals(shared, "class (shared, before)"),
            "",
            *totals(shared + extra, "class (both, after)"),
            "",
        ]
    out += table(extra, args.by)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
