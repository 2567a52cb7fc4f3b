"""Resume through the services with real processes: explicit folder, step continuity, refusals,
``--from`` rewriting ``latest`` with a backup, profile-change checks, auto-resume and its brakes."""

from __future__ import annotations

import json
import os
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.checkpoints.resume import read_latest
from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from tests.supervisor.conftest import wait_for

if TYPE_CHECKING:
    from collections.abc import Callable


@pytest.fixture
def dp_env(checkout: Path, cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    monkeypatch.setenv("DPIPE_TUI_HOME", str(cli_home))
    return cli_home


def _launch(home: Path, profile: Path, auto_resume: int = 0) -> RunRecord:
    result = runs.launch(
        home, runs.LaunchRequest(profile=profile, engine="diffusion-pipe", auto_resume=auto_resume)
    )
    assert result.record is not None, result.error
    return result.record


def _ended(home: Path, run_id: str) -> RunRecord:
    wait_for(lambda: runs.status(home, run_id).record.state.is_terminal, 60)
    return Registry(home).load(run_id)


def test_resume_continues_from_the_checkpoint_step(dp_env: Path, dp_profile: Callable[..., Path]) -> None:
    home = dp_env
    profile = dp_profile(steps=8, step_time=0.02, checkpoint_every=3, fail_at=5, fail_only_fresh=True)
    first = _ended(home, _launch(home, profile).id)
    assert first.state is RunState.FAILED
    assert first.checkpoint_tag == "global_step3"
    result = runs.resume_run(home, first.id)
    assert result.tag == "global_step3"
    assert result.warnings == []
    final = _ended(home, first.id)
    assert final.state is RunState.COMPLETED
    assert final.attempt == 2
    assert final.resume_from == Path(first.engine_run_dir or "").name
    assert final.engine_run_dir == first.engine_run_dir  # the same engine run folder continues
    assert list(final.argv[-2:]) == ["--resume_from_checkpoint", final.resume_from]
    console = Registry(home).console_log(first.id).read_text().splitlines()
    i = console.index("Resuming training from checkpoint. Resuming at epoch: 1, step: 4")
    assert next(line for line in console[i:] if line.startswith("steps: ")).startswith("steps: 4 ")
    assert any(line.startswith("==== dpipe-tui: attempt 2 (resume from global_step3)") for line in console)


def test_resume_refuses_without_a_checkpoint(dp_env: Path, dp_profile: Callable[..., Path]) -> None:
    home = dp_env
    failed = _ended(home, _launch(home, dp_profile(steps=5, step_time=0.01, fail_at=2)).id)
    assert failed.state is RunState.FAILED
    with pytest.raises(runs.ServiceError, match="no 'latest' file"):
        runs.resume_run(home, failed.id)
    assert Registry(home).load(failed.id).attempt == 1


def test_resume_from_rewrites_latest_last_and_keeps_every_old_value(
    dp_env: Path, dp_profile: Callable[..., Path]
) -> None:
    home = dp_env
    profile = dp_profile(steps=7, step_time=0.01, checkpoint_every=2, fail_at=7)
    record = _ended(home, _launch(home, profile).id)
    folder = Path(record.engine_run_dir or "")
    history = Registry(home).run_dir(record.id) / "latest.history"  # in the registry, not the output
    assert read_latest(folder) == "global_step6"
    with pytest.raises(runs.ServiceError, match="not a checkpoint"):
        runs.resume_run(home, record.id, from_tag="global_step5")
    original = profile.read_text()
    profile.write_text(original.replace("rank = 4", "rank = 8"))
    with pytest.raises(runs.ServiceError, match=r"\[adapter\] rank changed"):
        runs.resume_run(home, record.id, from_tag="global_step2")
    assert read_latest(folder) == "global_step6"  # a refused resume changed nothing
    assert not history.exists()
    profile.write_text(original)
    result = runs.resume_run(home, record.id, from_tag="global_step2")
    assert any(str(history) in w and "it named global_step6" in w for w in result.warnings)
    assert read_latest(folder) == "global_step2"
    ours = [p for p in folder.parent.rglob("*") if p.name in ("latest.history", ".supervisor")]
    assert not ours  # nothing of ours in the engine's output: the history is in the registry
    _ended(home, record.id)
    assert "Resuming at epoch: 1, step: 3" in Registry(home).console_log(record.id).read_text()
    runs.resume_run(home, record.id, from_tag="global_step4")  # a second --from keeps the original
    lines = history.read_text().splitlines()
    assert [line.split("\t")[1] for line in lines] == [
        "global_step6 -> global_step2",
        "global_step6 -> global_step4",  # attempt 2 re-saved global_step6 and latest before failing
    ]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", line.split("\t")[0]) for line in lines)
    assert history.stat().st_mode & 0o777 == 0o600
    assert _ended(home, record.id).attempt == 3


def test_resume_refuses_when_latest_names_a_missing_folder(
    dp_env: Path, dp_profile: Callable[..., Path]
) -> None:
    home = dp_env
    record = _ended(
        home, _launch(home, dp_profile(steps=5, step_time=0.01, checkpoint_every=2, fail_at=3)).id
    )
    folder = Path(record.engine_run_dir or "")
    (folder / "latest").write_text("global_step40")
    with pytest.raises(runs.ServiceError, match="names 'global_step40', which does not exist"):
        runs.resume_run(home, record.id)
    assert Registry(home).load(record.id).attempt == 1
    assert read_latest(folder) == "global_step40"


def test_resume_refuses_a_changed_model_and_warns_on_dataloader_changes(
    dp_env: Path, dp_profile: Callable[..., Path]
) -> None:
    home = dp_env
    profile = dp_profile(steps=5, step_time=0.01, checkpoint_every=2, fail_at=3, fail_only_fresh=True)
    record = _ended(home, _launch(home, profile).id)
    original = profile.read_text()
    for old, new, refused in (
        ("rank = 4", "rank = 8", r"\[adapter\] rank changed"),
        ("type = 'chroma'", "type = 'flux'", r"\[model\] type changed"),
        ("transformer_path = 'chroma.safetensors'", "transformer_path = 'flux'", r"transformer_path"),
    ):
        profile.write_text(original.replace(old, new))
        with pytest.raises(runs.ServiceError, match=refused):
            runs.resume_run(home, record.id)
    # the OOM hint's own remedy, a dtype and the dataloader position: warnings, not refusals
    changed = original.replace("\nepochs = 1\n", "\nepochs = 1\ngradient_accumulation_steps = 2\n")
    changed = changed.replace("dtype = 'bfloat16'", "dtype = 'float16'\nblocks_to_swap = 4")
    profile.write_text(changed)
    result = runs.resume_run(home, record.id)
    assert any("gradient_accumulation_steps changed" in w for w in result.warnings)
    swap = "[model] blocks_to_swap changed (None -> 4): the checkpoint still loads"
    assert any(swap in w for w in result.warnings)
    assert any("[model] dtype changed" in w for w in result.warnings)
    assert "gradient_accumulation_steps = 2" in Path(result.record.config_path or "").read_text()
    frozen = tomllib.loads(Path(result.record.config_path or "").read_text())
    assert Path(frozen["dataset"]) == Registry(home).run_dir(record.id) / "dataset.toml"
    baseline = json.loads((Registry(home).run_dir(record.id) / "attempts" / "1.json").read_text())
    assert baseline["main"]["model"]["dtype"] == "bfloat16"  # attempt 1's configs survive the re-freeze
    assert baseline["gpus"] == 1
    assert _ended(home, record.id).state is RunState.COMPLETED


def test_auto_resume_recovers_a_crash_after_a_checkpoint(
    dp_env: Path, dp_profile: Callable[..., Path]
) -> None:
    home = dp_env
    profile = dp_profile(
        steps=6, step_time=0.01, checkpoint_every=2, fail_at=3, exit_code=1, fail_only_fresh=True
    )
    final = _ended(home, _launch(home, profile, auto_resume=2).id)
    wait_for(lambda: Registry(home).load(final.id).state is RunState.COMPLETED, 60)
    final = Registry(home).load(final.id)
    assert final.attempt == 2
    assert final.auto_resumes_used == 1


def test_auto_resume_never_loops_on_the_same_failure(dp_env: Path, dp_profile: Callable[..., Path]) -> None:
    home = dp_env
    profile = dp_profile(steps=6, step_time=0.01, checkpoint_every=2, fail_at=3, exit_code=1)
    record = _launch(home, profile, auto_resume=5)
    wait_for(
        lambda: not _monitor_alive(home, record.id) and Registry(home).load(record.id).state.is_terminal, 60
    )
    final = Registry(home).load(record.id)
    assert final.state is RunState.FAILED
    assert final.attempt == 2  # resumed once from global_step2, failed again before a newer checkpoint
    assert final.auto_resumes_used == 1


def test_auto_resume_never_retries_a_config_error_after_a_checkpoint(
    dp_env: Path, dp_profile: Callable[..., Path]
) -> None:
    home = dp_env
    profile = dp_profile(
        steps=6,
        step_time=0.01,
        checkpoint_every=2,
        fail_at=3,
        exit_code=1,
        fail_only_fresh=True,  # a resume would complete: only the policy can stop it
        error="ValueError: Unknown lr_scheduler: 'cosinee'",
    )
    record = _launch(home, profile, auto_resume=3)
    wait_for(
        lambda: not _monitor_alive(home, record.id) and Registry(home).load(record.id).state.is_terminal, 60
    )
    final = Registry(home).load(record.id)
    assert (final.state, final.failure_class) == (RunState.FAILED, "config_error")
    assert final.checkpoint_tag == "global_step2"  # there was a checkpoint to resume from
    assert (final.attempt, final.auto_resumes_used) == (1, 0)


def _monitor_alive(home: Path, run_id: str) -> bool:
    from dpipe_tui.supervisor import procs

    r = Registry(home).load(run_id)
    return procs.is_alive(r.monitor_pid, r.monitor_started)


__all__ = ["os"]
