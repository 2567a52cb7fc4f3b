"""Rough edges a new user hit in the first hour (the first-hour issue), each with the test that
would have caught it: real CLI processes against a real registry."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from typing import TYPE_CHECKING

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry

if TYPE_CHECKING:
    from pathlib import Path

CLI = [sys.executable, "-m", "dpipe_tui"]


def _home_with_runs(tmp_path: Path, n: int) -> Path:
    home = tmp_path / "home"
    registry = Registry(home)
    for i in range(n):
        record = RunRecord(id=f"20261201-{i:04d}-pipe-{i:04x}", profile_path="/p/pipe.toml", engine="builtin")
        registry.create(dataclasses.replace(record, state=RunState.COMPLETED, last_step=10, ended_at=1.0))
    return home


def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status(tmp_path: Path) -> None:
    home = _home_with_runs(tmp_path, 300)  # `ls --all --json` of 300 runs is far more than a pipe buffer
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    proc = subprocess.Popen(
        [*CLI, "ls", "--all", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert code in (0, -signal.SIGPIPE), (code, err)  # the shell shows -SIGPIPE as 141; it was 1
    assert err == ""


def test_not_found_names_the_run_with_both_quotes(tmp_path: Path) -> None:
    home = _home_with_runs(tmp_path, 1)
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    result = subprocess.run(
        [*CLI, "status", "nosuchrun"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 3
    assert "no run matches 'nosuchrun'" in result.stderr  # the closing quote was stripped


def test_an_ended_runs_phase_is_its_outcome(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry(home)
    for run_id, state, phase in (
        ("20261201-0000-a-0001", RunState.FAILED, "training"),
        ("20261201-0001-b-0002", RunState.STOPPED, "checkpointing"),
    ):
        base = RunRecord(id=run_id, profile_path="/p/x.toml", engine="builtin")
        registry.create(dataclasses.replace(base, state=state, phase=phase, ended_at=1.0))
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    listing = subprocess.run([*CLI, "ls", "--all"], capture_output=True, text=True, env=env, timeout=60)
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:]}
    assert rows["20261201-0000-a-0001"][2] == "failed"  # ID, STATE, PHASE: was "training"
    assert rows["20261201-0001-b-0002"][2] == "stopped"  # was "checkpointing"
    status = subprocess.run(
        [*CLI, "status", "20261201-0000-a"], capture_output=True, text=True, env=env, timeout=60
    )
    phase_line = next(line for line in status.stdout.splitlines() if line.strip().startswith("phase"))
    assert phase_line.split()[-1] == "failed"
