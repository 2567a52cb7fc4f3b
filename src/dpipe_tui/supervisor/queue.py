"""The queue: FIFO per GPU set, runs on disjoint GPU sets side by side, dispatch under one file lock.

Why a lock and a re-read: any client (two TUIs, a CLI, the monitor of a run that just ended) may
dispatch at the same moment. Under ``<home>/state/queue.lock`` the dispatcher re-reads every record
from disk, reconciles live ones with the OS, and only then moves a queued run to ``starting``, so a
queued run starts exactly once. A queued run whose GPUs are busy keeps them *reserved*: later runs
needing any of those GPUs wait behind it (FIFO, no starvation), runs on other GPUs go ahead.
The master port is chosen here too (free on the host and not owned by another live run).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable

from dpipe_tui import paths
from dpipe_tui.runs import redact
from dpipe_tui.runs.model import IllegalTransition, RunRecord, RunState, transition
from dpipe_tui.runs.registry import MONITOR_LOG, Registry, file_lock
from dpipe_tui.supervisor import ports, procs
from dpipe_tui.supervisor.launch import build_command
from dpipe_tui.supervisor.reconcile import reconcile

log = logging.getLogger(__name__)

QUEUE_LOCK = "queue.lock"

SpawnMonitor = Callable[[Registry, str], tuple[int, float | None]]


_LAUNCHER = """
import os, subprocess, sys
log, cwd, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
with open(log, "ab") as err:
    os.chmod(log, 0o600)
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err,
                            start_new_session=True, close_fds=True, cwd=cwd)
print(proc.pid, flush=True)
"""
"""The intermediate process of the double spawn: starts the monitor, prints its pid, exits at once."""


def spawn_monitor(registry: Registry, run_id: str) -> tuple[int, float | None]:
    """Start the detached per-run monitor; return its pid and start time.

    Double spawn: a short-lived launcher starts the monitor and exits, so the monitor is re-parented
    (to init or a subreaper) and no client, however long it lives, is ever its parent or has to reap
    it. No ``fork()`` in this process (a TUI has threads). The monitor gets its own session (SIGHUP of
    the client's session never reaches it), stdin from /dev/null, and its output in the run folder.
    """
    run_dir = registry.run_dir(run_id)
    env = dict(os.environ)
    env[paths.HOME_ENV] = str(registry.home)
    argv = [sys.executable, "-m", "dpipe_tui.supervisor.monitor", str(run_dir)]
    launched = subprocess.run(
        [sys.executable, "-c", _LAUNCHER, str(run_dir / MONITOR_LOG), str(run_dir), *argv],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=30,
    )
    if launched.returncode != 0 or not launched.stdout.strip().isdigit():
        raise OSError(f"the monitor launcher failed: {launched.stderr.strip()[-300:] or launched.returncode}")
    pid = int(launched.stdout.strip())
    return pid, procs.start_time(pid)


def busy_slots(records: list[RunRecord]) -> tuple[set[int], set[int]]:
    """GPU ids and master ports held by live runs."""
    gpus: set[int] = set()
    used_ports: set[int] = set()
    for r in records:
        if r.state.is_live:
            gpus.update(r.gpus)
            if r.master_port is not None:
                used_ports.add(r.master_port)
    return gpus, used_ports


def dispatch(
    registry: Registry,
    *,
    spawn: SpawnMonitor = spawn_monitor,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """Start every queued run whose GPUs are free; return the ids started.

    Safe to call from any number of processes at once: the whole decision runs under the queue lock
    and each queued→starting transition is made on a freshly re-read record.
    """
    if not registry.root.is_dir():
        return []
    started: list[str] = []
    with file_lock(registry.lock_path(QUEUE_LOCK)):
        records, _ = registry.scan()
        records = [reconcile(registry, r) for r in records]
        gpus, used_ports = busy_slots(records)
        queued = sorted((r for r in records if r.state is RunState.QUEUED), key=lambda r: (r.queued_at, r.id))
        for rec in queued:
            wanted = set(rec.gpus)
            if wanted & gpus:
                gpus |= wanted  # reserved: later runs on these GPUs wait behind this one
                continue
            port = ports.free_port(used_ports)
            if _start(registry, rec.id, port, spawn, clock):
                started.append(rec.id)
                used_ports.add(port)
            gpus |= wanted
    return started


def _start(
    registry: Registry, run_id: str, port: int, spawn: SpawnMonitor, clock: Callable[[], float]
) -> bool:
    def to_starting(current: RunRecord) -> RunRecord:
        if current.state is not RunState.QUEUED:
            raise IllegalTransition(f"{run_id} is {current.state.value}, no longer queued")
        command = build_command(current, port)
        return transition(
            current,
            RunState.STARTING,
            master_port=port,
            argv=tuple(redact.redact_argv(command.argv)),
            env=redact.redact_env(command.env),
            cwd=str(command.cwd),
            started_at=clock(),
            ended_at=None,
            pid=None,
            pid_started=None,
            pgid=None,
            monitor_pid=None,
            monitor_started=None,
        )

    try:
        registry.update(run_id, to_starting)
    except IllegalTransition:
        return False
    except ValueError as exc:  # an unbuildable command: fail the run, keep dispatching others
        reason = str(exc)
        registry.update(run_id, lambda cur: _fail_start(cur, reason, clock()))
        return False
    try:
        pid, started = spawn(registry, run_id)
    except OSError as exc:
        why = f"cannot start the monitor: {exc}"
        registry.update(run_id, lambda cur: _fail_start(cur, why, clock()))
        return False

    def record_monitor(current: RunRecord) -> RunRecord:
        if current.monitor_pid is not None:  # the monitor already recorded itself
            return current
        return dataclasses.replace(current, monitor_pid=pid, monitor_started=started)

    registry.update(run_id, record_monitor)
    return True


def _fail_start(current: RunRecord, message: str, now: float) -> RunRecord:
    state = current
    if current.state is RunState.QUEUED:
        state = transition(current, RunState.STARTING)
    if not state.state.is_live:
        return current
    return transition(
        state,
        RunState.FAILED,
        ended_at=now,
        failure_class="launch_error",
        failure_message=message,
        failure_hint="Check the engine settings (diffusion-pipe path, deepspeed executable) and the profile.",
    )


def cancel_queued(registry: Registry, run_id: str, *, clock: Callable[[], float] = time.time) -> bool:
    """Remove a queued run from the queue (state ``stopped``); False when it is no longer queued."""
    with file_lock(registry.lock_path(QUEUE_LOCK)):

        def stop(current: RunRecord) -> RunRecord:
            if current.state is not RunState.QUEUED:
                return current
            return transition(
                current, RunState.STOPPED, ended_at=clock(), failure_class=None, note="removed from the queue"
            )

        return registry.update(run_id, stop).state is RunState.STOPPED


def queue_position(records: list[RunRecord], run_id: str) -> int | None:
    """1-based position of a queued run among queued runs sharing any GPU with it."""
    target = next((r for r in records if r.id == run_id), None)
    if target is None or target.state is not RunState.QUEUED:
        return None
    ahead = [
        r
        for r in records
        if r.state is RunState.QUEUED
        and set(r.gpus) & set(target.gpus)
        and (r.queued_at, r.id) < (target.queued_at, target.id)
    ]
    return len(ahead) + 1
