"""Crash-safe file writes shared by every package that writes state.

Why: a reader (the TUI, the CLI, another monitor) may read any file at any moment, and a writer may
be killed at any moment. So a file is either its old content or its new content, never half of
each: write a temp file in the same directory, fsync, then ``os.replace``. Files are created 0600
because the registry may sit on a shared GPU server (design.md).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, *, mode: int = 0o600, fsync: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically.

    Args:
        path: the destination; its directory must exist.
        data: the full new content.
        mode: permission bits of the new file.
        fsync: flush to disk before the rename (turn off only for throwaway files).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise


def atomic_write_text(path: Path, text: str, *, mode: int = 0o600, fsync: bool = True) -> None:
    """Replace ``path`` with ``text`` (UTF-8) atomically; see :func:`atomic_write_bytes`."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode, fsync=fsync)
