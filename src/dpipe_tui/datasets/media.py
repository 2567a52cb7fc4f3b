"""Header-only probes of media files: size, aspect and frame count without decoding pixels.

Why: a pre-flight scan must be fast on 10k-image folders over SSH, and must never pull in the heavy
video stack (PyAV/ComfyUI) diffusion-pipe uses. Images are opened with Pillow, which parses only the
header until ``load()`` is called (we never call it). Videos in the ISO-BMFF family (mp4/mov/m4v/3gp)
are probed by walking their ``moov`` box for the video track's size, sample count and duration; other
containers are reported as videos with unknown frame counts.

The extension rules mirror diffusion-pipe: which suffixes are skipped, and which count as video
(imageio's ``video_extensions``, lower- or upper-case, as utils/common.py builds them).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from PIL import Image

SKIPPED_SUFFIXES = frozenset({".txt", ".npz", ".json", ".parquet", ".bak", ".db"})
"""Suffixes diffusion-pipe never treats as media (case-sensitive, as in its code)."""

_VIDEO_EXT = (  # noqa: SIM905  (a word list reads better than 116 quoted strings)
    ".264 .265 .3g2 .3gp .a64 .A64 .adp .amr .amv .asf .avc .avi .avr .avs .avs2 .avs3 .bmv .cavs "
    ".cdg .cdxl .cgi .chk .cif .cpk .dat .dav .dif .dnxhd .dnxhr .drc .dv .dvd .f4v .flm .flv .gsm "
    ".gxf .h261 .h263 .h264 .h265 .h26l .hevc .idf .ifv .imx .ipu .ism .isma .ismv .ivf .ivr .j2k "
    ".kux .lvf .m1v .m2t .m2ts .m2v .m4a .m4b .m4v .mj2 .mjpeg .mjpg .mk3d .mka .mks .mkv .mods "
    ".moflex .mov .mp4 .mpc .mpd .mpeg .mpg .mpo .mts .mvi .mxf .mxg .nut .obu .ogg .ogv .psp .qcif "
    ".rcv .rgb .rm .roq .sdr2 .ser .sga .svag .svs .ts .ty .ty+ .v .v210 .vb .vc1 .vc2 .viv .vob "
    ".webm .wmv .wtv .xl .xmv .y4m .yop .yuv .yuv10"
).split()
VIDEO_SUFFIXES = frozenset(_VIDEO_EXT) | frozenset(e.upper() for e in _VIDEO_EXT)
"""imageio's video extensions plus their upper-case forms (diffusion-pipe's VIDEO_EXTENSIONS)."""

_BMFF_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".3gp", ".3g2", ".f4v", ".mj2", ".ismv"})
_CONTAINERS = frozenset({b"moov", b"trak", b"mdia", b"minf", b"stbl"})

MediaKind = Literal["image", "video"]


@dataclass(frozen=True)
class MediaInfo:
    """What a header says about one media file."""

    kind: MediaKind
    width: int | None
    """Pixels; None for a video whose container the probe does not read."""
    height: int | None
    frames: int | None
    """Source frames (1 for images); None when unknown."""
    fps: float | None
    """Source frame rate; None for images or when unknown."""
    n_frames_image: int = 1
    """Frames Pillow reports (a multi-frame WebP is an animation diffusion-pipe refuses)."""


class MediaError(Exception):
    """The file could not be opened as media (diffusion-pipe skips it with a warning)."""


def is_video_suffix(suffix: str) -> bool:
    """True when diffusion-pipe treats a file with this suffix as video."""
    return suffix in VIDEO_SUFFIXES


def probe(name: str, fp: IO[bytes] | Path) -> MediaInfo:
    """Read the header of one media item.

    Args:
        name: the item's file name (its suffix decides image vs video).
        fp: a path, or an open binary file (e.g. a ``.tar`` member).

    Raises:
        MediaError: the header cannot be parsed.
    """
    suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
    if is_video_suffix(suffix):
        if suffix.lower() in _BMFF_SUFFIXES:
            return _probe_bmff(fp)
        return MediaInfo("video", None, None, None, None)
    try:
        with Image.open(fp) as im:  # lazy: parses the header only; pixels are never loaded
            width, height = im.size
            n = int(getattr(im, "n_frames", 1)) if suffix == ".webp" else 1
    except Exception as e:  # Pillow raises many types; diffusion-pipe catches Exception too
        raise MediaError(f"{type(e).__name__}: {e}") from e
    return MediaInfo("image", width, height, 1, None, n)


def _probe_bmff(fp: IO[bytes] | Path) -> MediaInfo:
    try:
        if isinstance(fp, Path):
            with fp.open("rb") as f:
                return _walk_moov(f)
        return _walk_moov(fp)
    except OSError as e:
        raise MediaError(f"{type(e).__name__}: {e}") from e
    except (struct.error, ValueError, IndexError):
        # Fragmented or unusual files: PyAV may still read them, so "unknown", not "unreadable".
        return MediaInfo("video", None, None, None, None)


def _boxes(f: IO[bytes], end: int | None) -> list[tuple[bytes, int, int]]:
    """(type, payload start, payload end) of the boxes from the current offset to ``end``."""
    out: list[tuple[bytes, int, int]] = []
    pos = f.tell()
    while end is None or pos + 8 <= end:
        f.seek(pos)
        head = f.read(8)
        if len(head) < 8:
            break
        size, kind = struct.unpack(">I4s", head)
        start = pos + 8
        if size == 1:
            size = struct.unpack(">Q", f.read(8))[0]
            start += 8
        elif size == 0:
            f.seek(0, 2)
            size = f.tell() - pos
        if size < 8:
            raise ValueError("corrupt box size")
        out.append((kind, start, pos + size))
        pos += size
    return out


def _walk_moov(f: IO[bytes]) -> MediaInfo:
    f.seek(0)
    tracks: list[dict[str, float]] = []

    def visit(start: int, end: int | None, track: dict[str, float] | None) -> None:
        f.seek(start)
        for kind, s, e in _boxes(f, end):
            if kind == b"trak":
                track = {}
                tracks.append(track)
            if kind in _CONTAINERS:
                visit(s, e, track)
            elif track is not None:
                _read_leaf(f, kind, s, track)

    visit(0, None, None)
    for t in tracks:
        if t.get("video") and t.get("samples"):
            fps = t["samples"] / (t["duration"] / t["timescale"]) if t.get("duration") else None
            return MediaInfo("video", int(t["width"]), int(t["height"]), int(t["samples"]), fps)
    raise ValueError("no video track in the container header")


def _read_leaf(f: IO[bytes], kind: bytes, start: int, track: dict[str, float]) -> None:
    f.seek(start)
    if kind == b"tkhd":
        version = f.read(1)[0]
        f.seek(start + (84 if version == 1 else 72) + 4)
        w, h = struct.unpack(">II", f.read(8))
        track["width"], track["height"] = w >> 16, h >> 16
    elif kind == b"mdhd":
        version = f.read(1)[0]
        if version == 1:
            f.seek(start + 20)
            track["timescale"], track["duration"] = struct.unpack(">IQ", f.read(12))
        else:
            f.seek(start + 12)
            track["timescale"], track["duration"] = struct.unpack(">II", f.read(8))
    elif kind == b"hdlr":
        f.seek(start + 8)
        track["video"] = float(f.read(4) == b"vide")
    elif kind == b"stsz":
        f.seek(start + 8)
        track["samples"] = struct.unpack(">I", f.read(4))[0]
