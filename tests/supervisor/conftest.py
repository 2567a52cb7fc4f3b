"""Fixtures for real-process supervisor tests: a private home, a stand-in diffusion-pipe checkout
whose train.py is the scripted trainer, and a ``deepspeed`` shim that execs it like the runner would."""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dpipe_tui.runs.model import RunRecord
from dpipe_tui.runs.registry import Registry
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.submit import SubmitSpec, submit

HERE = Path(__file__).parent
REPO = HERE.parents[1]

SHIM = """#!{python}
# Stand-in for the DeepSpeed runner: drop the runner flags, exec train.py with the rest (same pid).
import os, sys
args = sys.argv[1:]
i = args.index("train.py")
os.execv(sys.executable, [sys.executable, "-u", "train.py", *args[i + 1:]])
"""


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("DPIPE_TUI_HOME", str(home))
    yield home
    _kill_leftovers(Registry(home))


def _kill_leftovers(registry: Registry) -> None:
    records, _ = registry.scan()
    for r in records:
        if r.pgid:
            procs.signal_group(r.pgid, signal.SIGKILL)
        if r.monitor_pid not in (None, os.getpid()) and procs.is_alive(r.monitor_pid, r.monitor_started):
            procs.kill_quietly(r.monitor_pid or 0)


def stand_in_checkout(root: Path) -> Path:
    """A diffusion-pipe checkout at ``root`` whose train.py is the scripted trainer; returns its deepspeed."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(HERE / "scripted_trainer.py", root / "train.py")
    shim = root / "venv" / "bin" / "deepspeed"
    shim.parent.mkdir(parents=True, exist_ok=True)
    shim.write_text(SHIM.format(python=sys.executable))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    return shim


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    root = tmp_path / "diffusion-pipe"
    stand_in_checkout(root)
    return root


ProfileFactory = Callable[..., Path]


@pytest.fixture
def scripted_profile(tmp_path: Path) -> ProfileFactory:
    def make(name: str = "scripted", **scripted: object) -> Path:
        folder = tmp_path / "profiles"
        folder.mkdir(exist_ok=True)
        out = tmp_path / f"out-{name}"
        lines = [f'output_dir = "{out}"', 'dataset = "dataset.toml"', "epochs = 1", "", "[scripted]"]
        for key, value in scripted.items():
            lines.append(f"{key} = {str(value).lower() if isinstance(value, bool) else repr(value)}")
        path = folder / f"{name}.toml"
        path.write_text("\n".join(lines) + "\n")
        (folder / "dataset.toml").write_text("resolutions = [64]\n")
        return path

    return make


def copy_freezer(profile: Path, dest: Path, base_dir: Path) -> Path:
    """The scripted profiles are not real diffusion-pipe profiles: freeze by plain copy."""
    target = dest / "profile.toml"
    shutil.copy(profile, target)
    return target


Submitter = Callable[..., RunRecord]


@pytest.fixture
def submit_scripted(home: Path, checkout: Path) -> Submitter:
    def go(
        profile: Path, *, gpus: tuple[int, ...] = (0,), start: bool = True, auto_resume: int = 0
    ) -> RunRecord:
        spec = SubmitSpec(
            profile=profile,
            engine="diffusion-pipe",
            base_dir=checkout,
            cwd=checkout,
            launcher=str(checkout / "venv" / "bin" / "deepspeed"),
            gpus=gpus,
            auto_resume=auto_resume,
        )
        return submit(Registry(home), spec, freezer=copy_freezer, start=start)

    return go


def wait_for(predicate: Callable[[], object], timeout: float = 30.0, interval: float = 0.1) -> object:
    """Poll until ``predicate()`` is truthy; fail the test on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")


def kill_engine_group(record: RunRecord) -> None:
    """SIGKILL the run's engine group behind the supervisor's back; return once its leader is gone
    (signal delivery is asynchronous)."""
    os.killpg(record.pgid or 0, signal.SIGKILL)
    wait_for(lambda: not procs.is_alive(record.pid, record.pid_started), 5, 0.01)


def state_of(home: Path, run_id: str) -> str:
    from dpipe_tui.supervisor.reconcile import reconcile

    registry = Registry(home)
    return reconcile(registry, registry.load(run_id)).state.value


def shared_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny demo profile's folder, its generated model and images made once per session.

    Kept under the session's base temp dir (not a fixture of one conftest), so the supervisor and the
    CLI tests share one generation (~5 s) instead of paying it per test.
    """
    root = tmp_path_factory.getbasetemp() / "shared-tiny-demo"
    folder = root / "profiles"
    if not (root / "ready").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("tiny-demo.toml", "tiny-demo-dataset.toml"):
            shutil.copy(REPO / "profiles" / name, folder / name)
        subprocess.run(
            [sys.executable, "-m", "dpipe_tui.engine.demo", "--profile", str(folder / "tiny-demo.toml")],
            check=True,
            capture_output=True,
            stdin=subprocess.DEVNULL,
        )
        (root / "ready").write_text("ok\n")
    return folder


BuiltinProfileFactory = Callable[..., Path]


@pytest.fixture
def builtin_profile(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> BuiltinProfileFactory:
    """Write a copy of the tiny demo profile (shared assets) whose ``output_dir`` is in ``tmp_path``."""
    folder = shared_demo(tmp_path_factory)

    def make(**changes: str) -> Path:
        text = (folder / "tiny-demo.toml").read_text()
        changes = {"output_dir": repr(str(tmp_path / "output")), **changes}
        for key, value in changes.items():
            text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
            assert n == 1, key
        path = folder / f"tiny-demo-{tmp_path.name}.toml"
        path.write_text(text)
        return path

    return make
