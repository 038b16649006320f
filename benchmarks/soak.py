"""Soak: hours of real audio through source -> detector faster than real time, and Home Assistant's RSS.

    scripts/run python -m benchmarks.soak [--hours 24] [--report-every-h 2] [--ha-minutes 3] [--skip-ha]
        [--skip-engine] [--ha-backend auto|onnxruntime|numpy]

Part 1, the engine: a 10-minute WAV of real test-split audio (background with event clips) is read by
the engine's FileSource (PyAV demux, decode, resample to 8 kHz) in a loop, every chunk going into ONE
Pipeline (FBANK, model, detector) that is never reset, so stream time runs to --hours as it would on a
camera that streams for days. RSS of the process at start (after a first 10 minutes, once the model,
PyAV and the allocator are warm), every --report-every-h hours of audio, and at the end.

Part 2, Home Assistant (a fresh pytest process with pytest-homeassistant-custom-component's `hass`):
RSS of the core before any Sound Sentry entry, then with 4 RTSP entries (4 GStreamer RTSP servers, real
audio as PCMU, the servers' own processes not counted) after --ha-minutes of streaming, and after the
entries are unloaded. Without --skip-ha both parts run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
import subprocess
import sys
import tempfile
import time

import numpy as np
import pytest

from benchmarks._common import (
    DATA,
    REPO,
    ha_version,
    load_average,
    model_note,
    model_path,
    rss_mb,
    thread_count,
)

# Imported first, so that `custom_components` is this repo's package under HA's pytest plugin (FACTS §2).
from custom_components.sound_sentry.const import DOMAIN  # noqa: F401
from custom_components.sound_sentry.engine.model import DEFAULT_MODEL

RATE = 8000
LOOP_S = 600.0
MINUTES_ENV = "SOUND_SENTRY_BENCH_HA_MINUTES"
BACKEND_ENV = "SOUND_SENTRY_BENCH_HA_BACKEND"
MODEL_ENV = "SOUND_SENTRY_BENCH_MODEL"
"""The shipped model of the engine part (default: new sources' model)."""
SOURCES = 4


def soak_audio(seconds: float) -> np.ndarray:
    """Real test-split background with an event clip of each class every 20 s, float32."""
    from benchmarks._common.audio import clip_paths, read_clip  # noqa: PLC0415

    total = round(seconds * RATE)
    parts, size = [], 0
    for path in clip_paths(DATA, "background"):
        parts.append(read_clip(path))
        size += parts[-1].size
        if size >= total:
            break
    audio = np.resize(np.concatenate(parts), total) * np.float32(0.3)
    clips = {label: clip_paths(DATA, label) for label in ("babycry", "glassbreak", "gunshot")}
    for i, start in enumerate(range(5 * RATE, total - 8 * RATE, 20 * RATE)):
        label = list(clips)[i % 3]
        clip = read_clip(clips[label][(i // 3) % len(clips[label])])
        audio[start : start + clip.size] += clip
    return np.clip(audio, -1, 1).astype(np.float32)


def engine_soak(hours: float, report_every_h: float) -> None:
    """Part 1: FileSource -> Pipeline for `hours` of audio; print the RSS table."""
    from benchmarks._common.audio import write_wav  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model import load_model  # noqa: PLC0415
    from custom_components.sound_sentry.engine.pipeline import Pipeline  # noqa: PLC0415
    from custom_components.sound_sentry.engine.sources import FileSource  # noqa: PLC0415

    path = model_path(os.environ.get(MODEL_ENV, DEFAULT_MODEL))
    loaded = load_model(path)
    backend = loaded.backend
    pipeline = Pipeline.for_model(loaded)
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "soak.wav", soak_audio(LOOP_S))
        rows: list[tuple[float, float, int, int, float]] = []
        samples = windows = events = 0
        cpu_start, wall_start = time.process_time(), time.perf_counter()
        next_report = 0.0
        start_rss = None
        while samples < hours * 3600 * RATE:
            with FileSource(wav) as source:
                for chunk in source:
                    output = pipeline.process(chunk)
                    samples += chunk.size
                    windows += len(output.windows)
                    events += sum(e.active for e in output.events)
            audio_h = samples / RATE / 3600
            if start_rss is None:
                start_rss = rss_mb()
                rows.append((audio_h, start_rss, windows, events, time.perf_counter() - wall_start))
                next_report = report_every_h
            elif audio_h >= next_report - 1e-9 or samples >= hours * 3600 * RATE:
                rows.append((audio_h, rss_mb(), windows, events, time.perf_counter() - wall_start))
                print(f"{audio_h:.2f} h of audio, RSS {rows[-1][1]:.1f} MB", flush=True)
                next_report += report_every_h
        cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    audio_s = samples / RATE
    print()
    print(
        f"Engine soak: FileSource (PCM WAV, {LOOP_S / 60:.0f} min of real test-split audio looped, an event "
        f"clip every 20 s) -> one Pipeline never reset, {backend.name} backend, hop {pipeline.hop_s} s"
    )
    print(f"Model: {model_note(path)}")
    print(
        f"{audio_s / 3600:.2f} h of audio in {wall / 60:.1f} min wall ({audio_s / wall:.0f}x real time), "
        f"{cpu / 60:.1f} min CPU ({audio_s / cpu:.0f}x real time per core); {windows:,} windows, {events:,} "
        f"event starts"
    )
    print(f"Load average (1, 5, 15 min): before {load_before}; after {load_average()} (2 CPUs shared)")
    print()
    print("| audio streamed (h) | RSS (MB) | growth since start (MB) | windows | wall (min) |")
    print("|---:|---:|---:|---:|---:|")
    for audio_h, rss, n_windows, _, elapsed in rows:
        print(f"| {audio_h:.2f} | {rss:.1f} | {rss - rows[0][1]:+.1f} | {n_windows:,} | {elapsed / 60:.1f} |")
    growth = rows[-1][1] - rows[0][1]
    print()
    print(f"Goal RSS growth <= 5 MB: {'met' if growth <= 5 else 'NOT met'} ({growth:+.1f} MB)")


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load this repo's integration."""


async def test_ha_rss(hass: object, socket_enabled: None, tmp_path: Path) -> None:
    """Part 2: RSS of a Home Assistant core without, then with, 4 RTSP sources.

    The integration loads a model once per Home Assistant, on onnxruntime when it is installed, and keeps
    it in its model store (`DATA_MODELS`) for every source that uses it. So that --ha-backend can choose
    the runtime (the integration has no option for it), the benchmark loads the entries' model first, with
    the engine's `load_model(path, backend)`, into that store: the entries then run on it.
    """
    from benchmarks._common.audio import write_wav  # noqa: PLC0415
    from benchmarks._common.entries import TEST_MODEL, flow_defaults, rtsp_entry  # noqa: PLC0415
    from benchmarks._common.peers import RtspServer  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model import load_model  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model_info import ModelInfo  # noqa: PLC0415
    from custom_components.sound_sentry.model_store import DATA_MODELS  # noqa: PLC0415

    minutes = float(os.environ.get(MINUTES_ENV, "3"))
    path = model_path(TEST_MODEL)  # the model of the entries it measures (benchmarks/_common/entries.py)
    backend_choice = os.environ.get(BACKEND_ENV, "auto")
    info = ModelInfo.load(path)
    wav = write_wav(tmp_path / "scene.wav", soak_audio(120.0))
    await hass.async_block_till_done()  # type: ignore[attr-defined]
    baseline = rss_mb()
    threads_baseline = thread_count()
    loaded = await hass.async_add_executor_job(load_model, path, backend_choice)  # type: ignore[attr-defined]
    hass.data.setdefault(DATA_MODELS, {})[TEST_MODEL] = loaded  # type: ignore[attr-defined]
    backend_name = loaded.backend.name
    with_model = rss_mb()
    servers = [RtspServer(codec="pcmu", source="file", file=wav).start() for _ in range(SOURCES)]
    entries = []
    try:
        for i, server in enumerate(servers):
            entry = rtsp_entry(server.url(), title=f"Camera {i + 1}", **flow_defaults(info))
            entry.add_to_hass(hass)  # type: ignore[arg-type]
            assert await hass.config_entries.async_setup(entry.entry_id)  # type: ignore[attr-defined]
            entries.append(entry)
        samples: list[tuple[float, float]] = []
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < minutes * 60:
            await asyncio.sleep(10)
            samples.append((elapsed, rss_mb()))
        windows = sum(entry.runtime_data.windows_classified for entry in entries)
        connected = sum(entry.runtime_data.connected for entry in entries)
        running = rss_mb()
        threads_running = thread_count()
        for entry in entries:
            assert await hass.config_entries.async_unload(entry.entry_id)  # type: ignore[attr-defined]
        await hass.async_block_till_done()  # type: ignore[attr-defined]
        unloaded = rss_mb()
    finally:
        for server in servers:
            server.stop()
    print()
    print(
        f"Home Assistant core ({ha_version()}, pytest-homeassistant-custom-component's hass), model "
        f"{model_note(path)} on the {backend_name} backend; {SOURCES} RTSP entries (PCMU, real audio, {connected} connected at the end), "
        f"{minutes:g} min, {windows:,} windows classified; load average {load_average()} (2 CPUs shared)"
    )
    print()
    print("| | RSS (MB) | over HA without sources (MB) | OS threads |")
    print("|---|---:|---:|---:|")
    print(f"| HA core, no Sound Sentry entry | {baseline:.1f} | - | {threads_baseline[1]} |")
    print(f"| model loaded, no source yet | {with_model:.1f} | {with_model - baseline:+.1f} | - |")
    peak = max(r for _, r in samples)
    print(
        f"| with {SOURCES} sources, after {minutes:g} min | {running:.1f} | {running - baseline:+.1f} | {threads_running[1]} |"
    )
    print(f"| with {SOURCES} sources, highest 10 s sample | {peak:.1f} | {peak - baseline:+.1f} | - |")
    print(f"| entries unloaded | {unloaded:.1f} | {unloaded - baseline:+.1f} | {thread_count()[1]} |")
    print()
    over = running - baseline
    print(f"Goal <= 40 MB over HA without them: {'met' if over <= 40 else 'NOT met'} ({over:+.1f} MB)")


def main() -> None:
    """Part 1 in this process, part 2 in a fresh pytest process."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=24.0, help="hours of audio for the engine soak")
    parser.add_argument("--report-every-h", type=float, default=2.0)
    parser.add_argument(
        "--ha-minutes", type=float, default=3.0, help="minutes of 4 sources in Home Assistant"
    )
    parser.add_argument("--skip-ha", action="store_true")
    parser.add_argument(
        "--ha-backend",
        choices=["auto", "onnxruntime", "numpy"],
        default="auto",
        help="model runtime in Home Assistant (auto: onnxruntime when installed, as the integration does)",
    )
    parser.add_argument("--skip-engine", action="store_true")
    args = parser.parse_args()
    if not args.skip_engine:
        engine_soak(args.hours, args.report_every_h)
    if not args.skip_ha:
        env = {**os.environ, MINUTES_ENV: str(args.ha_minutes), BACKEND_ENV: args.ha_backend}
        command = [
            sys.executable, "-m", "pytest", __file__, "-s", "-q", "-p", "no:cacheprovider",
            "-o", "timeout=0", "-o", "log_level=WARNING",
        ]  # fmt: skip
        sys.exit(subprocess.run(command, check=False, env=env, cwd=REPO).returncode)


if __name__ == "__main__":
    main()
