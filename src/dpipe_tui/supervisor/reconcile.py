"""Reconciliation: a record is shown as live only when the OS confirms it.

Why on every read: the registry is written by monitors that may be killed (kill -9, OOM killer,
reboot) before they record anything. Each listing therefore checks the engine's group leader and the
monitor by pid *and* start time. Engine alive: the record stands. Engine gone but monitor alive: the
monitor is recording the outcome; give it a moment (it notices within a fraction of a second). If it
still has not after that (a monitor that is stopped, swapping, or starved of CPU), the reader shows
the run as ``exiting`` (a view, never stored: the monitor is alive and will record the true outcome),
never as ``running``. Both gone: nobody will ever record the end, so the reader records ``lost`` (or
``failed`` when an exit code had been recorded) itself, under the run's lock.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpipe_tui.runs.model import RunRecord, RunState, transition
from dpipe_tui.runs.registry import RecordError, Registry, RunNotFound
from dpipe_tui.supervisor import procs

if TYPE_CHECKING:
    from collections.abc import Callable

MONITOR_GRACE_S = 2.0
SPAWN_GRACE_S = 30.0


@dataclass(frozen=True, slots=True)
class Liveness:
    """What the OS says about a run's processes right now."""

    engine: bool
    monitor: bool


def liveness(record: RunRecord) -> Liveness:
    """Check the engine's group leader and the monitor (pid + start time)."""
    return Liveness(
        engine=procs.is_alive(record.pid, record.pid_started),
        monitor=procs.is_alive(record.monitor_pid, record.monitor_started),
    )


def reconcile(
    registry: Registry,
    record: RunRecord,
    *,
    clock: Callable[[], float] = time.time,
    monitor_grace: float = MONITOR_GRACE_S,
) -> RunRecord:
    """Return ``record`` as the OS sees it, recording ``lost``/``failed`` when nobody else can.

    Args:
        registry: where the record lives (re-read and written under its lock).
        record: the record as last read.
        clock: unix time source.
        monitor_grace: seconds to wait for a live monitor to record an engine's exit.
    """
    if not record.state.is_live:
        return record
    alive = liveness(record)
    if alive.engine:
        return record
    if alive.monitor:
        if record.pid is None:
            return record  # the monitor is still starting the engine
        # The engine is gone; its monitor records the outcome within moments.
        outcome, latest = _wait_for_outcome(registry, record, monitor_grace)
        if outcome is not None:
            return outcome
        alive = liveness(latest)
        if alive.monitor:
            return exiting_view(latest)
        record = latest
    if record.monitor_pid is None and clock() - (record.started_at or record.queued_at) < SPAWN_GRACE_S:
        return record  # a dispatcher has just marked it starting and is spawning the monitor

    def settle(current: RunRecord) -> RunRecord:
        if not current.state.is_live or liveness(current).engine or liveness(current).monitor:
            return current
        young = clock() - (current.started_at or current.queued_at) < SPAWN_GRACE_S
        if current.pid is None and current.monitor_pid is None and young:
            return current
        now = clock()
        if current.exit_code is not None:
            return transition(
                current,
                RunState.FAILED,
                ended_at=current.ended_at or now,
                failure_class=current.failure_class or "exit_code",
                failure_message=current.failure_message or f"Exited with code {current.exit_code}.",
            )
        return transition(
            current,
            RunState.LOST,
            ended_at=now,
            failure_class="lost",
            failure_message="Neither the engine nor its monitor is running any more, and no exit was "
            "recorded (reboot, or kill -9 of the monitor and the engine).",
            failure_hint="Check the console log; resume from the last checkpoint if one exists.",
        )

    try:
        return registry.update(record.id, settle)
    except (RunNotFound, RecordError):
        return record


def exiting_view(record: RunRecord) -> RunRecord:
    """``record`` as shown while its engine is gone and its live monitor has not recorded the end.

    The result is never stored (``Registry.save`` refuses it): the monitor records the real outcome.
    """
    return dataclasses.replace(
        record,
        state=RunState.EXITING,
        note=f"the engine has exited; its monitor (pid {record.monitor_pid}) has not recorded the "
        "outcome yet (is it stopped or starved of CPU?)",
    )


def _wait_for_outcome(
    registry: Registry, record: RunRecord, timeout: float
) -> tuple[RunRecord | None, RunRecord]:
    """Poll until the monitor records an outcome: (the outcome or None, the latest record read)."""
    latest = record
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            current = registry.load(record.id)
        except (RunNotFound, RecordError):
            return None, latest
        latest = current
        # an ended attempt, or a new one the monitor started since (auto-resume) is the answer
        if not current.state.is_live or (current.attempt, current.pid) != (record.attempt, record.pid):
            return current, latest
        time.sleep(0.05)
    return None, latest


def reconcile_all(registry: Registry) -> list[RunRecord]:
    """Load and reconcile every readable record (problems are skipped; see ``Registry.scan``)."""
    records, _ = registry.scan()
    return [reconcile(registry, r) for r in records]
