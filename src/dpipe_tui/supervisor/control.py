"""Controls sent to a running engine: ``save``, graceful and hard ``stop``.

Why this order (spec §4.6, §5.5): diffusion-pipe has no signal handler, so a signal loses everything
since the last checkpoint, while the ``save_quit`` file makes it checkpoint and exit cleanly at the
end of the current step. A stop therefore creates ``save_quit`` atomically in the engine's run folder
and waits; only then, or at once with ``--now``, it escalates SIGINT → SIGTERM → SIGKILL to the
**whole process group** (the DeepSpeed runner alone has no handlers and would orphan the ranks), and
finally scans the process table to prove no member of the group is left.
"""

from __future__ import annotations

import dataclasses
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui import fsutil
from dpipe_tui.runs.model import RunRecord, RunState, transition
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.queue import cancel_queued
from dpipe_tui.supervisor.reconcile import liveness, reconcile

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.runs.registry import Registry

GRACEFUL_TIMEOUT_S = 600.0
SIGNAL_STEPS: tuple[tuple[int, float], ...] = (
    (signal.SIGINT, 10.0),
    (signal.SIGTERM, 10.0),
    (signal.SIGKILL, 5.0),
)


class ControlError(RuntimeError):
    """A control cannot be applied to the run in its current state."""


@dataclass(frozen=True, slots=True)
class StopResult:
    """What a stop did.

    Attributes:
        record: the record afterwards.
        graceful: the engine exited through ``save_quit`` (checkpoint saved).
        signals: the signals that had to be sent to the group.
        leftovers: pids of the group still alive at the end (empty on success).
        message: a one-line summary for people.
    """

    record: RunRecord
    graceful: bool
    signals: tuple[str, ...]
    leftovers: tuple[int, ...]
    message: str


def create_signal_file(run_folder: Path, name: str) -> Path:
    """Create ``save``/``save_quit`` atomically (temp + rename: each rank polls on its own, spec §5.5)."""
    path = run_folder / name
    fsutil.atomic_write_text(path, "", mode=0o644)
    return path


def save(registry: Registry, record: RunRecord) -> Path:
    """Ask the engine to write a DeepSpeed checkpoint at the end of the current step.

    Raises:
        ControlError: the run is not running, or its run folder is not known yet (still loading/caching).
    """
    record = reconcile(registry, record)
    if record.state is not RunState.RUNNING:
        raise ControlError(f"run {record.id} is {record.state.value}; save needs a running run")
    if not record.engine_run_dir or not Path(record.engine_run_dir).is_dir():
        raise ControlError(
            f"run {record.id} has no run folder yet (still {record.phase or 'starting'}); try later"
        )
    return create_signal_file(Path(record.engine_run_dir), "save")


def stop(
    registry: Registry,
    record: RunRecord,
    *,
    now: bool = False,
    graceful_timeout: float = GRACEFUL_TIMEOUT_S,
    signal_steps: tuple[tuple[int, float], ...] = SIGNAL_STEPS,
    on_progress: Callable[[str], None] | None = None,
) -> StopResult:
    """Stop a run: dequeue it, or end its engine gracefully then by signals, and verify the group is gone.

    Raises:
        ControlError: the run has already ended.
    """
    say = on_progress or (lambda _msg: None)
    record = reconcile(registry, record)
    if record.state is RunState.QUEUED:
        if cancel_queued(registry, record.id):
            final = registry.load(record.id)
            return StopResult(final, False, (), (), "removed from the queue")
        record = registry.load(record.id)
    if not record.state.is_live:
        raise ControlError(f"run {record.id} is {record.state.value}, not running")
    record = registry.update(record.id, lambda cur: dataclasses.replace(cur, stop_requested=True))
    if record.pid is None:  # the monitor is starting the engine; it honours stop_requested
        procs.wait_until(
            lambda: _reload(registry, record).pid is not None or not _live(registry, record), 15.0
        )
        record = registry.load(record.id)
    graceful = False
    folder = Path(record.engine_run_dir) if record.engine_run_dir else None
    quit_file: Path | None = None
    if not now and folder is not None and folder.is_dir() and procs.is_alive(record.pid, record.pid_started):
        quit_file = create_signal_file(folder, "save_quit")
        say(f"asked {record.id} to checkpoint and quit (save_quit); waiting up to {graceful_timeout:.0f}s")
        # The leader (the DeepSpeed runner) exits after the ranks; stragglers get the signals below.
        graceful = procs.wait_until(
            lambda: not procs.is_alive(record.pid, record.pid_started), graceful_timeout, interval=0.2
        )
    elif not now and record.pid is not None and not procs.is_alive(record.pid, record.pid_started):
        say(f"the engine of {record.id} has already exited; making sure its process group is empty")
    elif not now:
        say(f"{record.id} has no run folder yet (still {record.phase or 'starting'}): stopping with signals")
    sent: list[str] = []
    if graceful:  # give the group a moment to empty; only stragglers get signals
        procs.wait_until(lambda: not procs.group_members(record.pgid), 5.0)
    if procs.group_members(record.pgid):
        for sig, timeout in signal_steps:
            if not procs.group_members(record.pgid):
                break
            sent.append(signal.Signals(sig).name)
            say(f"sending {signal.Signals(sig).name} to process group {record.pgid}")
            procs.signal_group(record.pgid, sig)
            if procs.wait_until(lambda: not procs.group_members(record.pgid), timeout):
                break
    leftovers = tuple(procs.group_members(record.pgid))
    if quit_file is not None and not graceful:
        quit_file.unlink(missing_ok=True)  # a stale save_quit would end the next resume at its first step
    final = reconcile(registry, _await_outcome(registry, record))  # a stuck monitor shows "exiting"
    how = (
        "checkpoint saved (save_quit)"
        if graceful
        else ("signals: " + ", ".join(sent) if sent else "already gone")
    )
    message = f"stopped; {how}" + (
        f"; {len(leftovers)} process(es) still alive: {leftovers}" if leftovers else ""
    )
    return StopResult(final, graceful, tuple(sent), leftovers, message)


def _reload(registry: Registry, record: RunRecord) -> RunRecord:
    return registry.load(record.id)


def _live(registry: Registry, record: RunRecord) -> bool:
    return registry.load(record.id).state.is_live


def _await_outcome(registry: Registry, record: RunRecord, timeout: float = 10.0) -> RunRecord:
    """Let the monitor record ``stopped``; record it here when the monitor is gone."""
    procs.wait_until(
        lambda: not _live(registry, record) or not liveness(_reload(registry, record)).monitor, timeout
    )

    def settle(current: RunRecord) -> RunRecord:
        if not current.state.is_live or liveness(current).monitor:
            return current
        if current.state is RunState.STARTING:
            current = transition(current, RunState.RUNNING)
        return transition(current, RunState.STOPPED, ended_at=time.time(), note="stopped; monitor was gone")

    return registry.update(record.id, settle)
