"""The run registry on disk: one private folder per run, ``run.json`` replaced atomically.

Why files and not a database: every client (TUI, CLI, monitors of other runs) is a separate process
that may die at any moment; a folder per run with an atomically replaced record needs no server,
survives any crash (a reader sees the old or the new record, never half), and is readable with
``cat``. Read-modify-write of one record happens under a per-run ``fcntl`` lock so that a monitor
recording the exit and a ``stop`` recording the request never lose each other's change.
A corrupt or missing ``run.json`` is reported as a :class:`RegistryProblem`, never raised from a
listing: one bad folder must not hide the other runs.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpipe_tui import fsutil, paths
from dpipe_tui.runs.model import RecordError, RunRecord

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

log = logging.getLogger(__name__)

RUN_JSON = "run.json"
CONSOLE_LOG = "console.log"
METRICS = "metrics.jsonl"
MONITOR_PID = "monitor.pid"
MONITOR_LOG = "monitor.log"
LOCK_FILE = ".lock"
ATTEMPT_LOCK_FILE = ".attempt.lock"


class RunNotFound(LookupError):
    """No run matches the given id or prefix."""


class AmbiguousRun(LookupError):
    """More than one run matches a prefix."""

    def __init__(self, prefix: str, candidates: list[str]) -> None:
        super().__init__(f"{prefix!r} matches {len(candidates)} runs: {', '.join(candidates)}")
        self.candidates = candidates


@dataclass(frozen=True, slots=True)
class RegistryProblem:
    """A run folder whose record cannot be read."""

    run_id: str
    path: Path
    message: str


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created 0600) for the ``with`` block.

    ``flock`` locks die with their process, so a writer killed while holding one never wedges others.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Registry:
    """Access to ``<home>/runs``; every method re-reads the disk (no cache, clients are stateless)."""

    def __init__(self, home: Path) -> None:
        """Open (not create) the registry under the dpipe-tui home ``home``."""
        self.home = home
        self.root = paths.runs_dir(home)

    # -- paths -----------------------------------------------------------------------------------
    def run_dir(self, run_id: str) -> Path:
        """Folder of run ``run_id``."""
        return self.root / run_id

    def console_log(self, run_id: str) -> Path:
        """The merged stdout/stderr of every attempt."""
        return self.run_dir(run_id) / CONSOLE_LOG

    def metrics(self, run_id: str) -> Path:
        """Parsed telemetry events, one JSON object a line."""
        return self.run_dir(run_id) / METRICS

    def lock_path(self, name: str) -> Path:
        """A lock file in the private state dir (e.g. ``queue.lock``)."""
        return paths.ensure_private_dir(paths.state_dir(self.home)) / name

    # -- records ---------------------------------------------------------------------------------
    def create(self, record: RunRecord) -> Path:
        """Create the run's private folder with its first record, atomically.

        The folder is assembled under a hidden name and renamed into place, so a concurrent listing
        never sees a run folder without ``run.json``.

        Raises:
            FileExistsError: a run with this id exists already.
        """
        paths.ensure_private_dir(self.root)
        run_dir = self.run_dir(record.id)
        _refuse_view(record)
        if run_dir.exists():
            raise FileExistsError(run_dir)
        staging = self.root / f".new-{record.id}"
        staging.mkdir(mode=0o700)
        try:
            for name in (CONSOLE_LOG, METRICS):  # present from the start, so `logs -f` can follow at once
                os.close(os.open(staging / name, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
            text = json.dumps(record.to_json_dict(), indent=2, sort_keys=True) + "\n"
            fsutil.atomic_write_text(staging / RUN_JSON, text)
            os.rename(staging, run_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return run_dir

    def save(self, record: RunRecord) -> None:
        """Replace ``run.json`` atomically (temp file, fsync, rename).

        Raises:
            ValueError: ``record`` is a reader's view (state ``exiting``), not a storable record.
        """
        _refuse_view(record)
        text = json.dumps(record.to_json_dict(), indent=2, sort_keys=True) + "\n"
        fsutil.atomic_write_text(self.run_dir(record.id) / RUN_JSON, text)

    def load(self, run_id: str) -> RunRecord:
        """Read one record.

        Raises:
            RunNotFound: no such run folder or no ``run.json``.
            RecordError: ``run.json`` is not valid JSON or not a record.
        """
        path = self.run_dir(run_id) / RUN_JSON
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunNotFound(run_id) from None
        except OSError as exc:
            raise RecordError(f"{path}: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise RecordError(f"{path}: not valid JSON ({exc})") from exc
        if not isinstance(data, dict):
            raise RecordError(f"{path}: not a JSON object")
        try:
            return RunRecord.from_json_dict(data)
        except RecordError as exc:
            raise RecordError(f"{path}: {exc}") from exc

    @contextlib.contextmanager
    def locked(self, run_id: str) -> Iterator[None]:
        """Hold the run's record lock (for read-modify-write sequences)."""
        with file_lock(self.run_dir(run_id) / LOCK_FILE):
            yield

    @contextlib.contextmanager
    def attempt_locked(self, run_id: str) -> Iterator[None]:
        """Hold the lock that serialises starting a new attempt (a client's resume, the monitor's
        auto-resume): longer than a record update and taken outside it, so the record lock stays free."""
        with file_lock(self.run_dir(run_id) / ATTEMPT_LOCK_FILE):
            yield

    def update(self, run_id: str, change: Callable[[RunRecord], RunRecord]) -> RunRecord:
        """Re-read the record under its lock, apply ``change`` and write the result if it differs."""
        with self.locked(run_id):
            current = self.load(run_id)
            new = change(current)
            if new != current:
                self.save(new)
            return new

    def ids(self) -> list[str]:
        """Ids of every run folder, oldest first (ids start with a timestamp)."""
        try:
            entries = [e for e in os.scandir(self.root) if e.is_dir() and not e.name.startswith(".")]
        except FileNotFoundError:
            return []
        return sorted(e.name for e in entries)

    def scan(self) -> tuple[list[RunRecord], list[RegistryProblem]]:
        """Load every record; unreadable ones come back as problems, not exceptions."""
        records: list[RunRecord] = []
        problems: list[RegistryProblem] = []
        for run_id in self.ids():
            try:
                records.append(self.load(run_id))
            except RunNotFound:
                problems.append(RegistryProblem(run_id, self.run_dir(run_id), "run.json is missing"))
            except RecordError as exc:
                problems.append(RegistryProblem(run_id, self.run_dir(run_id), str(exc)))
        records.sort(key=lambda r: (r.created_at, r.id))
        return records, problems

    def resolve(self, prefix: str) -> str:
        """Return the one run id starting with ``prefix`` (an exact id always wins).

        Raises:
            RunNotFound: nothing matches.
            AmbiguousRun: several runs match.
        """
        ids = self.ids()
        if prefix in ids:
            return prefix
        matches = [i for i in ids if i.startswith(prefix)] if prefix else []
        if not matches:
            raise RunNotFound(f"no run matches {prefix!r}")
        if len(matches) > 1:
            raise AmbiguousRun(prefix, matches)
        return matches[0]

    def delete(self, run_id: str) -> None:
        """Remove a run folder and everything in it (callers check that the run is not live)."""
        shutil.rmtree(self.run_dir(run_id))


def _refuse_view(record: RunRecord) -> None:
    if record.state.is_view_only:
        raise ValueError(
            f"run {record.id}: state {record.state.value!r} is a reader's view and is never stored "
            "(update the record read from disk instead)"
        )


__all__ = [
    "AmbiguousRun",
    "RecordError",
    "Registry",
    "RegistryProblem",
    "RunNotFound",
    "file_lock",
]
