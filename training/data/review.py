"""Spectrogram sheet for reviewing clips by eye: `python -m training.data.review OUT.png FILE...`.

One row per file: the first 3 s, 0-4 kHz (low at the bottom), 10 ms columns, each row scaled to its own
peak (70 dB range). A plain grey PNG written with NumPy and zlib only (no plotting library needed).
"""

from __future__ import annotations

from pathlib import Path
import struct
import sys
import zlib

import numpy as np
import numpy.typing as npt

from training.data.audio_io import SAMPLE_RATE_HZ, decode

SHOWN_S = 3.0
FFT_SIZE = 256
HOP = 80
RANGE_DB = 70.0


def spectrogram_rows(samples: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """(128 frequency rows, 300 time columns) grey image of one clip."""
    columns = int(SHOWN_S * SAMPLE_RATE_HZ) // HOP
    image = np.zeros((FFT_SIZE // 2, columns), np.uint8)
    piece = samples[: int(SHOWN_S * SAMPLE_RATE_HZ)]
    starts = range(0, max(0, piece.size - FFT_SIZE) + 1, HOP)
    frames = [piece[s : s + FFT_SIZE] * np.hanning(FFT_SIZE) for s in starts][:columns]
    if not frames or piece.size < FFT_SIZE:
        return image
    db = 20 * np.log10(np.abs(np.fft.rfft(np.array(frames), axis=1))[:, : FFT_SIZE // 2] + 1e-6)
    grey = np.clip((db - db.max() + RANGE_DB) / RANGE_DB * 255, 0, 255).astype(np.uint8).T[::-1]
    image[:, : grey.shape[1]] = grey
    return image


def write_png(path: Path, image: npt.NDArray[np.uint8]) -> None:
    """8-bit greyscale PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    height, width = image.shape
    raw = b"".join(b"\0" + image[row].tobytes() for row in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def main(argv: list[str] | None = None) -> int:
    """Write the sheet and list its rows."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    out, files = Path(args[0]), [Path(a) for a in args[1:]]
    separator = np.full((3, int(SHOWN_S * SAMPLE_RATE_HZ) // HOP), 255, np.uint8)
    rows = []
    for number, path in enumerate(files, start=1):
        rows += [spectrogram_rows(decode(path)), separator]
        print(f"row {number}: {path}")
    write_png(out, np.vstack(rows))
    print(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
