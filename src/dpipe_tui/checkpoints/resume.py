"""Resume points of an engine run folder: ``latest`` and the ``global_stepN`` folders (spec §5.3, §5.6).

Why this care: diffusion-pipe resumes from whatever tag ``<run folder>/latest`` names and fails with a
bare ``AssertionError`` when it is missing (spec §4.5), and no flag selects an older checkpoint. So
the supervisor checks before it launches (``latest`` exists *and* names an existing, complete
``global_stepN``), and resuming from an older checkpoint means rewriting ``latest``. That rewrite is
the very last step of a resume (after every check, so a refused resume changes nothing) and is
atomic; each old value is first appended, with a timestamp, to a history file the caller names (the
run's registry folder: append-only, so a second ``--from`` never loses the original). Rewriting
``latest`` is the only write dpipe-tui makes in an engine's output: nothing is created there, where a
new entry of ``output_dir`` would become diffusion-pipe's "newest run".
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui import fsutil

if TYPE_CHECKING:
    from collections.abc import Iterable

LATEST = "latest"
LATEST_HISTORY = "latest.history"
"""The name of the history file in a run's registry folder."""
_TAG = re.compile(r"^global_step(\d+)$")


class NoCheckpoint(Exception):
    """The run folder has no complete checkpoint to resume from."""


@dataclass(frozen=True, slots=True)
class ResumePoint:
    """One DeepSpeed checkpoint folder."""

    tag: str
    step: int
    path: Path
    complete: bool


def read_latest(run_folder: Path) -> str | None:
    """The tag ``latest`` names (stripped), or None when the file is missing or empty."""
    try:
        tag = (run_folder / LATEST).read_text(encoding="utf-8").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    return tag or None


def _complete(folder: Path) -> bool:
    try:
        return any(n.startswith("mp_rank_") and n.endswith("model_states.pt") for n in os.listdir(folder))
    except OSError:
        return False


def named_folders(
    run_folder: Path | str, pattern: re.Pattern[str]
) -> list[tuple[os.DirEntry[str], re.Match[str]]]:
    """The sub-folders of ``run_folder`` whose names match ``pattern``, with the match (empty when
    the folder cannot be read)."""
    try:
        entries = list(os.scandir(run_folder))
    except OSError:
        return []
    return [(e, m) for e in entries if (m := pattern.match(e.name)) and e.is_dir()]


def resume_points(run_folder: Path) -> list[ResumePoint]:
    """Every ``global_stepN`` folder, by step."""
    points = [
        ResumePoint(entry.name, int(m[1]), Path(entry.path), _complete(Path(entry.path)))
        for entry, m in named_folders(run_folder, _TAG)
    ]
    return sorted(points, key=lambda p: p.step)


def check_resumable(run_folder: Path) -> ResumePoint:
    """Return the checkpoint a resume will load.

    Raises:
        NoCheckpoint: no run folder, no ``latest``, or ``latest`` names a missing/incomplete folder.
    """
    if not run_folder.is_dir():
        raise NoCheckpoint(f"the run folder {run_folder} does not exist (the run never got past loading)")
    tag = read_latest(run_folder)
    if tag is None:
        raise NoCheckpoint(
            f"no checkpoint in {run_folder}: there is no 'latest' file (no global_stepN was saved yet)"
        )
    point = next((p for p in resume_points(run_folder) if p.tag == tag), None)
    if point is None:
        raise NoCheckpoint(f"{run_folder}/latest names {tag!r}, which does not exist")
    if not point.complete:
        raise NoCheckpoint(f"{point.path} is incomplete (no mp_rank_*_model_states.pt)")
    return point


def find_point(run_folder: Path, tag: str) -> ResumePoint:
    """Return checkpoint ``tag`` of ``run_folder`` (a check only: nothing is written).

    Raises:
        NoCheckpoint: ``tag`` is not a complete checkpoint of this run folder.
    """
    if not run_folder.is_dir():
        raise NoCheckpoint(f"the run folder {run_folder} does not exist")
    point = next((p for p in resume_points(run_folder) if p.tag == tag), None)
    if point is None:
        known = ", ".join(p.tag for p in resume_points(run_folder)) or "none"
        raise NoCheckpoint(f"{tag!r} is not a checkpoint of {run_folder} (available: {known})")
    if not point.complete:
        raise NoCheckpoint(f"{point.path} is incomplete (no mp_rank_*_model_states.pt)")
    return point


@dataclass(frozen=True, slots=True)
class LatestChange:
    """What :func:`set_latest` did: ``previous`` is None when ``latest`` already named the tag."""

    point: ResumePoint
    previous: str | None
    history: Path


def set_latest(run_folder: Path, tag: str, history: Path, *, now: float | None = None) -> LatestChange:
    """Point ``latest`` at ``tag`` atomically, first appending its old value to ``history``.

    Call it last, after every other check of a resume has passed. ``history`` gets one
    ``<UTC time>\t<old> -> <new>`` line per change; its folder must exist.

    Raises:
        NoCheckpoint: ``tag`` is not a complete checkpoint of this run folder.
    """
    point = find_point(run_folder, tag)
    previous = read_latest(run_folder)
    if previous == tag:
        return LatestChange(point, None, history)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if now is None else now))
    line = f"{stamp}\t{previous if previous is not None else '(none)'} -> {tag}\n"
    fd = os.open(history, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:  # on disk before latest changes: a crash in between never loses the old value
        os.write(fd, line.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    fsutil.atomic_write_text(run_folder / LATEST, tag, mode=0o644)
    return LatestChange(point, previous, history)


def clear_signal_files(run_folder: Path) -> list[str]:
    """Remove stale ``save``/``save_quit`` files (a stale ``save_quit`` ends the next attempt at once)."""
    removed: list[str] = []
    for name in ("save", "save_quit"):
        try:
            (run_folder / name).unlink()
        except FileNotFoundError:
            continue
        except IsADirectoryError:
            continue
        removed.append(name)
    return removed


def saved_at(run_folders: Iterable[Path | str | None], step: int) -> float | None:
    """When ``global_step<step>`` was written (its folder's mtime) in the first folder that has it.

    After a resume only the checkpoint's step is known from the console; its folder's mtime keeps
    "last checkpoint N minutes ago" honest instead of restarting the clock at the resume.
    """
    for folder in run_folders:
        if folder:
            try:
                return (Path(folder) / f"global_step{step}").stat().st_mtime
            except OSError:
                continue
    return None
