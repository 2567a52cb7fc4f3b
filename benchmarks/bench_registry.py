"""Listing a registry of 500 runs: in-process (the TUI's poll) and ``dpipe-tui ls`` as a whole process.

Builds a temporary home with 500 runs: 470 ended (completed, failed, stopped), 20 queued and 10
running, whose engine and monitor are real sleeping processes (so liveness is checked against the
process table, as it is for real runs). Then times :meth:`Cockpit.runs` (warm, median of 20) and
``dpipe-tui ls`` / ``dpipe-tui ls --json`` as new processes (median of 5), and checks that listing
started nothing (the queued runs stay queued: reads are reads).

    .venv/bin/python benchmarks/bench_registry.py [--runs 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services.cockpit import Cockpit

GOAL_IN_PROCESS_S = 0.100
GOAL_LS_S = 0.5


def _sleeper() -> tuple[subprocess.Popen[bytes], float]:
    proc = subprocess.Popen(["sleep", "600"], start_new_session=True)
    return proc, psutil.Process(proc.pid).create_time()


def populate(registry: Registry, n: int) -> list[subprocess.Popen[bytes]]:
    """Write ``n`` run records; return the sleeping processes that stand in for live runs."""
    now = time.time()
    sleepers: list[subprocess.Popen[bytes]] = []
    ended = (RunState.COMPLETED, RunState.FAILED, RunState.STOPPED)
    for i in range(n):
        created = now - (n - i) * 60
        base = RunRecord(
            id=f"20261202-{i:04d}-bench-{i:04x}",
            profile_path=f"/profiles/bench-{i % 7}.toml",
            engine="builtin",
            created_at=created,
            queued_at=created,
            gpus=(i % 8,),
            total_steps=1000,
            last_step=500 + i % 500,
            last_loss=0.1 + (i % 13) / 100,
        )
        if i < 20:
            record = base  # queued
        elif i < 30:
            engine, engine_started = _sleeper()
            monitor, monitor_started = _sleeper()
            sleepers += [engine, monitor]
            record = _replace_running(base, engine, engine_started, monitor, monitor_started)
        else:
            record = _ended(base, ended[i % 3], created)
        registry.create(record)
    return sleepers


def _replace_running(
    base: RunRecord,
    engine: subprocess.Popen[bytes],
    engine_started: float,
    monitor: subprocess.Popen[bytes],
    monitor_started: float,
) -> RunRecord:
    return dataclasses.replace(
        base,
        state=RunState.RUNNING,
        started_at=base.created_at,
        pid=engine.pid,
        pid_started=engine_started,
        pgid=engine.pid,
        monitor_pid=monitor.pid,
        monitor_started=monitor_started,
        phase="training",
    )


def _ended(base: RunRecord, state: RunState, created: float) -> RunRecord:
    return dataclasses.replace(
        base, state=state, started_at=created, ended_at=created + 50, exit_code=0, phase="done"
    )


def _time_process(argv: list[str], env: dict[str, str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=500)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        registry = Registry(home)
        sleepers = populate(registry, args.runs)
        try:
            cockpit = Cockpit(home)
            listing = cockpit.runs()  # warm: imports, page cache
            assert len(listing.runs) == args.runs, len(listing.runs)
            times = []
            for _ in range(20):
                t0 = time.perf_counter()
                listing = cockpit.runs()
                times.append(time.perf_counter() - t0)
            in_process = statistics.median(times)
            states = {s.record.state for s in listing.runs}
            queued = sum(s.record.state is RunState.QUEUED for s in listing.runs)
            running = sum(s.record.state is RunState.RUNNING for s in listing.runs)
            env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
            exe = str(Path(sys.executable).with_name("dpipe-tui"))
            ls = _time_process([exe, "ls", "--all"], env, 5)
            ls_json = _time_process([exe, "ls", "--all", "--json"], env, 5)
            after = Cockpit(home).runs()
            still_queued = sum(s.record.state is RunState.QUEUED for s in after.runs)
        finally:
            for proc in sleepers:
                proc.kill()
                proc.wait()
    print(f"registry of {args.runs} runs ({queued} queued, {running} running, states {sorted(states)})")
    print(
        f"Cockpit.runs() in-process: {in_process * 1000:.1f} ms median of 20 "
        f"(goal < {GOAL_IN_PROCESS_S * 1000:.0f} ms: {'met' if in_process < GOAL_IN_PROCESS_S else 'MISSED'})"
    )
    print(
        f"dpipe-tui ls --all, whole process: {ls:.3f} s median of 5 "
        f"(goal < {GOAL_LS_S} s: {'met' if ls < GOAL_LS_S else 'MISSED'})"
    )
    print(f"dpipe-tui ls --all --json, whole process: {ls_json:.3f} s median of 5")
    print(f"queued runs after 27 listings: {still_queued} of {queued} (reads start nothing)")
    return 0 if still_queued == queued else 1


if __name__ == "__main__":
    sys.exit(main())
