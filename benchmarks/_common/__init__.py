"""The benchmarks' support, the one module they share beside the engine's public API: here the model in
use, percentiles and process counters; in `audio` real and synthetic audio, in `peers` the RTSP server
and MQTT broker they run against, in `entries` the config entries of the benchmarks that run Home
Assistant. The tests use `audio`, `peers` and `entries` too (tests/audio.py, peers.py, entries.py)."""

from __future__ import annotations

from collections.abc import Sequence
import math
import os
from pathlib import Path
import threading
from typing import Any

from custom_components.sound_sentry.engine.backends import ModelBackend
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL, model_path as shipped_model_path
from custom_components.sound_sentry.engine.model_info import ModelInfo
from custom_components.sound_sentry.engine.pipeline import Pipeline
from custom_components.sound_sentry.engine.temporal import load_temporal

REPO = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("SOUND_SENTRY_DATA") or REPO.parent / "shared" / "data")


def model_path(name: str = DEFAULT_MODEL) -> Path:
    """A shipped model's file by name (the default: new sources' model)."""
    return shipped_model_path(name)


def pipeline_for(backend: ModelBackend, info: ModelInfo, **kwargs: Any) -> Pipeline:
    """The engine's pipeline for a backend built here (a benchmark's own runtime options), with the model's
    temporal stage on the same runtime: what `Pipeline.for_model` builds for a loaded model."""
    temporal = load_temporal(info.temporal.path, backend.name) if info.temporal is not None else None
    return Pipeline(backend, info, temporal=temporal, **kwargs)


def model_note(path: Path) -> str:
    """Which model a run used, for the output."""
    info = ModelInfo.load(path)
    return f"{path.relative_to(REPO).as_posix()} ({info.name} {info.version}, {info.architecture})"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method: always a measured value."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def open_fds() -> int:
    """File descriptors open in this process."""
    return sum(1 for _ in Path("/proc/self/fd").iterdir())


def thread_count() -> tuple[int, int]:
    """(Python threads, OS threads) of this process; native libraries may own threads Python never sees."""
    return threading.active_count(), sum(1 for _ in Path("/proc/self/task").iterdir())


def rss_mb(pid: int | str = "self") -> float:
    """Resident set size now, in MB (VmRSS of /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def ha_version() -> str:
    """The Home Assistant core in use (imported only when asked: the engine benchmarks need none)."""
    from homeassistant.const import __version__  # noqa: PLC0415

    return __version__
