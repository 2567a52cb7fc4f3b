"""Following a run from any client: incremental reads of ``metrics.jsonl``, ``console.log`` and ``run.json``.

Why byte offsets: a follower (``dpipe-tui run`` in the foreground, ``logs -f``, the TUI's run view)
polls a few times a second for hours; re-reading whole files would grow without bound. Each poll
reads only what was appended since the last one and keeps a trailing partial line for next time, so
a half-appended last line of ``metrics.jsonl`` is never parsed (the monitor may be mid-write).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpipe_tui.runs.registry import RecordError, RunNotFound
from dpipe_tui.supervisor.reconcile import exiting_view, liveness, reconcile
from dpipe_tui.telemetry.events import Event
from dpipe_tui.telemetry.store import ByteTail

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.runs.registry import Registry


class LineTail:
    """Complete lines appended to a file since the last read (from ``offset``), decoded.

    A thin text view of :class:`dpipe_tui.telemetry.store.ByteTail`, the one tail implementation
    (partial lines wait, ``\\r``-only redraw storms cannot stall it, rotation/truncation restart).
    """

    def __init__(self, path: Path, offset: int = 0) -> None:
        """Tail ``path`` starting at byte ``offset``."""
        self.path = path
        self._tail = ByteTail(path, offset)

    @property
    def offset(self) -> int:
        """Byte offset of the next read."""
        return self._tail.offset

    @offset.setter
    def offset(self, value: int) -> None:
        self._tail.offset = value

    def read(self, max_bytes: int = 4 << 20) -> list[str]:
        """Return the new complete lines (a trailing partial line waits for its newline)."""
        return [line.decode("utf-8", errors="replace") for line in self._tail.read_new_lines(max_bytes)]


def last_lines(path: Path, n: int, *, block: int = 64 * 1024) -> tuple[list[str], int]:
    """The last ``n`` complete lines of ``path`` and the file size read up to (for a tail to go on)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            start = size
            data = b""
            while start > 0 and data.count(b"\n") <= n:
                start = max(0, start - block)
                fh.seek(start)
                data = fh.read(size - start)
    except FileNotFoundError:
        return [], 0
    end = data.rfind(b"\n") + 1  # drop a partial last line
    lines = data[:end].split(b"\n")[:-1]
    return [line.decode("utf-8", errors="replace") for line in lines[-n:]] if n > 0 else [], start + end


@dataclass(slots=True)
class FollowUpdate:
    """What changed since the previous poll."""

    record: RunRecord
    events: list[Event] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


class RunFollower:
    """Polls one run; the same object serves the CLI's follow view and the TUI's run view."""

    def __init__(
        self,
        registry: Registry,
        run_id: str,
        *,
        from_start: bool = True,
        console: bool = False,
        console_offset: int | None = None,
        reconcile_every: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Follow ``run_id``; ``from_start`` replays existing events; ``console`` also tails console.log
        (from ``console_offset`` when given, e.g. after showing its last lines)."""
        self.registry = registry
        self.run_id = run_id
        self._metrics = LineTail(registry.metrics(run_id))
        self._console = LineTail(registry.console_log(run_id)) if console else None
        if not from_start:
            self._metrics.offset = _size(registry.metrics(run_id))
            if self._console is not None:
                self._console.offset = _size(registry.console_log(run_id))
        if self._console is not None and console_offset is not None:
            self._console.offset = console_offset
        self._reconcile_every = reconcile_every
        self._clock = clock
        self._last_reconcile = -1e18
        self.record = registry.load(run_id)

    def poll(self) -> FollowUpdate:
        """Read what was appended and the current record (reconciled with the OS every few seconds)."""
        record = self.poll_record()
        events = [e for e in (Event.from_json(line) for line in self._metrics.read()) if e is not None]
        lines = self._console.read() if self._console is not None else []
        return FollowUpdate(record, events, lines)

    def poll_record(self) -> RunRecord:
        """The current record only: re-read, and reconciled with the OS every few seconds."""
        try:
            record = self.registry.load(self.run_id)
        except (RunNotFound, RecordError):
            record = self.record
        now = self._clock()
        if record.state.is_live:
            # Between full reconciles, one psutil check per poll: a dead engine is never shown running.
            alive = liveness(record) if record.pid is not None else None
            if now - self._last_reconcile >= self._reconcile_every or (
                alive is not None and not alive.engine and not alive.monitor
            ):
                self._last_reconcile = now
                record = reconcile(self.registry, record)
            elif alive is not None and not alive.engine:
                record = exiting_view(record)  # the monitor records the outcome within moments
        self.record = record
        return record


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
