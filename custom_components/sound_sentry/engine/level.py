"""Sound level of PCM in dBFS, and the level floor below which a window is not classified."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

SILENCE_DBFS = -120.0
"""Level reported for digital silence (log of zero), and the floor of every level."""
DEFAULT_MIN_LEVEL_DBFS: float | None = -60.0
"""Windows quieter than this are not classified (None: classify every window); see docs/performance.md."""


def level_dbfs(samples: npt.NDArray[np.float32]) -> float:
    """RMS level in dBFS, floored at SILENCE_DBFS (digital silence gives exactly that)."""
    mean_square = float(np.mean(np.square(samples, dtype=np.float64))) if samples.size else 0.0
    return max(SILENCE_DBFS, 10.0 * math.log10(mean_square)) if mean_square > 0 else SILENCE_DBFS
