"""Command line, environment and working directory of an engine, as a pure function of the run record.

Why pure: the exact command is the contract with diffusion-pipe (spec §1, §9), so it is built in one
place from plain data and tested without starting anything. Both engines get the same treatment:
the DeepSpeed runner with explicit GPU ids (``--include``; never ``--num_gpus`` on GPUs, spec §1.2),
the same master port given to the runner *and* to train.py, NCCL P2P/IB disabled, and an explicit
resume folder name (a bare ``--resume_from_checkpoint`` picks the newest entry of ``output_dir``,
spec §5.6). On a machine without an NVIDIA GPU the builtin engine runs on CPU "slots":
``DS_ACCELERATOR=cpu`` and ``--num_gpus N``, because the CPU accelerator reports a single device and
rejects ``--include localhost:0,1``.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from dpipe_tui.runs.model import RunRecord

BUILTIN = "builtin"
DIFFUSION_PIPE = "diffusion-pipe"
ENGINES = (BUILTIN, DIFFUSION_PIPE)

BASE_ENV: Mapping[str, str] = {
    "NCCL_P2P_DISABLE": "1",
    "NCCL_IB_DISABLE": "1",
    "PYTHONUNBUFFERED": "1",
    # CUDA's default order is "fastest first", NVML's is PCI bus order: without this, `--include
    # localhost:1` (chosen from NVML's list, e.g. the free GPU) may run on another GPU.
    "CUDA_DEVICE_ORDER": "PCI_BUS_ID",
}


@dataclass(frozen=True, slots=True)
class LaunchCommand:
    """What the monitor executes: ``argv`` in ``cwd`` with ``env`` added to its own environment."""

    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str] = field(default_factory=dict)


def include_flag(gpus: Sequence[int]) -> list[str]:
    """``--include localhost:0,2`` for the given device ids."""
    return ["--include", "localhost:" + ",".join(str(g) for g in gpus)]


def train_args(record: RunRecord, port: int) -> list[str]:
    """The train.py flags shared by both engines (config, port, explicit resume folder, extras)."""
    if record.config_path is None:
        raise ValueError(f"run {record.id} has no frozen config")
    args = ["--deepspeed", "--config", record.config_path, "--master_port", str(port)]
    if record.resume_from:
        args += ["--resume_from_checkpoint", record.resume_from]
    args += list(record.extra_args)
    return args


def build_command(record: RunRecord, port: int) -> LaunchCommand:
    """Return the command that starts ``record``'s engine on master port ``port``.

    Raises:
        ValueError: unknown engine, or a record without config/cwd/launcher.
    """
    env = dict(BASE_ENV)
    if record.cpu:
        env["DS_ACCELERATOR"] = "cpu"
    if record.cwd is None:
        raise ValueError(f"run {record.id} has no working directory")
    cwd = Path(record.cwd)
    if record.engine == BUILTIN:
        python = record.launcher or sys.executable
        devices = ["--num_gpus", str(len(record.gpus))] if record.cpu else include_flag(record.gpus)
        argv = [python, "-m", "deepspeed.launcher.runner", *devices, "--master_port", str(port)]
        argv += ["--module", "dpipe_tui.engine", *train_args(record, port)]
    elif record.engine == DIFFUSION_PIPE:
        if not record.launcher:
            raise ValueError(f"run {record.id} has no deepspeed executable")
        argv = [record.launcher, *include_flag(record.gpus), "--master_port", str(port), "train.py"]
        argv += train_args(record, port)
    else:
        raise ValueError(f"unknown engine {record.engine!r} (choose {' or '.join(ENGINES)})")
    return LaunchCommand(argv=tuple(argv), cwd=cwd, env=env)


def resolve_deepspeed(checkout: Path, configured: str | None = None) -> str:
    """The ``deepspeed`` executable for a diffusion-pipe checkout.

    Order: the configured path; ``<checkout>/venv/bin/deepspeed`` (or ``.venv``) if present;
    ``deepspeed`` on PATH; plain ``deepspeed`` (the monitor then reports the launch error).
    """
    if configured:
        return configured
    for venv in ("venv", ".venv"):
        candidate = checkout / venv / "bin" / "deepspeed"
        if candidate.is_file():
            return str(candidate)
    return shutil.which("deepspeed") or "deepspeed"
