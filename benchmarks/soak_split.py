"""Where the engine soak's RSS growth comes from: the pipeline, or opening sources again and again.

    scripts/run python -m benchmarks.soak_split [--hours 4] [--opens 1200]

benchmarks/soak.py loops a 10-minute WAV through FileSource into one Pipeline, so over 24 h it also
opens the file 144 times. This separates the two, each in its own process: (a) the Pipeline alone,
fed the same real audio in 4096-sample chunks for --hours, never reset; (b) a FileSource on a 5 s WAV
opened, read to its end and closed --opens times, no pipeline. RSS is printed as it goes: a leak grows
without end, an allocator warming up levels off.
"""

from __future__ import annotations

import argparse
from pathlib import Path
import subprocess
import sys
import tempfile

import numpy as np

from benchmarks._common import load_average, model_note, model_path, rss_mb


def pipeline_part(hours: float) -> None:
    from benchmarks.soak import LOOP_S, soak_audio  # noqa: PLC0415
    from custom_components.sound_sentry.engine.model import load_model  # noqa: PLC0415
    from custom_components.sound_sentry.engine.pipeline import Pipeline  # noqa: PLC0415

    path = model_path()
    pipeline = Pipeline.for_model(load_model(path))
    audio = (soak_audio(LOOP_S) * 32767).astype(np.int16)
    loops = round(hours * 3600 / LOOP_S)
    for loop in range(1, loops + 1):
        for start in range(0, audio.size, 4096):
            pipeline.process(audio[start : start + 4096])
        if loop == 1 or loop % 6 == 0 or loop == loops:
            print(f"| pipeline alone | {loop * LOOP_S / 3600:.2f} h of audio | {rss_mb():.1f} |", flush=True)


def files_part(opens: int) -> None:
    from benchmarks._common.audio import write_wav  # noqa: PLC0415
    from benchmarks.soak import soak_audio  # noqa: PLC0415
    from custom_components.sound_sentry.engine.sources import FileSource  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        wav = write_wav(Path(tmp) / "short.wav", soak_audio(5.0))
        for i in range(1, opens + 1):
            with FileSource(wav) as source:
                for _ in source:
                    pass
            if i in (1, 50, 100) or i % 200 == 0 or i == opens:
                print(f"| FileSource opened, read, closed | {i} times | {rss_mb():.1f} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=4.0)
    parser.add_argument("--opens", type=int, default=1200)
    parser.add_argument("--part", choices=["pipeline", "files"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.part == "pipeline":
        pipeline_part(args.hours)
        return
    if args.part == "files":
        files_part(args.opens)
        return
    print(f"Model: {model_note(model_path())}; load average {load_average()}")
    print()
    print("| part | after | RSS (MB) |")
    print("|---|---|---:|", flush=True)
    for part in ("pipeline", "files"):
        command = [sys.executable, "-m", "benchmarks.soak_split", "--part", part]
        command += ["--hours", str(args.hours), "--opens", str(args.opens)]
        subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
