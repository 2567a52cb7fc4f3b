"""Process identity and process-group signalling, the supervisor's only contact with the OS's process table.

Why pid *and* start time: a pid is recycled after its process dies, so "pid 4242 exists" says nothing
about our engine after a reboot or a long absence. A process is ours only when its pid exists, is not
a zombie, and its start time (psutil ``create_time``) equals the one recorded at launch. Groups are
found by scanning ``/proc`` for the pgid, because the leader may be gone while its children (the
DeepSpeed launcher, the ranks) live on (spec §4.6).
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable

START_TIME_TOLERANCE_S = 0.05


def start_time(pid: int) -> float | None:
    """Return the start time of ``pid`` (unix seconds), or None when it does not exist."""
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return None


def is_alive(pid: int | None, started: float | None) -> bool:
    """True when ``pid`` runs, is not a zombie, and started at ``started`` (guards against pid reuse)."""
    if pid is None or started is None:
        return False
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) > START_TIME_TOLERANCE_S:
            return False
        return bool(proc.status() != psutil.STATUS_ZOMBIE)
    except (psutil.NoSuchProcess, psutil.AccessDenied, ProcessLookupError):
        return False


def group_members(pgid: int | None) -> list[int]:
    """Pids of the living (non-zombie) processes whose process group is ``pgid``."""
    if pgid is None or pgid <= 1:
        return []
    members: list[int] = []
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) != pgid:
                continue
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                continue
        except (ProcessLookupError, PermissionError, psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        members.append(pid)
    return members


def signal_group(pgid: int | None, sig: int) -> bool:
    """Send ``sig`` to the process group; False when the group no longer exists (ESRCH)."""
    if pgid is None or pgid <= 1:
        return False
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        return False
    except PermissionError:
        return False
    return True


def wait_until(
    predicate: Callable[[], bool],
    timeout: float,
    *,
    interval: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> bool:
    """Poll ``predicate`` until it is true (True) or ``timeout`` seconds pass (False)."""
    deadline = clock() + timeout
    while True:
        if predicate():
            return True
        if clock() >= deadline:
            return False
        sleep(interval)


def terminate_group(
    pgid: int | None,
    *,
    steps: tuple[tuple[int, float], ...] = (
        (signal.SIGINT, 10.0),
        (signal.SIGTERM, 10.0),
        (signal.SIGKILL, 5.0),
    ),
) -> list[int]:
    """Escalate signals to the group until no member is left; return the pids still alive at the end."""
    for sig, timeout in steps:
        if not group_members(pgid):
            return []
        signal_group(pgid, sig)
        if wait_until(lambda: not group_members(pgid), timeout):
            return []
    return group_members(pgid)


def kill_quietly(pid: int, sig: int = signal.SIGKILL) -> None:
    """Send ``sig`` to one pid, ignoring a process that is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)
