"""The run commands through the real CLI in subprocesses, with the diffusion-pipe launch path
(stand-in checkout: scripted train.py behind a deepspeed shim)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.supervisor import procs
from tests.cli.conftest import CLI, cli, cli_json
from tests.supervisor.conftest import kill_engine_group, wait_for

if TYPE_CHECKING:
    from collections.abc import Callable


def _state(home: Path, checkout: Path, run_id: str) -> dict[str, Any]:
    return cli_json(home, checkout, "status", run_id)


def test_detached_run_then_ls_status_logs(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    profile = dp_profile(steps=4, step_time=0.02)
    proc = cli(cli_home, checkout, "run", str(profile), "--engine", "diffusion-pipe", "--detach")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    wait_for(lambda: _state(cli_home, checkout, run_id)["state"] == "completed")
    status = _state(cli_home, checkout, run_id)
    assert status["last_step"] == 4
    assert status["cwd"] == str(checkout)
    frozen = tomllib.loads(Path(str(status["config_path"])).read_text())
    assert frozen["output_dir"] == str(checkout / "out")  # relative paths resolve against the checkout
    listing = cli_json(cli_home, checkout, "ls")
    assert [r["id"] for r in listing["runs"]] == [run_id]
    logs = cli(cli_home, checkout, "logs", run_id[:12], "-n", "3")
    assert "TRAINING COMPLETE!" in logs.stdout
    table = cli(cli_home, checkout, "ls")
    assert run_id in table.stdout
    assert "completed" in table.stdout


def test_foreground_run_exit_codes(cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]) -> None:
    ok = cli(
        cli_home,
        checkout,
        "run",
        str(dp_profile("good", steps=3, step_time=0.02)),
        "--engine",
        "diffusion-pipe",
    )
    assert ok.returncode == 0, ok.stderr
    assert "phase:" in ok.stdout
    assert "completed" in ok.stdout
    bad = cli(
        cli_home,
        checkout,
        "run",
        str(dp_profile("bad", steps=3, step_time=0.02, fail_at=2, exit_code=1)),
        "--engine",
        "diffusion-pipe",
    )
    assert bad.returncode == 1
    assert "failed" in bad.stdout


def test_invalid_profile_is_refused_without_a_run(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    profile = dp_profile()
    profile.write_text(profile.read_text().replace("type = 'chroma'", "type = 'nonsense'"))
    proc = cli(cli_home, checkout, "run", str(profile), "--engine", "diffusion-pipe", "--detach")
    assert proc.returncode == 1
    assert "error" in proc.stderr
    assert Registry(cli_home).ids() == []


def test_prefix_resolution_exit_codes(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    profile = dp_profile(steps=1, step_time=0.01)
    for _ in range(2):
        assert cli(cli_home, checkout, "run", str(profile), "--engine", "diffusion-pipe").returncode == 0
    ambiguous = cli(cli_home, checkout, "status", "2")
    assert ambiguous.returncode == 2
    assert "matches 2 runs" in ambiguous.stderr
    assert cli(cli_home, checkout, "status", "nope").returncode == 3


def test_busy_gpu_needs_queue_and_queue_dispatches(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    long = cli(
        cli_home,
        checkout,
        "run",
        str(dp_profile("long", steps=10_000, step_time=0.05)),
        "--engine",
        "diffusion-pipe",
        "--detach",
    )
    first = long.stdout.strip()
    wait_for(lambda: _state(cli_home, checkout, first)["state"] == "running")
    short = dp_profile("short", steps=2, step_time=0.01)
    refused = cli(cli_home, checkout, "run", str(short), "--engine", "diffusion-pipe", "--detach")
    assert refused.returncode == 1
    assert "--queue" in refused.stderr
    queued = cli(cli_home, checkout, "run", str(short), "--engine", "diffusion-pipe", "--detach", "--queue")
    second = queued.stdout.strip()
    assert _state(cli_home, checkout, second)["state"] == "queued"
    assert cli(cli_home, checkout, "rm", first).returncode == 1  # live runs are not removed
    stop = cli(cli_home, checkout, "stop", first, "--now")
    assert stop.returncode == 0, stop.stderr
    # the stopped run's monitor (or this ls) dispatches the queued run
    wait_for(lambda: cli_json(cli_home, checkout, "ls")["runs"][1]["state"] == "completed")
    assert cli(cli_home, checkout, "rm", first).returncode == 0


def _client_then_ssh_drop(
    argv: list[str], env: dict[str, str], registry: Registry, tmp_path: Path, timeout: float
) -> str:
    """Start ``argv`` (a foreground ``run``: it follows the run, so it is provably alive when killed)
    in a shell session standing in for the SSH login; once the run steps, SIGKILL the client and
    SIGHUP its session's process group, as when SSH drops. Returns the run id."""
    pidfile = tmp_path / "client.pid"
    session = subprocess.Popen(
        ["bash", "-c", f"{' '.join(argv)} >/dev/null 2>&1 & echo $! > {pidfile}; wait"],
        env=env,
        start_new_session=True,
    )
    wait_for(lambda: registry.ids() and pidfile.exists() and pidfile.read_text().strip(), timeout)
    run_id = registry.ids()[0]
    wait_for(lambda: (registry.load(run_id).last_step or 0) >= 2, timeout, 0.2)
    client_pid = int(pidfile.read_text())
    assert os.getpgid(client_pid) == session.pid
    os.kill(client_pid, signal.SIGKILL)
    os.killpg(session.pid, signal.SIGHUP)
    session.wait(timeout=10)
    return run_id


def test_run_survives_client_kill_and_sighup(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path], tmp_path: Path
) -> None:
    env = dict(os.environ, DPIPE_TUI_HOME=str(cli_home), DIFFUSION_PIPE_PATH=str(checkout))
    profile = dp_profile(steps=10_000, step_time=0.05)
    registry = Registry(cli_home)
    run_id = _client_then_ssh_drop(
        [*CLI, "run", str(profile), "--engine", "diffusion-pipe"], env, registry, tmp_path, 60
    )
    step = registry.load(run_id).last_step or 0
    time.sleep(2.5)
    status = _state(cli_home, checkout, run_id)
    assert status["state"] == "running"
    assert status["engine_alive"] is True
    assert status["monitor_alive"] is True
    assert isinstance(status["last_step"], int)
    assert status["last_step"] > step


def test_builtin_run_survives_its_client_and_a_killed_group_fails_at_once(
    cli_home: Path, checkout: Path, builtin_profile: Callable[..., Path], tmp_path: Path
) -> None:
    """Acceptance with the real built-in engine (one run serves both): survival, then truth."""
    env = dict(os.environ, DPIPE_TUI_HOME=str(cli_home))
    profile = builtin_profile(epochs="1000", save_every_n_epochs="1000", checkpoint_every_n_epochs="1000")
    registry = Registry(cli_home)
    run_id = _client_then_ssh_drop([*CLI, "run", str(profile)], env, registry, tmp_path, 120)
    step = registry.load(run_id).last_step or 0
    time.sleep(2.5)
    status = _state(cli_home, checkout, run_id)
    assert (status["state"], status["engine"], status["engine_alive"], status["monitor_alive"]) == (
        "running",
        "builtin",
        True,
        True,
    )
    assert status["last_step"] > step
    # Truth: SIGKILL the runner, launcher and rank behind the supervisor's back.
    live = registry.load(run_id)
    assert len(procs.group_members(live.pgid)) >= 3
    kill_engine_group(live)
    t0 = time.monotonic()
    seen = runs.status(cli_home, run_id)
    assert time.monotonic() - t0 < 2.0
    assert seen.record.state.value == "failed"
    assert seen.record.exit_code == -9
    assert seen.record.failure_class
    assert _state(cli_home, checkout, run_id)["state"] == "failed"  # a fresh client agrees
    assert procs.group_members(live.pgid) == []
    # spec §5.6: the supervisor never writes into output_dir; only the engine's run folder is there
    assert os.listdir(tmp_path / "output") == [Path(seen.record.engine_run_dir or "").name]


def test_ctrl_c_detaches_the_viewer(cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]) -> None:
    env = dict(os.environ, DPIPE_TUI_HOME=str(cli_home), DIFFUSION_PIPE_PATH=str(checkout))
    client = subprocess.Popen(
        [*CLI, "run", str(dp_profile(steps=10_000, step_time=0.05)), "--engine", "diffusion-pipe"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    registry = Registry(cli_home)
    wait_for(lambda: registry.ids() and (registry.load(registry.ids()[0]).last_step or 0) >= 1)
    client.send_signal(signal.SIGINT)
    _, err = client.communicate(timeout=20)
    assert client.returncode == 130
    run_id = registry.ids()[0]
    assert f"dpipe-tui stop {run_id}" in err
    assert _state(cli_home, checkout, run_id)["state"] == "running"
    stop = cli(cli_home, checkout, "stop", run_id)  # graceful: save_quit
    assert stop.returncode == 0, stop.stderr
    assert "save_quit" in stop.stdout
    assert json.loads(cli(cli_home, checkout, "status", run_id, "--json").stdout)["state"] == "stopped"


def test_unreadable_run_is_listed_as_a_problem_and_removable(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    proc = cli(
        cli_home, checkout, "run", str(dp_profile(steps=1, step_time=0.01)), "--engine", "diffusion-pipe"
    )
    assert proc.returncode == 0, proc.stderr
    run_id = Registry(cli_home).ids()[0]
    (Registry(cli_home).run_dir(run_id) / "run.json").write_text("{not json")
    listing = cli_json(cli_home, checkout, "ls")
    assert listing["runs"] == []
    assert listing["problems"][0]["id"] == run_id
    status = cli(cli_home, checkout, "status", run_id)
    assert status.returncode == 1
    assert "not valid JSON" in status.stderr
    assert cli(cli_home, checkout, "rm", run_id).returncode == 0
    assert Registry(cli_home).ids() == []


def test_logs_follow_prints_until_the_run_ends(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    proc = cli(
        cli_home,
        checkout,
        "run",
        str(dp_profile(steps=30, step_time=0.05)),
        "--engine",
        "diffusion-pipe",
        "--detach",
    )
    run_id = proc.stdout.strip()
    follow = cli(cli_home, checkout, "logs", run_id, "-f", "-n", "0")
    assert follow.returncode == 0
    lines = follow.stdout.splitlines()
    assert "TRAINING COMPLETE!" in lines
    steps = [int(line.split()[1]) for line in lines if line.startswith("steps: ")]
    assert steps == list(range(steps[0], 31))  # no line lost or repeated between tail and follow


def test_stop_says_the_outcome_once(cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]) -> None:
    profile = dp_profile("long", steps=5000, step_time=0.05, checkpoint_every=10)
    proc = cli(cli_home, checkout, "run", str(profile), "--engine", "diffusion-pipe", "--detach")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    wait_for(lambda: (_state(cli_home, checkout, run_id).get("last_step") or 0) >= 2)
    stopped = cli(cli_home, checkout, "stop", run_id)
    assert stopped.returncode == 0, stopped.stderr
    last = stopped.stdout.strip().splitlines()[-1]
    assert last == f"run {run_id}: stopped (checkpoint saved (save_quit))"  # was "stopped (stopped; …)"


def test_follow_attaches_to_a_detached_run_until_it_ends(
    cli_home: Path, checkout: Path, dp_profile: Callable[..., Path]
) -> None:
    profile = dp_profile("later", steps=40, step_time=0.05)
    proc = cli(cli_home, checkout, "run", str(profile), "--engine", "diffusion-pipe", "--detach")
    assert proc.returncode == 0, proc.stderr
    run_id = proc.stdout.strip()
    followed = cli(cli_home, checkout, "follow", run_id[:16])
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.strip().splitlines()[-1] == f"run {run_id}: completed"
    assert cli(cli_home, checkout, "follow", "nosuchrun").returncode == 3
