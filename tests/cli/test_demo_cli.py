"""Demo acceptance: the README's first command, ``dpipe-tui run profiles/tiny-demo.toml``, through the
real CLI in the foreground (no TTY), the built-in engine under the real deepspeed launcher on the CPU.

The profile and its dataset TOML are copied byte for byte into ``tmp_path/profiles/`` so their
relative paths put the generated assets and the output in ``tmp_path/.demo`` instead of the
repository's; nothing else about the demo is changed (all 50 epochs, the shipped seed and lr).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors import safe_open

from dpipe_tui.runs.model import RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.telemetry.events import Event, EventKind

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DEMO_FILES = ("tiny-demo.toml", "tiny-demo-dataset.toml")


def test_tiny_demo_trains_to_completion_with_falling_loss(tmp_path: Path, cli_home: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in DEMO_FILES:
        shutil.copyfile(REPO / "profiles" / name, profiles / name)
        assert (profiles / name).read_bytes() == (REPO / "profiles" / name).read_bytes()
    env = dict(os.environ, DPIPE_TUI_HOME=str(cli_home))
    for key in ("WANDB_API_KEY", "DIFFUSION_PIPE_PATH", "DS_ACCELERATOR"):
        env.pop(key, None)
    proc = subprocess.run(  # cli_home's finalizer kills whatever a timeout leaves behind
        [sys.executable, "-m", "dpipe_tui", "run", "profiles/tiny-demo.toml"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    registry = Registry(cli_home)
    (run_id,) = registry.ids()
    console = registry.console_log(run_id).read_text()
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + console[-3000:]
    assert f"run {run_id}: completed" in proc.stdout
    saved = next(line for line in proc.stdout.splitlines() if line.startswith("saved: "))
    assert "/epoch50/adapter_model.safetensors (" in saved  # where the result is, with its size
    record = registry.load(run_id)
    assert record.state is RunState.COMPLETED
    assert record.last_step == record.total_steps == 300
    assert "TRAINING COMPLETE!" in console

    events = [Event.from_json(line) for line in registry.metrics(run_id).read_text().splitlines()]
    steps = {int(e.get("step")): float(e.get("loss")) for e in events if e and e.kind is EventKind.STEP}
    assert sorted(steps) == list(range(1, 301))
    losses = [steps[s] for s in sorted(steps)]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    assert last < 0.9 * first, (first, last)  # measured: ~1.49 -> ~1.15

    assert record.engine_run_dir is not None
    run_dir = Path(record.engine_run_dir)
    assert run_dir.parent.resolve() == (tmp_path / ".demo" / "output" / "tiny-demo").resolve()
    assert sorted(p.name for p in run_dir.glob("epoch*")) == [f"epoch{n}" for n in (10, 20, 30, 40, 50)]
    with safe_open(str(run_dir / "epoch50" / "adapter_model.safetensors"), framework="pt") as f:
        keys = set(f.keys())
        tensors = {k: f.get_tensor(k) for k in keys}
    assert keys
    assert all(
        k.startswith(("diffusion_model.double_blocks.", "diffusion_model.single_blocks.")) for k in keys
    )
    assert any(k.startswith("diffusion_model.double_blocks.") for k in keys)
    assert any(k.startswith("diffusion_model.single_blocks.") for k in keys)
    assert all(k.endswith((".lora_A.weight", ".lora_B.weight")) for k in keys)
    # the LoRA was trained: lora_B starts at zero in PEFT
    assert any(float(t.abs().max()) > 0 for k, t in tensors.items() if k.endswith("lora_B.weight"))
