"""Sound level of PCM in dBFS, and the level floor below which a window is not classified."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SILENCE_DBFS = -120.0
"""Level reported for digital silence (log of zero), and the floor of every level."""
DEFAULT_MIN_LEVEL_DBFS: float | None = -60.0
"""Windows quieter than this are not classified (None: classify every window); see docs/performance.md."""


def level_floor(min_level_dbfs: float | None = DEFAULT_MIN_LEVEL_DBFS) -> float:
    """The level a window must reach to be classified: `min_level_dbfs`, or SILENCE_DBFS when None."""
    return SILENCE_DBFS if min_level_dbfs is None else min_level_dbfs


def level_dbfs(samples: npt.NDArray[np.float32]) -> float:
    """RMS level in dBFS, floored at SILENCE_DBFS (digital silence gives exactly that)."""
    mean_square = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS


def levels_dbfs(blocks: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
    """`level_dbfs` of each row of a (blocks, samples) array."""
    mean_square = np.mean(np.square(blocks, dtype=np.float64), axis=1)
    levels: npt.NDArray[np.float64] = np.maximum(
        SILENCE_DBFS, 10.0 * np.log10(np.maximum(mean_square, 1e-30))
    )
    return levels
