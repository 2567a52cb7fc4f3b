"""The monitor owns a stop; reads never start processes; the outcome rule as a table. Real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from dpipe_tui.runs.model import RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.supervisor import control, procs
from dpipe_tui.supervisor.monitor import Monitor
from dpipe_tui.supervisor.outcome import decide
from dpipe_tui.telemetry.events import Event, EventKind
from tests.supervisor.conftest import ProfileFactory, Submitter, wait_for

DPIPE_TUI = os.path.join(os.path.dirname(sys.executable), "dpipe-tui")


def _running(home: Path, run_id: str, min_step: int = 1) -> bool:
    r = Registry(home).load(run_id)
    return r.state is RunState.RUNNING and (r.last_step or 0) >= min_step and r.engine_run_dir is not None


def _stop_events(home: Path, run_id: str) -> list[Event]:
    text = Registry(home).metrics(run_id).read_text()
    events = [Event.from_json(line) for line in text.splitlines()]
    return [e for e in events if e is not None and e.kind is EventKind.STOP]


def test_sigkill_of_the_stop_client_mid_stop_still_ends_stopped(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    # slow steps: save_quit is honoured at the end of the current step, seconds after the request
    record = submit_scripted(scripted_profile(steps=1000, step_time=2.0, child=True))
    wait_for(lambda: _running(home, record.id), 60)
    pgid = Registry(home).load(record.id).pgid
    client = subprocess.Popen(
        [DPIPE_TUI, "stop", record.id], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    wait_for(lambda: Registry(home).load(record.id).stop_requested, 20)
    wait_for(lambda: any(e.get("action") == "save_quit" for e in _stop_events(home, record.id)), 20)
    client.kill()  # the client dies mid-stop: the monitor carries on
    client.wait()
    wait_for(lambda: Registry(home).load(record.id).state.is_terminal, 60)
    final = Registry(home).load(record.id)
    assert final.state is RunState.STOPPED
    assert final.note == "stopped; checkpoint saved (save_quit)"
    assert procs.group_members(pgid) == []
    assert (Path(final.engine_run_dir or "") / "latest").is_file()
    actions = [e.get("action") for e in _stop_events(home, record.id)]
    assert actions == ["save_quit", "done"]
    console = Registry(home).console_log(record.id).read_text()
    assert "dpipe-tui: stop: asked the engine to checkpoint and quit" in console


def test_stop_now_during_a_graceful_stop_escalates_at_once(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=1000, step_time=8.0))
    wait_for(lambda: _running(home, record.id), 60)
    reg = Registry(home)
    control.request_stop(reg, reg.load(record.id), graceful_timeout=120)
    wait_for(lambda: any(e.get("action") == "save_quit" for e in _stop_events(home, record.id)), 20)
    t0 = time.monotonic()
    result = control.stop(reg, reg.load(record.id), now=True)
    took = time.monotonic() - t0
    assert result.record.state is RunState.STOPPED
    assert result.signals[:1] == ("SIGINT",)
    assert not result.graceful
    assert took < 15, f"the escalation waited {took:.1f}s"
    assert not (Path(result.record.engine_run_dir or "") / "save_quit").exists()  # no stale save_quit


def test_reads_never_start_anything_and_dispatch_double_spawns(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    queued = submit_scripted(scripted_profile(steps=3, step_time=0.05), start=False)
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    for _ in range(20):
        listing = runs.list_runs(home)
        assert [s.record.state for s in listing.runs] == [RunState.QUEUED]
        assert runs.status(home, queued.id).record.state is RunState.QUEUED
    assert {p.pid for p in me.children(recursive=True)} == before
    assert Registry(home).load(queued.id).monitor_pid is None
    started = runs.dispatch_queue(home)
    assert started == [queued.id]
    monitor_pid = wait_for(lambda: Registry(home).load(queued.id).monitor_pid, 10)
    assert isinstance(monitor_pid, int)
    assert monitor_pid not in {p.pid for p in me.children(recursive=True)}  # never our child
    wait_for(lambda: Registry(home).load(queued.id).state is RunState.COMPLETED, 60)
    assert {p.pid for p in me.children(recursive=True)} == before  # no zombie launcher either


@pytest.mark.parametrize(
    ("exit_code", "failure_class", "stop_requested", "state"),
    [
        (0, None, False, RunState.COMPLETED),
        (0, None, True, RunState.COMPLETED),  # it finished before the stop took effect
        (None, None, False, RunState.COMPLETED),
        (0, "save_quit", False, RunState.STOPPED),  # the engine's own "Manually quitting"
        (-2, "user_stop", False, RunState.STOPPED),
        (-9, "killed", True, RunState.STOPPED),  # SIGKILL of a requested stop
        (1, "cuda_oom", True, RunState.STOPPED),  # crashed while stopping: still the user's stop
        (1, "cuda_oom", False, RunState.FAILED),
        (-9, "host_oom_kill", False, RunState.FAILED),
        (3, None, False, RunState.FAILED),  # a non-zero exit is never a completion
        (None, "launch_error", False, RunState.FAILED),
    ],
)
def test_outcome_table(
    exit_code: int | None, failure_class: str | None, stop_requested: bool, state: RunState
) -> None:
    assert decide(exit_code, failure_class, stop_requested) is state


def test_monitor_spawn_seam_runs_any_process_through_the_attempt_loop(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    """The seam: the monitor's attempt loop with a stand-in process (no engine, no DeepSpeed)."""
    record = submit_scripted(scripted_profile(steps=1), start=False)
    reg = Registry(home)
    script = "print('steps: 1 loss: 0.5 iter time (s): 0.1 samples/sec: 1.0'); print('TRAINING COMPLETE!')"
    seen: list[list[str]] = []

    def spawn(argv: list[str], cwd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        seen.append(argv)
        return subprocess.Popen(
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=cwd,
        )

    from dpipe_tui.supervisor import queue

    queue.dispatch(reg, spawn=lambda registry, run_id: (os.getpid(), procs.start_time(os.getpid())))
    Monitor(reg, record.id, spawn=spawn).run()
    final = reg.load(record.id)
    assert final.state is RunState.COMPLETED
    assert final.last_step == 1
    assert seen[0][0].endswith("deepspeed")  # the command the monitor built for the engine


def test_killed_stop_client_never_leaves_a_signal_file_behind(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(hang=True))
    wait_for(lambda: "hanging" in Registry(home).console_log(record.id).read_text(), 30)
    reg = Registry(home)
    result = control.stop(
        reg,
        reg.load(record.id),
        graceful_timeout=0.5,
        signal_steps=((signal.SIGINT, 0.5), (signal.SIGTERM, 0.5), (signal.SIGKILL, 3.0)),
    )
    assert result.signals == ("SIGINT", "SIGTERM", "SIGKILL")
    assert result.record.state is RunState.STOPPED
    assert result.record.note == "stopped; signals: SIGINT, SIGTERM, SIGKILL"
