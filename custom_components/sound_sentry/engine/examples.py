"""Examples of a sound from one recording: the user makes the sound several times, each loud stretch is one.

The room's level is the recording's quiet level (a low percentile of its 50 ms blocks); a stretch
`MARGIN_DB` above it is the sound. Stretches closer than `MERGE_GAP_S` are one example (a bark's echo,
a two-tone chime), each is padded by `PAD_S` and widened to at least a window, so that the pipeline sees
it whole, as it would live.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from .level import DEFAULT_MIN_LEVEL_DBFS, level_dbfs, level_floor, levels_dbfs

Array = npt.NDArray[np.float32]

BLOCK_S = 0.05
ROOM_PERCENTILE = 20.0
"""The room's level: this percentile of the blocks' levels (most of a recording is the room)."""
MARGIN_DB = 10.0
"""How far above the room a block must be to belong to the sound."""
MERGE_GAP_S = 0.75
MIN_LOUD_S = 0.1
"""Shorter loud stretches are clicks, not a sound made on purpose."""
PAD_S = 0.25


def cut_examples(samples: Array, sample_rate_hz: int, *, min_length_s: float) -> list[Array]:
    """The loud stretches of a recording, one example each (`min_length_s`: the model's window)."""
    return [samples[start:end].copy() for start, end in example_spans(samples, sample_rate_hz, min_length_s)]


def example_spans(samples: Array, sample_rate_hz: int, min_length_s: float) -> list[tuple[int, int]]:
    """The [start, end) sample ranges of `cut_examples`, in time order.

    Nothing is cut from a recording that never rises above the level floor (`DEFAULT_MIN_LEVEL_DBFS`:
    quieter windows are not classified): silence holds no examples, and neither does a stretch too short
    to lift its window over the floor (e.g. the last bit of a sound that the recording's start cut off).
    """
    block = round(BLOCK_S * sample_rate_hz)
    count = samples.size // block
    if count == 0:
        return []
    dbfs = levels_dbfs(samples[: count * block].reshape(count, block))
    floor = level_floor(DEFAULT_MIN_LEVEL_DBFS)
    loud = (dbfs >= float(np.percentile(dbfs, ROOM_PERCENTILE)) + MARGIN_DB) & (dbfs >= floor)
    stretches = _merged(_runs(loud), round(MERGE_GAP_S / BLOCK_S))
    minimum = round(MIN_LOUD_S / BLOCK_S)
    pad, length = round(PAD_S * sample_rate_hz), round(min_length_s * sample_rate_hz)
    spans = []
    for first, last in stretches:
        if last - first < minimum:
            continue
        start, end = first * block - pad, last * block + pad
        if end - start < length:  # widened about its middle, within the recording
            start -= (length - (end - start)) // 2
            end = start + length
        start = min(max(0, start), max(0, samples.size - length))
        end = min(samples.size, max(end, start + length))
        if level_dbfs(samples[start:end]) >= floor:  # else a window of it is too quiet to classify
            spans.append((start, end))
    return spans


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """The [first, last) block ranges where `mask` holds."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _merged(runs: list[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    """Runs less than `gap` blocks apart joined into one."""
    merged: list[tuple[int, int]] = []
    for first, last in runs:
        if merged and first - merged[-1][1] < gap:
            merged[-1] = (merged[-1][0], last)
        else:
            merged.append((first, last))
    return merged
