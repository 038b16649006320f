"""Build the demo recording that `scripts/develop` streams: a quiet room with a baby crying, glass
breaking and a gunshot at known times, from the dev `test` split of ../shared/data.

    python scripts/demo_audio.py OUT.wav
"""

from __future__ import annotations

import csv
from pathlib import Path
import sys

import av
import numpy as np
import numpy.typing as npt

RATE_HZ = 8000
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
LENGTH_S = 60.0
EVENTS = {"babycry": 8.0, "glassbreak": 26.0, "gunshot": 44.0}
"""Where each event starts in the loop, in seconds."""


def read(path: Path) -> npt.NDArray[np.float32]:
    """An 8 kHz mono FLAC as float32."""
    with av.open(str(path)) as container:
        pcm = np.concatenate([frame.to_ndarray().reshape(-1) for frame in container.decode(audio=0)])
    return pcm.astype(np.float32) / 32768.0


def build() -> npt.NDArray[np.float32]:
    """The demo loop: room noise from the test split with one event of each class."""
    rows = [row for row in csv.DictReader((DATA / "manifest.csv").open()) if row["split"] == "test"]
    room = [DATA / r["path"] for r in rows if r["label"] == "background" and r["source"] == "zalmotek_mssnsd"]
    bed = np.concatenate([read(path) for path in room[:80]])
    out = np.resize(bed, int(LENGTH_S * RATE_HZ)) * np.float32(0.3)
    for label, start_s in EVENTS.items():
        clip = read(DATA / next(r["path"] for r in rows if r["label"] == label))
        start = int(start_s * RATE_HZ)
        out[start : start + clip.size] += clip
    return np.clip(out, -1.0, 1.0)


def write_wav(path: Path, samples: npt.NDArray[np.float32]) -> None:
    """Mono 16-bit WAV through PyAV."""
    pcm = (samples * 32767).astype(np.int16).reshape(1, -1)
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=RATE_HZ, layout="mono")
        frame = av.AudioFrame.from_ndarray(pcm, format="s16", layout="mono")
        frame.sample_rate = RATE_HZ
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.parent.mkdir(parents=True, exist_ok=True)
    write_wav(target, build())
    print(f"demo recording: {target} ({LENGTH_S:.0f} s loop; events at {EVENTS})", file=sys.stderr)
