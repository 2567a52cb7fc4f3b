"""Exporting a saved LoRA: a copy under a readable name with training metadata in its header.

Why: diffusion-pipe writes ``{"format": "pt"}`` as the only safetensors metadata (spec §6), so a
LoRA copied into ComfyUI's ``models/loras`` says nothing about how it was made. An export writes
the metadata kohya/ComfyUI tools read (``ss_*`` keys) plus dpipe-tui's own, into the header only:
the data section is copied byte for byte (tensor offsets are relative to it, so a new header does
not move them) and checked after the copy (SHA-256 of both data sections). The copy is written to a
temp file in the destination folder and renamed, so a failed export leaves nothing half-written, and
an existing file is never overwritten unless asked.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.checkpoints.header import HeaderError, load_header

if TYPE_CHECKING:
    from collections.abc import Mapping

_CHUNK = 8 << 20


class ExportError(Exception):
    """The export cannot be done; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class ExportResult:
    """A finished export."""

    path: Path
    size: int
    data_sha256: str
    """SHA-256 of the tensor data, the same in the source and the copy (checked)."""
    metadata: dict[str, str]


def _data_digest(path: Path, start: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        fh.seek(start)
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def export_file(
    source: Path,
    dest: Path,
    metadata: Mapping[str, str],
    *,
    overwrite: bool = False,
) -> ExportResult:
    """Copy the safetensors file ``source`` to ``dest`` with ``metadata`` merged into its header.

    Keys of ``metadata`` replace the source's; ``format`` stays as it is (loaders check it).

    Raises:
        ExportError: the source is not safetensors, ``dest`` exists (without ``overwrite``), or
            the destination cannot be written; nothing is left at ``dest`` then.
    """
    try:
        header, data_start = load_header(source)
    except HeaderError as exc:
        raise ExportError(str(exc)) from exc
    if dest.exists() and not overwrite:
        raise ExportError(f"{dest} already exists: choose another --name, or add --force to replace it")
    if not dest.parent.is_dir():
        raise ExportError(f"{dest.parent} is not a folder: create it first, or give another --to")
    old = header.get("__metadata__")
    merged: dict[str, str] = {str(k): str(v) for k, v in old.items()} if isinstance(old, dict) else {}
    fmt = merged.get("format")
    merged.update({str(k): str(v) for k, v in metadata.items()})
    if fmt is not None:
        merged["format"] = fmt
    new_header = {"__metadata__": merged, **{k: v for k, v in header.items() if k != "__metadata__"}}
    raw = json.dumps(new_header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the data section starts 8-byte aligned, as safetensors writes it
    source_digest = _data_digest(source, data_start)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise ExportError(f"cannot write in {dest.parent}: {exc.strerror or exc}") from exc
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, open(source, "rb") as src:
            out.write(struct.pack("<Q", len(raw)))
            out.write(raw)
            src.seek(data_start)
            while chunk := src.read(_CHUNK):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        copied = _data_digest(tmp, 8 + len(raw))
        if copied != source_digest:
            raise ExportError(f"the copy's tensor data differs from {source} (disk error?); nothing exported")
        os.chmod(tmp, 0o644)
        os.replace(tmp, dest)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ExportError(f"cannot write {dest}: {exc.strerror or exc}") from exc
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return ExportResult(dest, dest.stat().st_size, source_digest, merged)
