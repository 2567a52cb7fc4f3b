"""Stop, save and the truth about killed runs, with real process groups."""

from __future__ import annotations

import dataclasses
import functools
import os
import signal
import time
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.supervisor import control, procs
from dpipe_tui.supervisor.reconcile import reconcile
from tests.supervisor.conftest import ProfileFactory, Submitter, kill_engine_group, state_of, wait_for

FAST_SIGNALS = ((signal.SIGINT, 2.0), (signal.SIGTERM, 2.0), (signal.SIGKILL, 2.0))


def _running(home: Path, run_id: str, min_step: int = 1) -> bool:
    r = Registry(home).load(run_id)
    return r.state is RunState.RUNNING and (r.last_step or 0) >= min_step and r.engine_run_dir is not None


def _running_long_run(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> tuple[Registry, RunRecord]:
    """A scripted run that would step for minutes, once it is running: (registry, its live record)."""
    record = submit_scripted(scripted_profile(steps=10_000, step_time=0.05))
    wait_for(lambda: _running(home, record.id))
    reg = Registry(home)
    return reg, reg.load(record.id)


def test_graceful_stop_checkpoints_and_leaves_no_process(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=10_000, step_time=0.05))
    wait_for(lambda: _running(home, record.id, 2))
    reg = Registry(home)
    result = control.stop(reg, reg.load(record.id), graceful_timeout=20)
    assert result.graceful
    assert result.signals == ()
    assert result.leftovers == ()
    final = result.record
    assert final.state is RunState.STOPPED
    assert final.exit_code == 0
    folder = Path(final.engine_run_dir or "")
    assert (folder / "latest").read_text().startswith("global_step")
    assert not (folder / "save_quit").exists()
    assert procs.group_members(final.pgid) == []


def test_stop_now_kills_the_whole_group_including_children(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=10_000, step_time=0.05, child=True))
    wait_for(lambda: _running(home, record.id))
    reg = Registry(home)
    pgid = reg.load(record.id).pgid
    assert len(procs.group_members(pgid)) >= 2  # the trainer and its child
    result = control.stop(reg, reg.load(record.id), now=True, signal_steps=FAST_SIGNALS)
    assert result.signals[0] == "SIGINT"
    assert result.leftovers == ()
    assert result.record.state is RunState.STOPPED
    assert procs.group_members(pgid) == []


def test_stop_escalates_to_sigkill_for_a_hung_engine(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(hang=True))
    wait_for(lambda: "hanging" in Registry(home).console_log(record.id).read_text())
    reg = Registry(home)
    result = control.stop(
        reg,
        reg.load(record.id),
        signal_steps=((signal.SIGINT, 0.5), (signal.SIGTERM, 0.5), (signal.SIGKILL, 3.0)),
    )
    assert result.signals == ("SIGINT", "SIGTERM", "SIGKILL")
    assert result.leftovers == ()
    assert result.record.state is RunState.STOPPED


def test_stop_loop_leaves_zero_processes(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    reg = Registry(home)
    profile = scripted_profile(steps=10_000, step_time=0.02, child=True)
    for i in range(12):  # 6 graceful and 6 immediate stops (20 took 60 s of the suite's budget)
        record = submit_scripted(profile)
        wait_for(functools.partial(_running, home, record.id))
        pgid = reg.load(record.id).pgid
        result = control.stop(
            reg, reg.load(record.id), now=bool(i % 2), graceful_timeout=10, signal_steps=FAST_SIGNALS
        )
        assert result.leftovers == (), f"run {i}: {result.message}"
        assert procs.group_members(pgid) == [], f"run {i}"
        assert result.record.state is RunState.STOPPED


def test_stop_queued_run_just_dequeues(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(), start=False)
    reg = Registry(home)
    result = control.stop(reg, reg.load(record.id))
    assert result.record.state is RunState.STOPPED
    assert result.record.pid is None
    with pytest.raises(control.ControlError):
        control.stop(reg, reg.load(record.id))


def test_save_creates_the_signal_file_and_engine_checkpoints(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=10_000, step_time=0.05))
    wait_for(lambda: _running(home, record.id, 2))
    reg = Registry(home)
    path = control.save(reg, reg.load(record.id))
    wait_for(lambda: not path.exists(), 10)
    assert (path.parent / "latest").is_file()
    control.stop(reg, reg.load(record.id), now=True, signal_steps=FAST_SIGNALS)


def test_killed_engine_group_is_failed_within_two_seconds(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    _, live = _running_long_run(home, scripted_profile, submit_scripted)
    kill_engine_group(live)
    t0 = time.monotonic()
    seen = runs.status(home, live.id).record  # the status service, as `dpipe-tui status` calls it
    assert time.monotonic() - t0 < 2.0
    assert seen.state is RunState.FAILED
    assert seen.exit_code == -9
    assert seen.failure_class


def test_killed_monitor_and_group_is_lost(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    reg, live = _running_long_run(home, scripted_profile, submit_scripted)
    os.kill(live.monitor_pid or 0, signal.SIGKILL)
    os.killpg(live.pgid or 0, signal.SIGKILL)
    wait_for(lambda: not procs.is_alive(live.monitor_pid, live.monitor_started), 5)
    assert state_of(home, live.id) == "lost"
    assert reg.load(live.id).state is RunState.LOST  # recorded, not just displayed


def test_reused_pid_never_looks_alive(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(), start=False)
    reg = Registry(home)
    me = os.getpid()
    fake = dataclasses.replace(
        reg.load(record.id),
        state=RunState.RUNNING,
        pid=me,
        pid_started=1.0,
        pgid=me,
        monitor_pid=me,
        monitor_started=2.0,
        started_at=time.time() - 100,
    )
    reg.save(fake)
    assert reconcile(reg, fake).state is RunState.LOST


def test_engine_gone_with_a_stuck_monitor_shows_exiting_never_running(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    reg, live = _running_long_run(home, scripted_profile, submit_scripted)
    os.kill(live.monitor_pid or 0, signal.SIGSTOP)  # alive, but it cannot record anything
    try:
        kill_engine_group(live)
        shown = runs.status(home, live.id)
        assert shown.record.state is RunState.EXITING
        assert shown.to_json_dict()["state"] == "exiting"  # what `status --json` prints
        assert (shown.engine_alive, shown.monitor_alive) == (False, True)
        from dpipe_tui.cli.run_cmds import _progress_fields

        rows = dict(_progress_fields(shown.record, shown.progress))  # `status`'s human rows
        assert rows["step"] != "-"
        assert (rows["speed"], rows["eta"], rows["next save"]) == ("-", "-", "-")  # no engine, no ETA
        assert reg.load(live.id).state is RunState.RUNNING  # the view is never stored
        with pytest.raises(ValueError, match="never stored"):
            reg.save(shown.record)
        assert [s.record.state for s in runs.list_runs(home, dispatch=False).runs] == [RunState.EXITING]
    finally:
        os.kill(live.monitor_pid or 0, signal.SIGCONT)
    wait_for(lambda: reg.load(live.id).state is RunState.FAILED, 10)  # the monitor records the truth
    final = runs.status(home, live.id).record
    assert final.exit_code == -9
    assert final.failure_class
