"""Read each profile file once: the bytes a launch validates are the bytes it freezes.

Why: a launch reads the main profile, its dataset config and its eval dataset configs several times
(the ``[dpipe_tui]`` table, validation, the dataset plan, the frozen copies). Read from disk each
time, an editor's save in between would freeze bytes nobody validated. A :class:`SourceSnapshot`
reads each file once, on first use, and serves the same text to every later reader of the launch.

It also refuses what must never be parsed: a directory, a FIFO or device (reading one would block
forever), a file over :data:`MAX_BYTES`, bytes that are not UTF-8 — each as an ``OSError`` or
``UnicodeDecodeError`` with a message that names the file, which every caller already reports as
"cannot read the file".
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

MAX_BYTES = 16 * 1024 * 1024
"""Profiles are a few KiB; anything this big is not one (and would stall the validator)."""


def read_profile_text(path: Path) -> str:
    """One profile file's text, refusing what is not a small regular UTF-8 file.

    Raises:
        OSError: missing, unreadable, not a regular file, or too big (``strerror`` says which).
        UnicodeDecodeError: not UTF-8 text.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open either
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = "a directory" if stat.S_ISDIR(info.st_mode) else "not a regular file"
            raise OSError(0, f"{kind}; a profile is a TOML file", str(path))
        if info.st_size > MAX_BYTES:
            raise OSError(0, f"{info.st_size / 2**20:.0f} MiB is too big for a profile", str(path))
        with os.fdopen(fd, "rb", closefd=False) as fh:
            raw = fh.read(MAX_BYTES + 1)
    finally:
        os.close(fd)
    return raw.decode("utf-8")


class SourceSnapshot:
    """Texts of profile files, each read from disk at most once (keyed by the resolved path)."""

    def __init__(self) -> None:
        """An empty snapshot; files are read on first use."""
        self.texts: dict[Path, str] = {}

    def read(self, path: Path) -> str:
        """The file's text as first read (same exceptions as :func:`read_profile_text`)."""
        key = Path(path).expanduser().resolve()
        if key not in self.texts:
            self.texts[key] = read_profile_text(key)
        return self.texts[key]
