"""Sounds inside game archives: Doom WADs (DMX sound lumps) and Quake-style .pk3 (zip) files.

Members are named `<archive path>!<member>`, so sources.csv patterns can select them like files.
"""

from __future__ import annotations

from functools import lru_cache
import io
from pathlib import Path
import struct
import wave
import zipfile

ARCHIVE_SUFFIXES = (".wad", ".pk3")
SEPARATOR = "!"


@lru_cache(maxsize=2)
def wad_sounds(path: Path) -> dict[str, bytes]:
    """Sound lumps (`DS*`, DMX format 3: 8-bit unsigned PCM) of a WAD file, as WAV bytes by lump name."""
    data = path.read_bytes()
    if data[:4] not in (b"IWAD", b"PWAD"):
        return {}
    count, directory = struct.unpack_from("<ii", data, 4)
    out = {}
    for index in range(count):
        offset, size, raw_name = struct.unpack_from("<ii8s", data, directory + 16 * index)
        name = raw_name.rstrip(b"\0").decode("ascii", "replace")
        lump = data[offset : offset + size]
        if not name.startswith("DS") or size < 24 or struct.unpack_from("<H", lump)[0] != 3:
            continue
        rate, samples = struct.unpack_from("<HI", lump, 2)
        pcm = lump[8 + 16 : 8 + samples - 16]  # 16 padding bytes at each end
        buffer = io.BytesIO()
        with wave.open(buffer, "wb") as writer:
            writer.setnchannels(1)
            writer.setsampwidth(1)
            writer.setframerate(rate)
            writer.writeframes(pcm)
        out[name] = buffer.getvalue()
    return out


def members(path: Path, audio_suffixes: tuple[str, ...]) -> list[str]:
    """Names of the sounds inside an archive."""
    if path.suffix.lower() == ".wad":
        return sorted(wad_sounds(path))
    with zipfile.ZipFile(path) as archive:
        return sorted(n for n in archive.namelist() if n.lower().endswith(audio_suffixes))


def read_member(path: Path, member: str) -> bytes:
    """The bytes of one sound inside an archive (a WAV for WAD lumps)."""
    if path.suffix.lower() == ".wad":
        return wad_sounds(path)[member]
    with zipfile.ZipFile(path) as archive:
        return archive.read(member)
