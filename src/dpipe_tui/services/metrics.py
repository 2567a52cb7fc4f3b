"""Use case: turn a run's console log (or any saved diffusion-pipe log) into events and a summary.

Why it reads the registry folder by path: ``dpipe-tui metrics`` must also work on a log a user saved
from tmux scrollback, and on a registry written by any version; it needs only ``<run>/console.log``.
The log is streamed through the same :class:`ConsoleParser` the monitor uses, in 1 MiB chunks, so
memory stays flat on multi-GB logs.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui import paths
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.failures import Failure, classify_failure
from dpipe_tui.telemetry.parse import ConsoleParser
from dpipe_tui.telemetry.store import LogTail

if TYPE_CHECKING:
    from collections.abc import Iterator

_CHUNK = 1024 * 1024


class LogNotFound(LookupError):
    """Neither a file nor a run matching the argument exists."""


def resolve_log(target: str, home: Path | None = None) -> Path:
    """Find the console log meant by ``target``.

    Args:
        target: a log file path, a run folder, or a run id / unique id prefix in the registry.
        home: the dpipe-tui home (default: :func:`paths.home`).

    Raises:
        LogNotFound: nothing matches, or a prefix matches several runs.
    """
    path = Path(target).expanduser()
    if path.is_file():
        return path
    if path.is_dir() and (path / "console.log").is_file():
        return path / "console.log"
    runs = paths.runs_dir(home or paths.home())
    if runs.is_dir() and "/" not in target:
        exact = runs / target / "console.log"
        if exact.is_file():
            return exact
        matches = sorted(p.name for p in runs.iterdir() if p.name.startswith(target) and p.is_dir())
        if len(matches) == 1:
            return runs / matches[0] / "console.log"
        if len(matches) > 1:
            raise LogNotFound(f"{target!r} matches {len(matches)} runs: {', '.join(matches[:10])}")
    raise LogNotFound(f"no log file or run {target!r} (registry: {runs})")


def iter_events(path: Path) -> Iterator[Event]:
    """Parse ``path`` chunk by chunk; events are stamped with the file's mtime (the log has no times)."""
    mtime = path.stat().st_mtime
    parser = ConsoleParser(clock=lambda: mtime)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield from parser.feed(chunk)
    yield from parser.flush()


@dataclass(frozen=True, slots=True)
class MetricsSummary:
    """What a log says about its run."""

    log: str
    steps_seen: int
    last_step: int | None
    last_loss: float | None
    steps_per_sec: float | None
    epoch: int | None
    saves: tuple[str, ...]
    checkpoints: tuple[str, ...]
    resumed_at: int | None
    completed: bool
    exit_code: int | None
    warnings: dict[str, int] = field(default_factory=dict)
    failure: Failure | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {k: getattr(self, k) for k in self.__slots__ if k != "failure"}
        out["saves"], out["checkpoints"] = list(self.saves), list(self.checkpoints)
        if self.last_loss is not None and not math.isfinite(self.last_loss):
            out["last_loss"] = str(self.last_loss)
        failure = self.failure
        out["failure"] = (
            None
            if failure is None
            else {"class": failure.cls, "message": failure.message, "hint": failure.hint}
        )
        return out


def summarize(path: Path, events: list[Event], tail_lines: list[str] | None = None) -> MetricsSummary:
    """Summarise a log's events (``tail_lines``: its last lines, read from the file when None)."""
    steps = [e for e in events if e.kind is EventKind.STEP]
    iter_times = [float(e.data["iter_time"]) for e in steps[-200:] if e.get("iter_time")]
    epochs = [int(e.data["epoch"]) for e in events if e.kind is EventKind.EPOCH]
    exits = [e.get("code") for e in events if e.kind is EventKind.EXIT and e.get("code") is not None]
    exit_code = next((int(c) for c in exits if int(c) != 0), 0 if exits else None)
    completed = any(e.kind is EventKind.COMPLETE for e in events)
    resumes = [e for e in events if e.kind is EventKind.RESUME]
    ended = completed or exit_code is not None or any(e.kind is EventKind.ERROR for e in events)
    tail = tail_lines if tail_lines is not None else LogTail(path).last_lines(200)
    failure = classify_failure(exit_code, events, tail) if ended else None
    warnings = Counter(str(e.get("code")) for e in events if e.kind is EventKind.WARNING)
    return MetricsSummary(
        log=str(path),
        steps_seen=len(steps),
        last_step=int(steps[-1].data["step"]) if steps else None,
        last_loss=float(steps[-1].data["loss"]) if steps else None,
        steps_per_sec=1.0 / statistics.median(iter_times) if iter_times else None,
        epoch=max(epochs) if epochs else (1 if steps else None),
        saves=tuple(str(e.get("dir")) for e in events if e.kind is EventKind.SAVE),
        checkpoints=tuple(str(e.get("tag")) for e in events if e.kind is EventKind.CHECKPOINT),
        resumed_at=int(resumes[-1].data["step"]) if resumes else None,
        completed=completed,
        exit_code=exit_code,
        warnings=dict(warnings),
        failure=failure,
    )


def summarize_log(path: Path) -> MetricsSummary:
    """Parse and summarise a log file."""
    return summarize(path, list(iter_events(path)))
