"""Launch pre-flight through the service: engine choice, CPU slots, busy GPUs, disk, secrets."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.services.errors import RefusalCode, Remedy, RemedyAction
from dpipe_tui.supervisor import procs

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _fake_spawn(registry: Registry, run_id: str) -> tuple[int, float | None]:
    return os.getpid(), procs.start_time(os.getpid())  # "monitor" = this live process: the run stays starting


@pytest.fixture
def env(checkout: Path, cli_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    monkeypatch.setenv("DPIPE_TUI_HOME", str(cli_home))
    return cli_home


def _launch(home: Path, profile: Path, **kw: object) -> runs.LaunchResult:
    return runs.launch(home, runs.LaunchRequest(profile=profile, **kw), spawn=_fake_spawn)  # type: ignore[arg-type]


def test_engine_precedence_flag_profile_settings(env: Path, dp_profile: Callable[..., Path]) -> None:
    profile = dp_profile()
    assert (r := _launch(env, profile).record) is not None
    assert r.engine == "builtin"  # the default
    (env / "settings.toml").write_text('default_engine = "diffusion-pipe"\n')
    assert (r := _launch(env, profile, queue=True).record) is not None
    assert r.engine == "diffusion-pipe"
    profile.write_text(profile.read_text() + "\n[dpipe_tui]\nengine = 'builtin'\n")
    assert (r := _launch(env, profile, queue=True).record) is not None
    assert r.engine == "builtin"
    assert (r := _launch(env, profile, engine="diffusion-pipe", queue=True).record) is not None
    assert r.engine == "diffusion-pipe"


def test_cpu_slots_busy_gpus_and_disk(env: Path, dp_profile: Callable[..., Path]) -> None:
    profile = dp_profile()
    too_many = _launch(env, profile, gpus=(os.cpu_count() or 1,))
    assert too_many.record is None
    assert "CPU slots" in (too_many.error or "")
    first = _launch(env, profile, engine="diffusion-pipe")
    assert first.record is not None
    assert first.record.cpu
    busy = _launch(env, profile, engine="diffusion-pipe")
    assert busy.record is None
    assert busy.refusal is not None
    assert busy.refusal.code is RefusalCode.GPUS_BUSY  # typed: no CLI flag in the message
    assert busy.refusal.remedy == Remedy(RemedyAction.QUEUE, first.record.id)
    assert "--queue" not in busy.refusal.message
    queued = _launch(env, profile, engine="diffusion-pipe", queue=True)
    assert queued.record is not None
    assert queued.record.state.value == "queued"
    (env / "settings.toml").write_text("min_free_gib = 1000000\n")
    full = _launch(env, profile, engine="diffusion-pipe", queue=True)
    assert full.record is None
    assert "GiB free" in (full.error or "")
    assert full.refusal is not None
    assert full.refusal.code is RefusalCode.DISK_LOW


def test_no_secret_reaches_the_registry(
    env: Path, dp_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("WANDB_API_KEY", secret)
    profile = dp_profile()
    profile.write_text(
        profile.read_text().replace(
            "[scripted]", f"[monitoring]\nenable_wandb = false\nwandb_api_key = '{secret}'\n\n[scripted]"
        )
    )
    result = _launch(env, profile, engine="diffusion-pipe")
    assert result.record is not None, result.error
    run_dir = Registry(env).run_dir(result.record.id)
    for path in run_dir.iterdir():
        assert secret not in path.read_text(errors="replace"), path.name


def test_a_dataset_diffusion_pipe_would_find_empty_blocks_the_launch(
    env: Path, dp_profile: Callable[..., Path], checkout: Path
) -> None:
    profile = dp_profile()
    for item in (checkout / "images").iterdir():
        item.unlink()
    result = _launch(env, profile, engine="diffusion-pipe")
    assert result.record is None
    assert "error(s) in the profile" in (result.error or "")
    located = [f for f in result.findings if f.code == "dataset-no-media"]
    assert located, [f.code for f in result.findings]
    assert located[0].file == checkout / "dataset.toml"
    assert located[0].line == 4  # the [[directory]] path line
    assert not Registry(env).scan()[0]  # nothing was registered


def test_launch_keeps_the_plans_steps_per_epoch_even_when_max_steps_caps_the_total(
    env: Path, dp_profile: Callable[..., Path], checkout: Path
) -> None:
    from PIL import Image

    from dpipe_tui.services.progress import plan_for_record

    profile = dp_profile()
    profile.write_text(profile.read_text().replace("epochs = 1\n", "epochs = 5\nmax_steps = 7\n", 1))
    for i in range(3):  # + the fixture's one image: 4 steps an epoch at micro batch 1
        Image.new("RGB", (512, 512)).save(checkout / "images" / f"{i}.png")
        (checkout / "images" / f"{i}.txt").write_text("a photo")
    record = _launch(env, profile, engine="diffusion-pipe").record
    assert record is not None
    assert (record.total_steps, record.steps_per_epoch) == (7, 4)
    assert Registry(env).load(record.id).steps_per_epoch == 4  # stored in run.json
    plan = plan_for_record(record)
    assert (plan.steps_per_epoch, plan.epochs, plan.max_steps) == (4, 5, 7)


def test_the_frozen_copy_is_the_validated_bytes(env: Path, dp_profile: Callable[..., Path]) -> None:
    """An editor saves the profile and its dataset between validation and freezing (a hook, no sleep)."""
    profile = dp_profile()
    dataset = profile.parent / "dataset.toml"
    validated_main, validated_dataset = profile.read_text(), dataset.read_text()

    def editor_saves() -> None:
        profile.write_text(validated_main.replace("epochs = 1", "epochs = 99") + "\n# edited\n")
        dataset.write_text("resolutions = [64]\n\n[[directory]]\npath = 'elsewhere'\n")

    result = runs.launch(
        env, runs.LaunchRequest(profile=profile), spawn=_fake_spawn, before_freeze=editor_saves
    )
    assert result.record is not None, result.error
    run_dir = Registry(env).run_dir(result.record.id)
    frozen_main = (run_dir / "profile.toml").read_text()
    frozen_dataset = (run_dir / "dataset.toml").read_text()
    assert "# edited" not in frozen_main
    assert "epochs = 99" not in frozen_main
    assert "[512]" in frozen_dataset  # the validated dataset config, not the saved one
    assert "elsewhere" not in frozen_dataset
    assert validated_dataset.splitlines()[0] == frozen_dataset.splitlines()[0]


@pytest.mark.parametrize("kind", ["binary", "latin1", "directory", "fifo", "unreadable", "huge"])
def test_every_command_refuses_an_unreadable_profile_cleanly(env: Path, tmp_path: Path, kind: str) -> None:
    """run and validate on what is not a small UTF-8 TOML file: one line naming the file, exit 1."""
    import subprocess
    import sys

    path = tmp_path / f"bad-{kind}.toml"
    if kind == "binary":
        path.write_bytes(bytes(range(256)) * 4)
    elif kind == "latin1":
        path.write_bytes("epochs = 1 # caf\xe9\n".encode("latin-1"))
    elif kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)
    elif kind == "unreadable":
        path.write_text("epochs = 1\n")
        path.chmod(0)
    else:
        with path.open("wb") as fh:
            fh.truncate(20 * 1024 * 1024)
    if kind == "unreadable" and os.geteuid() == 0:
        pytest.skip("root reads files without read permission")
    exe = os.path.join(os.path.dirname(sys.executable), "dpipe-tui")
    for command in (["run", str(path)], ["validate", str(path)]):
        proc = subprocess.run(
            [exe, *command], capture_output=True, text=True, timeout=60, env={**os.environ}, check=False
        )
        out = proc.stdout + proc.stderr
        assert proc.returncode == 1, (command, out)
        assert "Traceback" not in out, out
        assert str(path) in out, out
