"""RunFollower between its full reconciles: a dead engine is never shown running, not even for a poll."""

from __future__ import annotations

import os
import subprocess
import time
from typing import TYPE_CHECKING

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.follow import RunFollower

if TYPE_CHECKING:
    from pathlib import Path


def test_follower_shows_exiting_on_every_poll_once_the_engine_is_gone(tmp_path: Path) -> None:
    engine = subprocess.Popen(["sleep", "60"])
    try:
        registry = Registry(tmp_path)
        now = time.time()
        record = RunRecord(
            id="20261202-0000-follow-0001",
            profile_path=str(tmp_path / "p.toml"),
            engine="builtin",
            state=RunState.RUNNING,
            created_at=now,
            queued_at=now,
            started_at=now,
            pid=engine.pid,
            pid_started=procs.start_time(engine.pid),
            pgid=engine.pid,
            monitor_pid=os.getpid(),  # a live "monitor" that records nothing (this test)
            monitor_started=procs.start_time(os.getpid()),
        )
        registry.create(record)
        clock = [0.0]
        follower = RunFollower(registry, record.id, clock=lambda: clock[0], reconcile_every=2.0)
        assert follower.poll().record.state is RunState.RUNNING  # a full reconcile: the engine is alive
        clock[0] = 0.5
        assert follower.poll().record.state is RunState.RUNNING  # between reconciles, still alive
        engine.kill()
        engine.wait()
        states = []
        for t in (0.6, 1.0, 1.5, 1.9):  # all before the next full reconcile
            clock[0] = t
            states.append(follower.poll().record.state)
        assert states == [RunState.EXITING] * 4
        assert registry.load(record.id).state is RunState.RUNNING  # a view, never stored
    finally:
        engine.kill()
        engine.wait()
