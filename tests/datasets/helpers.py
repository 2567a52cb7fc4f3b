"""Writers of small real datasets (Pillow images, captions, a header-only MP4, TOML) for the tests."""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from PIL import Image

if TYPE_CHECKING:
    from pathlib import Path


def write_image(
    path: Path, size: tuple[int, int], caption: str | None = None, fmt: str | None = None
) -> Path:
    """A real image file of ``size`` (w, h), plus a ``.txt`` caption when given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (200, 10, 10)).save(path, format=fmt)
    if caption is not None:
        path.with_suffix(".txt").write_text(caption, encoding="utf-8")
    return path


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def write_mp4(path: Path, *, width: int, height: int, frames: int, fps: int) -> Path:
    """A minimal ISO-BMFF file whose moov box describes one video track (no media data)."""
    tkhd = bytes(4) + bytes(72) + struct.pack(">II", width << 16, height << 16)
    timescale = fps * 100
    mdhd = bytes(4) + bytes(8) + struct.pack(">II", timescale, frames * 100) + bytes(4)
    hdlr = bytes(4) + bytes(4) + b"vide" + bytes(12) + b"\0"
    stsz = bytes(4) + struct.pack(">II", 0, frames)
    stbl = _box(b"stbl", _box(b"stsz", stsz))
    mdia = _box(b"mdia", _box(b"mdhd", mdhd) + _box(b"hdlr", hdlr) + _box(b"minf", stbl))
    moov = _box(b"moov", _box(b"trak", _box(b"tkhd", tkhd) + mdia))
    path.write_bytes(_box(b"ftyp", b"isom" + bytes(4)) + moov)
    return path


def write_toml(path: Path, text: str) -> Path:
    """Write a TOML file and return its path."""
    path.write_text(text, encoding="utf-8")
    return path
