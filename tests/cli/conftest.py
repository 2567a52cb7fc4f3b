"""Fixtures for CLI tests through the real ``dpipe-tui`` command in subprocesses: a private home and a
stand-in diffusion-pipe checkout (scripted train.py + deepspeed shim) holding a valid Chroma profile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest
from PIL import Image

from dpipe_tui.runs.registry import Registry
from tests.supervisor.conftest import (  # noqa: F401  # re-exported fixtures
    _kill_leftovers,
    builtin_profile,
    checkout,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

MAIN = """\
output_dir = 'out'
dataset = 'dataset.toml'
epochs = 1
save_every_n_epochs = 1

[model]
type = 'chroma'
diffusers_path = 'flux'
transformer_path = 'chroma.safetensors'
dtype = 'bfloat16'

[adapter]
type = 'lora'
rank = 4

[optimizer]
type = 'adamw_optimi'
lr = 1e-4

[scripted]
{scripted}
"""


@pytest.fixture
def cli_home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    yield home
    _kill_leftovers(Registry(home))


@pytest.fixture
def dp_profile(checkout: Path) -> Callable[..., Path]:  # noqa: F811
    """Write a valid profile inside the stand-in checkout (relative paths resolve against it)."""
    (checkout / "flux").mkdir(exist_ok=True)
    (checkout / "chroma.safetensors").write_bytes(b"x")
    (checkout / "images").mkdir(exist_ok=True)
    # One captioned image: launch pre-flight refuses a dataset diffusion-pipe would find empty.
    Image.new("RGB", (512, 512), "gray").save(checkout / "images" / "a.png")
    (checkout / "images" / "a.txt").write_text("a gray square")
    (checkout / "dataset.toml").write_text("resolutions = [512]\n\n[[directory]]\npath = 'images'\n")

    def make(name: str = "demo", **scripted: object) -> Path:
        body = "\n".join(
            f"{k} = {str(v).lower() if isinstance(v, bool) else repr(v)}" for k, v in scripted.items()
        )
        path = checkout / f"{name}.toml"
        path.write_text(MAIN.format(scripted=body))
        return path

    return make


CLI = [sys.executable, "-m", "dpipe_tui"]


def cli(home: Path, checkout_dir: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the real CLI against ``home`` with the stand-in checkout configured."""
    env = dict(os.environ, DPIPE_TUI_HOME=str(home), DIFFUSION_PIPE_PATH=str(checkout_dir))
    return subprocess.run(
        [*CLI, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )


def cli_json(home: Path, checkout_dir: Path, *args: str) -> dict[str, Any]:
    proc = cli(home, checkout_dir, *args, "--json")
    assert proc.returncode == 0, proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data
