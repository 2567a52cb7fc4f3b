"""The monitor with real processes: outcomes, console capture, metrics, run-folder discovery."""

from __future__ import annotations

import json
from pathlib import Path

from dpipe_tui.runs.registry import Registry
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
