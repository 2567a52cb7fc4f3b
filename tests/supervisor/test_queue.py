"""Queue dispatch: FIFO per GPU set, disjoint sets side by side, and exactly-once under racing clients."""

from __future__ import annotations

import dataclasses
import functools
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.queue import dispatch
from tests.supervisor.conftest import wait_for

if TYPE_CHECKING:
    from tests.supervisor.conftest import ProfileFactory, Submitter

CLIENT = """
import os, sys, time
from pathlib import Path
import psutil
from dpipe_tui.runs.registry import Registry
from dpipe_tui.supervisor.queue import dispatch
home, name, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
me = (os.getpid(), psutil.Process().create_time())
def spawn(registry, run_id):
    fd = os.open(home / "spawns.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, f"{run_id} {name}\\n".encode())
    os.close(fd)
    return me
print("ready", flush=True)
for i in range(rounds):
    while not (home / f"go-{i}").exists():
        time.sleep(0.0005)
    dispatch(Registry(home), spawn=spawn)
    (home / f"done-{i}-{name}").touch()
"""


def _fake_spawn(registry: Registry, run_id: str) -> tuple[int, float | None]:
    return os.getpid(), procs.start_time(os.getpid())


def test_two_clients_racing_start_each_queued_run_once(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    rounds = 50
    profile = scripted_profile()
    clients = [
        subprocess.Popen([sys.executable, "-c", CLIENT, str(home), name, str(rounds)], stdout=subprocess.PIPE)
        for name in ("a", "b")
    ]
    for c in clients:
        assert c.stdout is not None
        c.stdout.readline()
    ids = []
    for i in range(rounds):
        record = submit_scripted(profile, start=False)
        registry = Registry(home)
        # disjoint GPU sets: every queued run can start at once
        registry.update(record.id, functools.partial(_with_gpus, gpus=(i,)))
        ids.append(record.id)
        (home / f"go-{i}").touch()
        deadline = time.monotonic() + 20
        while not all((home / f"done-{i}-{n}").exists() for n in ("a", "b")):
            assert time.monotonic() < deadline
            time.sleep(0.002)
    for c in clients:
        assert c.wait(timeout=20) == 0
    spawned = Counter(line.split()[0] for line in (home / "spawns.log").read_text().splitlines())
    assert set(spawned) == set(ids)
    assert all(n == 1 for n in spawned.values()), spawned
    winners = Counter(line.split()[1] for line in (home / "spawns.log").read_text().splitlines())
    assert sum(winners.values()) == rounds


def _queued(submit_scripted: Submitter, profile: Path, gpus: tuple[int, ...]) -> RunRecord:
    record = submit_scripted(profile, start=False)
    return Registry(Path(os.environ["DPIPE_TUI_HOME"])).update(
        record.id, functools.partial(_with_gpus, gpus=gpus)
    )


def _with_gpus(record: RunRecord, gpus: tuple[int, ...]) -> RunRecord:
    return dataclasses.replace(record, gpus=gpus)


def test_fifo_per_gpu_set_and_disjoint_sets_side_by_side(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    profile = scripted_profile()
    registry = Registry(home)
    a = _queued(submit_scripted, profile, (0,))
    b = _queued(submit_scripted, profile, (0, 1))
    c = _queued(submit_scripted, profile, (1,))  # shares GPU 1 with b, which waits: c waits behind b
    d = _queued(submit_scripted, profile, (2,))
    started = dispatch(registry, spawn=_fake_spawn)
    assert started == [a.id, d.id]
    assert dispatch(registry, spawn=_fake_spawn) == []  # nothing new: a holds GPU 0, b reserves 0 and 1
    states = {r.id: r.state for r in registry.scan()[0]}
    assert states[b.id] is RunState.QUEUED
    assert states[c.id] is RunState.QUEUED


def test_the_ending_runs_monitor_starts_the_next_queued_run(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    registry = Registry(home)
    first = submit_scripted(scripted_profile("first", steps=10, step_time=0.05))
    assert first.state is RunState.STARTING
    second = submit_scripted(scripted_profile("second", steps=2, step_time=0.01), start=False)
    # From here the test only reads run.json: no ls/status/dispatch of its own could start `second`.
    seen: set[RunState] = set()

    def second_done() -> bool:
        seen.add(registry.load(second.id).state)
        return registry.load(second.id).state.is_terminal

    wait_for(second_done, 30, 0.02)
    a, b = registry.load(first.id), registry.load(second.id)
    assert (a.state, b.state) == (RunState.COMPLETED, RunState.COMPLETED)
    assert RunState.QUEUED in seen  # it waited while `first` held GPU 0
    assert b.started_at is not None
    assert a.ended_at is not None
    assert b.started_at >= a.ended_at  # dispatched only after `first` ended: by its monitor
    assert b.monitor_pid not in (None, os.getpid(), a.monitor_pid)
