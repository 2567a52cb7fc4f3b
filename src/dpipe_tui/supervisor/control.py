"""Controls sent to a running engine: ``save``, and the stop request.

Why a request and not the stop itself: the client that asks (``dpipe-tui stop``, the TUI) may be
killed at any moment, so it only records the request in the registry; the run's monitor, alive when
no client is, carries the escalation (:mod:`dpipe_tui.supervisor.escalation`: save_quit, a wait, then
SIGINT → SIGTERM → SIGKILL to the whole group) and records each step as a ``stop`` event. A client
may follow those events until the run has ended. Only when the monitor itself is gone does the client
carry the same escalation.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.runs.model import RunRecord, RunState, transition
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.escalation import (
    GRACEFUL_TIMEOUT_S,
    SIGNAL_STEPS,
    Escalation,
    create_signal_file,
    describe,
    run_to_end,
)
from dpipe_tui.supervisor.follow import RunFollower
from dpipe_tui.supervisor.queue import cancel_queued
from dpipe_tui.supervisor.reconcile import liveness, reconcile
from dpipe_tui.telemetry.events import EventKind

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.runs.registry import Registry


class ControlError(RuntimeError):
    """A control cannot be applied to the run in its current state."""


class NotReady(ControlError):
    """The run cannot take the control yet (no run folder while it loads); try again later."""


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


def save(registry: Registry, record: RunRecord) -> Path:
    """Ask the engine to write a DeepSpeed checkpoint at the end of the current step.

    Raises:
        ControlError: the run is not running, or its run folder is not known yet (still loading/caching).
    """
    record = reconcile(registry, record)
    if record.state is not RunState.RUNNING:
        raise ControlError(f"run {record.id} is {record.state.value}; save needs a running run")
    if not record.engine_run_dir or not Path(record.engine_run_dir).is_dir():
        raise NotReady(f"run {record.id} has no run folder yet (still {record.phase or 'starting'})")
    return create_signal_file(Path(record.engine_run_dir), "save")


def request_stop(
    registry: Registry,
    record: RunRecord,
    *,
    now: bool = False,
    graceful_timeout: float | None = None,
    signal_steps: tuple[tuple[int, float], ...] | None = None,
) -> RunRecord:
    """Record a stop request and return at once; the run's monitor carries it out.

    A queued run is simply removed from the queue. A second request with ``now`` escalates a
    graceful stop that is still waiting for its checkpoint.

    Raises:
        ControlError: the run has already ended.
    """
    record = reconcile(registry, record)
    if record.state is RunState.QUEUED and cancel_queued(registry, record.id):
        return registry.load(record.id)
    record = registry.load(record.id) if record.state is RunState.QUEUED else record
    if not record.state.is_live:
        raise ControlError(f"run {record.id} is {record.state.value}, not running")

    def ask(current: RunRecord) -> RunRecord:
        return dataclasses.replace(
            current,
            stop_requested=True,
            stop_now=current.stop_now or now,
            stop_timeout_s=graceful_timeout if graceful_timeout is not None else current.stop_timeout_s,
            stop_signal_waits=(
                tuple(wait for _, wait in signal_steps) if signal_steps else current.stop_signal_waits
            ),
            stop_requested_at=current.stop_requested_at or time.time(),
        )

    return registry.update(record.id, ask)


def stop(
    registry: Registry,
    record: RunRecord,
    *,
    now: bool = False,
    graceful_timeout: float | None = None,
    signal_steps: tuple[tuple[int, float], ...] | None = None,
    on_progress: Callable[[str], None] | None = None,
    wait: bool = True,
) -> StopResult:
    """Stop a run: request it, then (``wait``) follow the registry until the run has ended.

    The run's monitor carries the stop (save_quit, wait, signals to the group) and records each step
    as a ``stop`` event, which is reported through ``on_progress``; killing this client never leaves
    the run half-stopped. When no monitor is alive (it was killed while the engine runs on), this
    client carries the same escalation itself.

    Raises:
        ControlError: the run has already ended.
    """
    say = on_progress or (lambda _msg: None)
    current = reconcile(registry, record)
    if current.state is RunState.QUEUED and cancel_queued(registry, current.id):
        return StopResult(registry.load(current.id), False, (), (), "removed from the queue")
    follower = RunFollower(registry, current.id, from_start=False)  # before the request: no step is missed
    requested = request_stop(
        registry, current, now=now, graceful_timeout=graceful_timeout, signal_steps=signal_steps
    )
    if not wait or not requested.state.is_live:
        return StopResult(requested, False, (), (), "stop requested")
    steps = signal_steps or SIGNAL_STEPS
    timeout = (graceful_timeout or GRACEFUL_TIMEOUT_S) + sum(w for _, w in steps) + 60.0
    done = _follow(registry, follower, say, timeout)
    if done is None and _live(registry, requested) and not liveness(_reload(registry, requested)).monitor:
        done = _stop_without_monitor(
            registry, _reload(registry, requested), now, graceful_timeout, steps, say
        )
    final = reconcile(registry, _await_outcome(registry, requested))
    if done is None:  # the monitor ended it without a final step (the engine was already gone)
        done = {"graceful": False, "signals": [], "leftovers": list(procs.group_members(final.pgid))}
    signals = tuple(str(s) for s in _items(done.get("signals")))
    leftovers = tuple(int(str(p)) for p in _items(done.get("leftovers")))
    graceful = bool(done.get("graceful"))
    return StopResult(final, graceful, signals, leftovers, describe(graceful, signals, leftovers))


def _items(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def _follow(
    registry: Registry, follower: RunFollower, say: Callable[[str], None], timeout: float
) -> dict[str, object] | None:
    """Report the monitor's stop steps until the run ended; the final step's data (None: none seen,
    or the monitor vanished mid-stop)."""
    deadline = time.monotonic() + timeout
    done: dict[str, object] | None = None
    while time.monotonic() < deadline:
        update = follower.poll()
        for event in update.events:
            if event.kind is EventKind.STOP:
                if event.get("message"):
                    say(str(event.get("message")))
                if event.get("action") == "done":
                    done = dict(event.data)
        if update.record.state.is_terminal:
            return done
        if not liveness(update.record).monitor and update.record.state.is_live:
            return done  # the monitor is gone: the caller carries the stop itself
        time.sleep(0.1)
    return done


def _stop_without_monitor(
    registry: Registry,
    record: RunRecord,
    now: bool,
    graceful_timeout: float | None,
    steps: tuple[tuple[int, float], ...],
    say: Callable[[str], None],
) -> dict[str, object]:
    """The client's fallback: the same escalation the monitor runs, driven here."""
    found: dict[str, object] = {}

    def report(action: str, data: dict[str, object]) -> None:
        if data.get("message"):
            say(str(data["message"]))
        if action == "done":
            found.update(data)

    escalation = Escalation(
        pgid=record.pgid,
        pid=record.pid,
        pid_started=record.pid_started,
        run_folder=Path(record.engine_run_dir) if record.engine_run_dir else None,
        now=now,
        graceful_timeout=graceful_timeout or GRACEFUL_TIMEOUT_S,
        signal_steps=steps,
        report=report,
    )
    run_to_end(escalation)
    return found


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
