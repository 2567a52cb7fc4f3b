"""Rough edges a new user hit in the first hour (the first-hour issue), each with the test that
would have caught it: real CLI processes against a real registry."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry

CLI = [sys.executable, "-m", "dpipe_tui"]
REPO = Path(__file__).resolve().parents[2]


def _home_with_runs(tmp_path: Path, n: int) -> Path:
    home = tmp_path / "home"
    registry = Registry(home)
    for i in range(n):
        record = RunRecord(id=f"20261201-{i:04d}-pipe-{i:04x}", profile_path="/p/pipe.toml", engine="builtin")
        registry.create(dataclasses.replace(record, state=RunState.COMPLETED, last_step=10, ended_at=1.0))
    return home


def test_a_closed_pipe_ends_quietly_with_the_sigpipe_status(tmp_path: Path) -> None:
    home = _home_with_runs(tmp_path, 300)  # `ls --all --json` of 300 runs is far more than a pipe buffer
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    proc = subprocess.Popen(
        [*CLI, "ls", "--all", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    assert proc.stdout.read(10)  # like `| head -c 10`
    proc.stdout.close()
    err = proc.stderr.read().decode()
    code = proc.wait(timeout=60)
    assert code in (0, -signal.SIGPIPE), (code, err)  # the shell shows -SIGPIPE as 141; it was 1
    assert err == ""


def test_not_found_names_the_run_with_both_quotes(tmp_path: Path) -> None:
    home = _home_with_runs(tmp_path, 1)
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    result = subprocess.run(
        [*CLI, "status", "nosuchrun"], capture_output=True, text=True, env=env, timeout=60
    )
    assert result.returncode == 3
    assert "no run matches 'nosuchrun'" in result.stderr  # the closing quote was stripped


def test_an_ended_runs_phase_is_its_outcome(tmp_path: Path) -> None:
    home = tmp_path / "home"
    registry = Registry(home)
    for run_id, state, phase in (
        ("20261201-0000-a-0001", RunState.FAILED, "training"),
        ("20261201-0001-b-0002", RunState.STOPPED, "checkpointing"),
    ):
        base = RunRecord(id=run_id, profile_path="/p/x.toml", engine="builtin")
        registry.create(dataclasses.replace(base, state=state, phase=phase, ended_at=1.0))
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    listing = subprocess.run([*CLI, "ls", "--all"], capture_output=True, text=True, env=env, timeout=60)
    rows = {line.split()[0]: line.split() for line in listing.stdout.splitlines()[1:]}
    assert rows["20261201-0000-a-0001"][2] == "failed"  # ID, STATE, PHASE: was "training"
    assert rows["20261201-0001-b-0002"][2] == "stopped"  # was "checkpointing"
    status = subprocess.run(
        [*CLI, "status", "20261201-0000-a"], capture_output=True, text=True, env=env, timeout=60
    )
    phase_line = next(line for line in status.stdout.splitlines() if line.strip().startswith("phase"))
    assert phase_line.split()[-1] == "failed"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "{profile}", "--engine", "bogus", "--detach"],
            "--engine 'bogus': choose builtin or diffusion-pipe",
        ),
        (["run", "{profile}", "--gpus", "0,0", "--detach"], "GPU 0 is listed twice"),
        (["run", "{profile}", "--gpus", "1,-1", "--detach"], "GPU ids are 0 or more"),
        (["--home", "/proc/nope", "ls"], "--home /proc/nope: cannot create it"),
    ],
)
def test_usage_errors_exit_2_and_say_why(tmp_path: Path, args: list[str], message: str) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text('output_dir = "/tmp/out"\ndataset = "d.toml"\nepochs = 1\n[model]\ntype = "chroma"\n')
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    argv = [a.replace("{profile}", str(profile)) for a in args]
    result = subprocess.run([*CLI, *argv], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 2, result.stderr  # --engine bogus was 1; --home /proc/nope was 0, "no runs"
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_new_home_is_created_empty(tmp_path: Path) -> None:
    home = tmp_path / "new" / "home"
    result = subprocess.run([*CLI, "--home", str(home), "ls"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    assert home.is_dir()


@pytest.mark.parametrize("content", [b"", b"\x00\x01\x02\xff" * 100, b"hello\nworld\n"])
def test_metrics_on_a_file_without_training_lines_says_so(tmp_path: Path, content: bytes) -> None:
    log = tmp_path / "x.log"
    log.write_bytes(content)
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    result = subprocess.run([*CLI, "metrics", str(log)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 1  # was 0 with an empty summary
    assert "no training lines" in result.stderr
    assert result.stdout == ""


def test_validate_says_each_thing_once(tmp_path: Path) -> None:
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('[model]\ntype = "chroma"\ndiffusers_path = "/path/to/chroma"\n')
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    out = subprocess.run([*CLI, "validate", str(empty), str(wrong)], capture_output=True, text=True, env=env)
    text = out.stdout + out.stderr
    model_lines = [line for line in text.splitlines() if str(empty) in line and "model" in line]
    assert len(model_lines) == 1, model_lines  # the missing [model] was reported twice
    path_line = next(line for line in text.splitlines() if "/path/to/chroma" in line)
    assert path_line.count("model.diffusers_path") == 1, path_line  # the key was repeated in the message


def test_new_writes_into_the_current_folder_and_says_where(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    result = subprocess.run(
        [*CLI, "new", "--recipe", "chroma", "mine"],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert (work / "mine.toml").is_file()  # it went into the checkout's profiles/ before
    assert f"created {work / 'mine.toml'}" in result.stdout


def _demo_copy(tmp_path: Path) -> Path:
    """The shipped demo profile and its dataset config, copied (their relative paths now point nowhere)."""
    folder = tmp_path / "demo"
    folder.mkdir()
    for name in ("tiny-demo.toml", "tiny-demo-dataset.toml"):
        (folder / name).write_text((REPO / "profiles" / name).read_text())
    return folder / "tiny-demo.toml"


def _validate(tmp_path: Path, profile: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    cmd = [*CLI, "validate", str(profile)]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)


def test_a_demo_profile_without_its_dataset_config_fails_validation(tmp_path: Path) -> None:
    profile = _demo_copy(tmp_path)
    profile.with_name("tiny-demo-dataset.toml").unlink()
    result = _validate(tmp_path, profile)
    assert result.returncode == 1, result.stdout  # was 0: "generated on first run" (it is not)
    assert "dataset config" in result.stdout
    assert "generated on first run" not in next(ln for ln in result.stdout.splitlines() if ": dataset:" in ln)


def test_a_demo_profile_whose_images_are_still_to_be_made_has_no_plan_errors(tmp_path: Path) -> None:
    profile = _demo_copy(tmp_path)
    result = _validate(tmp_path, profile)
    assert result.returncode == 0, result.stdout
    assert "ERROR" not in result.stdout  # a plan of folders still to be made listed errors that never happen
    assert "the demo makes its images on the first run" in result.stdout


@pytest.mark.parametrize("make", [False, True], ids=["missing-folder", "empty-folder"])
def test_a_plan_error_counts_and_names_its_real_cause(tmp_path: Path, make: bool) -> None:
    profile = _demo_copy(tmp_path)
    text = profile.read_text().replace("prepare = 'demo'", "random_init = true")
    profile.write_text(text.replace("../.demo/models/tiny-chroma", str(tmp_path)))  # a folder that exists
    images = tmp_path / "images"
    if make:
        images.mkdir()
    dataset = profile.with_name("tiny-demo-dataset.toml")
    dataset.write_text(dataset.read_text().replace("../.demo/datasets/shapes", str(images)))
    result = _validate(tmp_path, profile)
    assert result.returncode == 1, result.stdout
    errors = [ln.strip() for ln in result.stdout.splitlines() if "ERROR:" in ln]
    assert errors, result.stdout
    cause = "does not exist" if not make else "had no images/videos"
    assert cause in errors[0], errors  # the real cause first
    assert not any("rounding down" in ln for ln in errors), errors  # not diffusion-pipe's guess
    assert "FAILED:" in result.stdout


def test_the_recipe_output_dir_placeholder_is_an_error(tmp_path: Path) -> None:
    env = {**os.environ, "DPIPE_TUI_HOME": str(tmp_path / "home")}
    subprocess.run([*CLI, "new", "--recipe", "flux", "mine"], env=env, cwd=tmp_path, check=True, timeout=60)
    result = _validate(tmp_path, tmp_path / "mine.toml")
    assert result.returncode == 1
    line = next(ln for ln in result.stdout.splitlines() if ": output_dir:" in ln)
    assert "error" in line, line
    assert "placeholder" in line, line
