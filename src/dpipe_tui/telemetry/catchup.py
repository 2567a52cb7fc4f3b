"""Catching up with a long ``metrics.jsonl`` without reading it all: the fold and its sidecar.

Why: a reader that opens a run (``status``, the TUI) folds its progress from ``metrics.jsonl``,
which holds millions of lines after a long run. Folding needs every event of a few kinds (epochs,
checkpoints...), the first step and the last few hundred steps (:class:`CatchUp`). Scanning the whole
file for them costs about a second for a million steps, so the monitor, which writes the file,
keeps the fold as it writes and saves it beside the file now and then (``metrics.catchup.json``,
written atomically): the fold of the file up to the start of its recent-steps window. A reader
restores that and reads only from there on: the window and what was appended since.

The sidecar is a hint, never the truth: it records the file's first bytes and the bytes just before
the point it covers, and
a reader that finds it missing, unreadable, for other kinds, or not matching the file (a truncated
or replaced file) scans the whole file as before. A stale sidecar is still right (it covers a
prefix that has not changed; the reader reads the rest). The result is the same either way, event
for event; ``tests/telemetry/test_catchup.py`` checks it, also with a monitor killed mid-write.
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from dpipe_tui.telemetry.events import Event, decode_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

SIDECAR_NAME: Final = "metrics.catchup.json"
SIDECAR_VERSION: Final = 1
_KIND: Final = re.compile(rb'"kind":\s*"([a-z_]+)"')
_KIND_WITHIN: Final = 96
"""``Event.to_json`` writes ``t`` then ``kind``: the kind sits within the line's first bytes."""
_CHECK_BYTES: Final = 256


def sidecar_path(metrics: Path) -> Path:
    """Where the catch-up sidecar of ``metrics`` lives (beside it)."""
    return Path(metrics).with_name(SIDECAR_NAME)


class CatchUp:
    """What a catch-up keeps of ``metrics.jsonl``, folded line by line.

    Args:
        kinds: kinds kept wherever they are.
        recent_kind: the bulk kind (``step``) of which only the first and the last ``recent`` count.
        recent: how many of the last ``recent_kind`` events to keep.
    """

    def __init__(self, kinds: Iterable[str], *, recent_kind: str, recent: int) -> None:
        self.kinds = frozenset(kinds)
        self.recent_kind = recent_kind
        self.recent = max(recent, 0)
        self._wanted = {k.encode() for k in self.kinds}
        self._bulk = recent_kind.encode()
        self.index = 0
        """Events seen (lines with a kind)."""
        self.offset = 0
        """Bytes of the file folded so far (always at a line boundary)."""
        self.exact = True
        """False once a line's bytes could not be accounted for: no sidecar is written then."""
        self._first: list[tuple[int, bytes]] = []
        self._kept: list[tuple[int, bytes]] = []
        self._window: deque[tuple[int, int, bytes]] = deque(maxlen=self.recent)

    def add(self, lines: Iterable[bytes]) -> None:
        """Fold complete lines (without their newline) that follow what was folded so far."""
        wanted, bulk, window, first = self._wanted, self._bulk, self._window, self._first
        offset, index = self.offset, self.index
        for raw in lines:
            start = offset
            offset += len(raw) + 1
            match = _KIND.search(raw, 0, _KIND_WITHIN)
            if match is None:
                continue
            index += 1
            kind = match.group(1)
            if kind == bulk:
                if first:
                    if self.recent:
                        window.append((index, start, raw))
                else:
                    first.append((index, raw))
            elif kind in wanted:
                self._kept.append((index, raw))
        self.offset, self.index = offset, index

    def events(self) -> list[Event]:
        """The kept events in file order."""
        merged = sorted([*self._first, *self._kept, *((i, raw) for i, _, raw in self._window)])
        return decode_lines(raw for _, raw in merged)

    # -- the sidecar --------------------------------------------------------------------------
    def state(self, head: bytes, start: bytes) -> dict[str, Any] | None:
        """The sidecar: the fold up to the window's first line.

        Args:
            head: the file's bytes just before :meth:`resume_point` (at most the last 256 used).
            start: the file's first bytes (up to 256, not past the resume point).
        """
        if not self.exact:
            return None
        index, offset = self.resume_point()
        return {
            "version": SIDECAR_VERSION,
            "kinds": sorted(self.kinds),
            "recent_kind": self.recent_kind,
            "recent": self.recent,
            "offset": offset,
            "index": index,
            "check": base64.b64encode(head[-_CHECK_BYTES:]).decode("ascii"),
            "start": base64.b64encode(start).decode("ascii"),
            "first": [[i, raw.decode("utf-8", "replace")] for i, raw in self._first if i <= index],
            "kept": [[i, raw.decode("utf-8", "replace")] for i, raw in self._kept if i <= index],
        }

    def resume_point(self) -> tuple[int, int]:
        """(events, bytes) before the window's first line: where a reader restarts its scan."""
        if self._window:
            index, start, _ = self._window[0]
            return index - 1, start
        return self.index, self.offset

    def restore(self, state: dict[str, Any]) -> bool:
        """Take a sidecar's fold (this object must be fresh); False when it is not for this fold."""
        try:
            if (
                state.get("version") != SIDECAR_VERSION
                or frozenset(state["kinds"]) != self.kinds
                or state["recent_kind"] != self.recent_kind
                or state["recent"] != self.recent
            ):
                return False
            offset, index = int(state["offset"]), int(state["index"])
            first = [(int(i), str(raw).encode()) for i, raw in state["first"]]
            kept = [(int(i), str(raw).encode()) for i, raw in state["kept"]]
        except (KeyError, TypeError, ValueError, AttributeError):
            return False
        if offset < 0 or index < 0:
            return False
        self.offset, self.index, self._first, self._kept = offset, index, first, kept
        return True


def read_sidecar(metrics: Path, fold: CatchUp) -> bool:
    """Restore ``fold`` from the sidecar of ``metrics`` when it matches the file; else leave it fresh."""
    try:
        state = json.loads(sidecar_path(metrics).read_text(encoding="utf-8"))
        check = base64.b64decode(state["check"], validate=True)
        start = base64.b64decode(state["start"], validate=True)
        offset = int(state["offset"])
    except (OSError, ValueError, KeyError, TypeError, UnicodeDecodeError):
        return False
    if not isinstance(state, dict) or offset < len(check) or offset < len(start):
        return False
    try:
        with open(metrics, "rb") as fh:
            if os.fstat(fh.fileno()).st_size < offset:
                return False
            if fh.read(len(start)) != start:
                return False
            fh.seek(offset - len(check))
            if fh.read(len(check)) != check:
                return False
    except OSError:
        return False
    if offset and not check.endswith(b"\n"):
        return False
    return fold.restore(state)


def write_sidecar(
    metrics: Path, fold: CatchUp, *, before_replace: Callable[[Path], None] | None = None
) -> bool:
    """Save ``fold`` beside ``metrics`` atomically (temp file, then rename); False when it cannot.

    Args:
        before_replace: test hook, called with the written temp file just before the rename.
    """
    index, offset = fold.resume_point()
    del index
    try:
        with open(metrics, "rb") as fh:
            start = fh.read(min(offset, _CHECK_BYTES))
            fh.seek(max(0, offset - _CHECK_BYTES))
            head = fh.read(offset - max(0, offset - _CHECK_BYTES))
    except OSError:
        return False
    state = fold.state(head, start)
    if state is None:
        return False
    dest = sidecar_path(metrics)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # private, as metrics.jsonl
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(state, separators=(",", ":")))
        if before_replace is not None:
            before_replace(tmp)
        os.replace(tmp, dest)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True
