"""Signal files and exact resume: a run stopped with ``save_quit`` and resumed repeats the losses and
the final LoRA of an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import torch
from safetensors.torch import load_file

from dpipe_tui.engine.trainer import DataState
from tests.engine.conftest import (
    LAUNCH_TIMEOUT,
    engine_env,
    launch,
    launch_argv,
    make_profile,
    read_scalars,
    run_dirs,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.engine.conftest import Assets

pytestmark = pytest.mark.slow
SETTINGS: dict[str, Any] = {
    "epochs": 4,
    "max_steps": 14,
    "warmup_steps": 3,
    "lr_scheduler": "linear",
    "save_every_n_epochs": 100,
    "save_every_n_steps": 5,
}


def _signal(run_dir: Path, name: str) -> None:
    tmp = run_dir / f".{name}.tmp"
    tmp.write_text("")
    os.replace(tmp, run_dir / name)


def _run_with_signals(profile: Path) -> tuple[int, str]:
    """Touch ``save`` after step 2 and ``save_quit`` once that checkpoint is written."""
    proc = subprocess.Popen(
        launch_argv(profile),
        cwd=profile.parent,
        env=engine_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    sent_save = sent_quit = False
    for line in proc.stdout:
        lines.append(line)
        if not sent_save and line.startswith("steps: 2 "):
            _signal(run_dirs(profile.parent)[0], "save")
            sent_save = True
        elif sent_save and not sent_quit and "Saving model checkpoint" in line:
            _signal(run_dirs(profile.parent)[0], "save_quit")
            sent_quit = True
    return proc.wait(timeout=LAUNCH_TIMEOUT), "".join(lines)


def test_save_quit_and_resume_repeat_the_uninterrupted_run(tmp_path: Path, assets: Assets) -> None:
    whole = make_profile(tmp_path / "a", assets, **SETTINGS)
    result = launch(whole)
    assert result.returncode == 0, result.stdout[-3000:]
    (run_a,) = run_dirs(whole.parent)
    expected = dict(read_scalars(run_a)["train/loss"])
    assert sorted(expected) == list(range(1, 15))
    assert sorted(p.name for p in run_a.glob("step*")) == ["step10", "step14", "step5"]  # every 5 + the final

    stopped = make_profile(tmp_path / "b", assets, **SETTINGS)
    rc, out = _run_with_signals(stopped)
    assert rc == 0, out[-3000:]
    assert "Manually quitting" in out
    assert "TRAINING COMPLETE!" not in out
    (run_b,) = run_dirs(stopped.parent)
    tags = sorted(int(p.name.removeprefix("global_step")) for p in run_b.glob("global_step*"))
    assert len(tags) == 2  # one from `save`, one from `save_quit`
    assert (run_b / "latest").read_text() == f"global_step{tags[-1]}"
    assert not (run_b / "save").exists()
    assert not (run_b / "save_quit").exists()
    # signals never save a model: only the every-5-steps saves can exist
    assert all(int(p.name.removeprefix("step")) % 5 == 0 for p in run_b.glob("step*"))
    assert not list(run_b.glob("epoch*"))
    assert tags[-1] < 14

    forks = {flag: _fork(tmp_path / flag, assets, run_b, tags[-1]) for flag in RESET_FLAGS}
    resumed = launch(stopped, "--resume_from_checkpoint")  # bare: the newest entry of output_dir
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert re.search(
        rf"Resuming training from checkpoint\. Resuming at epoch: \d+, step: {tags[-1] + 1}\b", resumed.stdout
    )
    assert run_dirs(stopped.parent) == [run_b]
    got = dict(read_scalars(run_b)["train/loss"])
    assert sorted(got) == list(range(1, 15))
    for step in range(tags[-1] + 1, 15):
        assert got[step] == pytest.approx(expected[step], rel=1e-5, abs=1e-6), step
    lora_a = load_file(str(run_a / "step14" / "adapter_model.safetensors"))
    lora_b = load_file(str(run_b / "step14" / "adapter_model.safetensors"))
    assert lora_a.keys() == lora_b.keys()
    for key, value in lora_a.items():
        torch.testing.assert_close(lora_b[key], value, rtol=1e-5, atol=1e-6)
    # DeepSpeed's lr line: a plain resume continues the schedule (step 1 of run A had warmup lr)
    lrs_a, lrs_b = _lrs(result.stdout), _lrs(resumed.stdout)
    assert lrs_b[tags[-1] + 1] == lrs_a[tags[-1] + 1] != lrs_a[1]
    _check_reset_optimizer(forks["reset_optimizer"], tags[-1], lrs_a)
    _check_reset_dataloader(forks["reset_dataloader"], tags[-1])
    _check_force_constant_lr(forks["force_constant_lr"], tags[-1])


RESET_FLAGS = ("reset_optimizer", "reset_dataloader", "force_constant_lr")
CONSTANT_LR = 0.000123
STEPS_PER_EPOCH = 6  # 20 square images → 5 batches of 4, 4 wide ones → 1


def _fork(folder: Path, assets: Assets, run_dir: Path, tag: int) -> Path:
    """A profile whose output_dir holds a copy of the stopped run (stopped at step ``tag``)."""
    max_steps = tag + (STEPS_PER_EPOCH + 1 if folder.name == "reset_dataloader" else 1)
    extra = {"force_constant_lr": CONSTANT_LR} if folder.name == "force_constant_lr" else {}
    profile = make_profile(folder, assets, **(SETTINGS | extra | {"max_steps": max_steps}))
    shutil.copytree(run_dir, folder / "output" / run_dir.name)
    return profile


def _lrs(output: str) -> dict[int, str]:
    """``[Rank 0] step=N, skipped=0, lr=[X]`` lines → {N: X} (DeepSpeed prints after each step)."""
    return {
        int(m[1]): m[2] for m in re.finditer(r"\[Rank 0\] step=(\d+), skipped=\d+, lr=\[([^\]]*)\]", output)
    }


def _final_state(profile: Path, step: int) -> dict[str, Any]:
    (run_dir,) = run_dirs(profile.parent)
    assert (run_dir / "latest").read_text() == f"global_step{step}"
    path = run_dir / f"global_step{step}" / "mp_rank_00_model_states.pt"
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return state


def _position(steps: int) -> DataState:
    """Where the data of an uninterrupted run stands after ``steps`` steps."""
    state = DataState(STEPS_PER_EPOCH)
    for _ in range(steps):
        state.advance()
    return state


def _check_reset_optimizer(profile: Path, tag: int, lrs_a: dict[int, str]) -> None:
    """train.py loads neither the optimizer nor the lr scheduler: AdamW and warmup start over."""
    result = launch(profile, "--resume_from_checkpoint", "--reset_optimizer")
    assert result.returncode == 0, result.stdout[-3000:]
    assert f"Resuming at epoch: {_position(tag).epoch}, step: {tag + 1}" in result.stdout
    assert _lrs(result.stdout)[tag + 1] == lrs_a[1]  # the warmup's first lr again
    state = _final_state(profile, tag + 1)
    assert state["lr_scheduler"]["last_epoch"] == 1  # run A's scheduler had counted tag + 1 steps
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {1}
    assert state["custom_loader"] == _position(tag + 1).state_dict()  # the data goes on


def _check_reset_dataloader(profile: Path, tag: int) -> None:
    """train.py keeps the epoch number and restarts that epoch's data from its first batch."""
    epoch = _position(tag).epoch
    result = launch(profile, "--resume_from_checkpoint", "--reset_dataloader")
    out = result.stdout
    assert result.returncode == 0, out[-3000:]
    assert f"Resuming at epoch: {epoch}, step: {tag + 1}" in out
    before_bump = out[: out.index(f"Started new epoch: {epoch + 1}")]
    # a whole epoch runs after the resume before the next one starts (run A: only the rest of it)
    assert max(int(n) for n in re.findall(r"(?m)^steps: (\d+) ", before_bump)) == tag + STEPS_PER_EPOCH
    state = _final_state(profile, tag + STEPS_PER_EPOCH + 1)
    assert state["custom_loader"] == {"epoch": epoch + 1, "num_batches_pulled": 2}
    # the optimizer was restored: AdamW counted every step since step 1
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {tag + STEPS_PER_EPOCH + 1}


def _check_force_constant_lr(profile: Path, tag: int) -> None:
    """train.py: the scheduler is not loaded and the lr is constant from the resume on; the optimizer's
    state (AdamW's moments and step count) is still restored."""
    result = launch(profile, "--resume_from_checkpoint")
    assert result.returncode == 0, result.stdout[-3000:]
    assert float(_lrs(result.stdout)[tag + 1]) == pytest.approx(CONSTANT_LR)
    state = _final_state(profile, tag + 1)
    assert {int(s["step"]) for s in state["optimizer"]["state"].values()} == {tag + 1}
