"""Signal files and exact resume: a run stopped with ``save_quit`` and resumed repeats the losses and
the final LoRA of an uninterrupted run with the same seed."""

from __future__ import annotations

import os
import re
import subprocess
from typing import TYPE_CHECKING, Any

import pytest
import torch
from safetensors.torch import load_file

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
