"""The real built-in engine under the supervisor (CPU, DeepSpeed launcher): launch, graceful stop,
resume with step continuity, and the diffusion-pipe launch path through a stand-in checkout whose
train.py runs the built-in engine under the real ``deepspeed`` runner."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.supervisor import procs
from dpipe_tui.telemetry.events import Event, EventKind
from tests.supervisor.conftest import BuiltinProfileFactory, wait_for

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 300


def _demo_profile(folder: Path, **changes: str) -> Path:
    """Copy the tiny demo profile into ``folder`` (its assets land in ``folder/../.demo``)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "profiles" / "tiny-demo-dataset.toml", folder / "tiny-demo-dataset.toml")
    text = (REPO / "profiles" / "tiny-demo.toml").read_text()
    for key, value in changes.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, key
    path = folder / "tiny-demo.toml"
    path.write_text(text)
    return path


def _ended(home: Path, run_id: str) -> RunRecord:
    wait_for(lambda: runs.status(home, run_id).record.state.is_terminal, TIMEOUT, 0.5)
    return Registry(home).load(run_id)


def _launch(home: Path, profile: Path, engine: str | None = None) -> RunRecord:
    result = runs.launch(home, runs.LaunchRequest(profile=profile, engine=engine))
    assert result.record is not None, result.error
    return result.record


def test_builtin_stop_then_resume_continues_the_step(
    home: Path, builtin_profile: BuiltinProfileFactory
) -> None:
    profile = builtin_profile(epochs="40", checkpoint_every_n_epochs="1", save_every_n_epochs="100")
    record = _launch(home, profile)
    registry = Registry(home)
    assert record.engine == "builtin"
    wait_for(lambda: registry.load(record.id).checkpoint_tag is not None, TIMEOUT, 0.2)
    live = registry.load(record.id)
    assert live.state is RunState.RUNNING
    assert len(procs.group_members(live.pgid)) >= 2  # runner, launcher, rank
    stopped = runs.stop_run(home, record.id, timeout=120)
    assert stopped.graceful
    assert stopped.leftovers == ()
    assert procs.group_members(live.pgid) == []
    assert stopped.record.state is RunState.STOPPED
    assert "Manually quitting" in registry.console_log(record.id).read_text()
    saved = int(
        (Path(stopped.record.engine_run_dir or "") / "latest").read_text().removeprefix("global_step")
    )
    runs.resume_run(home, record.id)
    final = _ended(home, record.id)
    assert final.state is RunState.COMPLETED, final.failure_message
    assert final.attempt == 2
    assert final.last_step == final.total_steps == 240
    console = registry.console_log(record.id).read_text()
    second = console[console.index("==== dpipe-tui: attempt 2") :]
    m = re.search(r"Resuming training from checkpoint\. Resuming at epoch: (\d+), step: (\d+)", second)
    assert m is not None
    assert int(m[2]) == saved + 1
    first_step = re.search(r"(?m)^steps: (\d+) ", second[m.end() :])
    assert first_step is not None
    assert int(first_step[1]) == saved + 1
    # TensorBoard scalars are merged into metrics.jsonl, each (tag, step) once across both attempts
    events = [Event.from_json(line) for line in registry.metrics(record.id).read_text().splitlines()]
    losses = [
        e.get("step") for e in events if e and e.kind is EventKind.SCALAR and e.get("tag") == "train/loss"
    ]
    assert sorted(losses) == list(range(1, 241))
    assert any(e and e.kind is EventKind.SCALAR and e.get("tag") == "train/epoch_loss" for e in events)


def test_diffusion_pipe_path_with_a_stand_in_checkout(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "diffusion-pipe"
    profile = _demo_profile(checkout, epochs="2", save_every_n_epochs="2", checkpoint_every_n_epochs="2")
    (checkout / "train.py").write_text(
        "import os, sys\n"
        "print(f'stand-in train.py cwd={os.getcwd()} argv={sys.argv[1:]}', flush=True)\n"
        "from dpipe_tui.engine.__main__ import main\n"
        "sys.exit(main())\n"
    )
    (checkout / "venv" / "bin").mkdir(parents=True)
    (checkout / "venv" / "bin" / "deepspeed").symlink_to(Path(sys.executable).parent / "deepspeed")
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    record = _launch(home, profile, engine="diffusion-pipe")
    final = _ended(home, record.id)
    assert final.state is RunState.COMPLETED, final.failure_message
    port = str(final.master_port)
    assert final.argv[0] == str(checkout / "venv" / "bin" / "deepspeed")
    assert list(final.argv[1:6]) == ["--include", "localhost:0", "--master_port", port, "train.py"]
    console = Registry(home).console_log(record.id).read_text()
    assert f"stand-in train.py cwd={checkout} argv=['--local_rank=0', '--deepspeed', '--config'," in console
    assert f"'--master_port', '{port}']" in console
    assert final.engine_run_dir is not None
    assert Path(final.engine_run_dir).parent == (tmp_path / ".demo" / "output" / "tiny-demo")
    assert (Path(final.engine_run_dir) / "epoch2").is_dir()


def test_builtin_stop_loop_leaves_zero_processes(home: Path, builtin_profile: BuiltinProfileFactory) -> None:
    """The stop loop on the real runner → launcher → rank group (the scripted 20-run loop covers more)."""
    profile = builtin_profile(epochs="1000", save_every_n_epochs="1000", checkpoint_every_n_epochs="1000")
    registry = Registry(home)
    for i in range(3):
        record = _launch(home, profile)

        def whole_group(run_id: str = record.id) -> bool:
            r = registry.load(run_id)
            return r.state is RunState.RUNNING and len(procs.group_members(r.pgid)) >= 3

        wait_for(whole_group, TIMEOUT, 0.1)  # runner, launcher and rank all started (still loading)
        pgid = registry.load(record.id).pgid
        result = runs.stop_run(home, record.id, now=bool(i % 2), timeout=30)
        assert result.leftovers == (), f"run {i}: {result.message}"
        assert procs.group_members(pgid) == [], f"run {i}"
        assert result.record.state is RunState.STOPPED, f"run {i}"
