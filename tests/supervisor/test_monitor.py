"""The monitor with real processes: outcomes, console capture, metrics, run-folder discovery."""

from __future__ import annotations

import json
from pathlib import Path

from dpipe_tui.runs.registry import Registry
from dpipe_tui.telemetry.catchup import CatchUp, read_sidecar, sidecar_path
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS
from dpipe_tui.telemetry.store import MetricsTail
from tests.supervisor.conftest import ProfileFactory, Submitter, state_of, wait_for


def test_completed_run_records_everything(
    home: Path, checkout: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=5, step_time=0.02, checkpoint_every=2))
    wait_for(lambda: state_of(home, record.id) == "completed")
    reg = Registry(home)
    final = reg.load(record.id)
    assert final.exit_code == 0
    assert final.last_step == 5
    assert final.phase == "done"
    assert final.engine_run_dir is not None
    assert Path(final.engine_run_dir).parent == Path(final.output_dir or "")
    # spec §9: cwd = checkout, the same port for the runner and train.py
    assert final.cwd == str(checkout)
    port = str(final.master_port)
    argv = list(final.argv)
    assert argv[1:5] == ["--include", "localhost:0", "--master_port", port]
    assert argv[argv.index("train.py") + 1 :] == [
        "--deepspeed",
        "--config",
        final.config_path,
        "--master_port",
        port,
    ]
    assert final.env["NCCL_P2P_DISABLE"] == "1"
    assert final.env["NCCL_IB_DISABLE"] == "1"
    console = reg.console_log(record.id).read_text()
    assert f"master_port={port} cwd={checkout}" in console
    assert "TRAINING COMPLETE!" in console
    assert console.count("caching latents") == 2  # the first redraw and the final form, not every redraw
    kinds = [json.loads(line)["kind"] for line in reg.metrics(record.id).read_text().splitlines()]
    assert kinds.count("step") == 5
    assert "complete" in kinds
    for path in (reg.run_dir(record.id) / n for n in ("run.json", "console.log", "metrics.jsonl")):
        assert path.stat().st_mode & 0o777 == 0o600
    assert reg.run_dir(record.id).stat().st_mode & 0o777 == 0o700


def test_the_monitor_leaves_a_catch_up_sidecar_that_gives_the_full_scans_events(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=30, step_time=0.01, checkpoint_every=7))
    wait_for(lambda: state_of(home, record.id) == "completed")
    metrics = Registry(home).metrics(record.id)
    side = sidecar_path(metrics)
    assert side.stat().st_mode & 0o777 == 0o600

    def fold(recent: int = RECENT_STEPS) -> CatchUp:  # the monitor's fold by default
        return CatchUp(FOLDED_KINDS, recent_kind="step", recent=recent)

    def catch_up() -> list[Event]:
        return MetricsTail(metrics).catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS)

    assert MetricsTail(metrics).catch_up_into(fold())  # the sidecar matches the file
    assert not read_sidecar(metrics, fold(recent=10))  # not for another fold
    with_side = catch_up()
    side.unlink()
    assert not MetricsTail(metrics).catch_up_into(fold())
    assert with_side == catch_up()
    assert [e.kind for e in with_side].count(EventKind.STEP) == 30


def test_exit_zero_without_training_complete_is_failed(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=3, step_time=0.01, fail_at=2, exit_code=0))
    wait_for(lambda: state_of(home, record.id) == "failed")
    final = Registry(home).load(record.id)
    assert final.exit_code == 0
    assert final.failure_class


def test_nonzero_exit_is_failed_with_class(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=3, step_time=0.01, fail_at=2, exit_code=3))
    wait_for(lambda: state_of(home, record.id) == "failed")
    final = Registry(home).load(record.id)
    assert final.exit_code == 3
    assert final.failure_class
    assert final.failure_message


def test_orphans_left_by_the_engine_are_ended(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    from dpipe_tui.supervisor import procs

    record = submit_scripted(scripted_profile(steps=3, step_time=0.02, child=True))
    wait_for(lambda: state_of(home, record.id) == "completed")
    final = Registry(home).load(record.id)
    assert procs.group_members(final.pgid) == []
    assert "ending 1 leftover process(es)" in Registry(home).console_log(record.id).read_text()
