"""Shared fixtures for the engine tests: one generated demo model/dataset set per session, profile
writers, and a launcher that runs the engine under the real deepspeed launcher on the CPU."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
LAUNCH_TIMEOUT = 300


@dataclass(frozen=True)
class Assets:
    """Paths of the generated demo parts."""

    root: Path
    models: Path
    transformer: Path
    images: Path
    eval_images: Path


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """A minimal TOML writer (scalars, lists, tables, arrays of tables) for test configs."""
    lines = [
        f"{k} = {_toml_value(v)}"
        for k, v in data.items()
        if not isinstance(v, dict | list) or _scalar_list(v)
    ]
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{key}]")
            lines += [f"{k} = {_toml_value(v)}" for k, v in value.items()]
        elif isinstance(value, list) and not _scalar_list(value):
            for item in value:
                lines.append(f"\n[[{key}]]")
                lines += [f"{k} = {_toml_value(v)}" for k, v in item.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and not any(isinstance(v, dict) for v in value)


@pytest.fixture(scope="session")
def assets(tmp_path_factory: pytest.TempPathFactory) -> Assets:
    """Generate the tiny Chroma model, VAE, T5 and shapes images once per session."""
    from dpipe_tui.engine import demo

    root = tmp_path_factory.mktemp("engine-assets")
    a = Assets(
        root, root / "models", root / "models" / "chroma-tiny.safetensors", root / "shapes", root / "eval"
    )
    write_toml(root / "dataset.toml", {"resolutions": [64], "directory": [{"path": str(a.images)}]})
    write_toml(
        root / "profile.toml",
        {
            "output_dir": str(root / "unused"),
            "dataset": "dataset.toml",
            "epochs": 1,
            "model": {
                "type": "chroma",
                "diffusers_path": str(a.models),
                "transformer_path": str(a.transformer),
            },
        },
    )
    demo.prepare(root / "profile.toml")
    a.eval_images.mkdir()
    for stem in ("red-circle-large", "blue-square-small", "green-triangle-large", "yellow-circle-small"):
        for suffix in (".png", ".txt"):
            shutil.copy(a.images / f"{stem}{suffix}", a.eval_images / f"{stem}{suffix}")
    return a


def make_profile(folder: Path, assets: Assets, images: Path | None = None, **overrides: Any) -> Path:
    """Write ``profile.toml`` + ``dataset.toml`` in ``folder`` (absolute paths); returns the profile."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset: dict[str, Any] = {
        "resolutions": [64],
        "enable_ar_bucket": True,
        "min_ar": 0.5,
        "max_ar": 2.0,
        "num_ar_buckets": 3,
        "directory": [{"path": str(images or assets.images), "num_repeats": 1}],
    }
    dataset.update(overrides.pop("dataset_overrides", {}))
    dataset["directory"][0].update(overrides.pop("directory_overrides", {}))
    write_toml(folder / "dataset.toml", dataset)
    config: dict[str, Any] = {
        "output_dir": str(folder / "output"),
        "dataset": str(folder / "dataset.toml"),
        "epochs": 2,
        "micro_batch_size_per_gpu": 4,
        "gradient_accumulation_steps": 1,
        "save_every_n_epochs": 1,
        "steps_per_print": 1,
        "eval_before_first_step": False,
    }
    tables: dict[str, dict[str, Any]] = {
        "model": {
            "type": "chroma",
            "diffusers_path": str(assets.models),
            "transformer_path": str(assets.transformer),
            "dtype": "bfloat16",
        },
        "adapter": {"type": "lora", "rank": 4, "dtype": "bfloat16"},
        "optimizer": {"type": "adamw", "lr": 2e-3, "weight_decay": 0.01},
        "dpipe_tui": {"engine": "builtin", "seed": 7},
    }
    for key, value in overrides.items():
        if value is None:  # e.g. adapter=None: a full fine-tune
            tables.pop(key, None)
            config.pop(key, None)
        elif key in tables and isinstance(value, dict):
            tables[key].update(value)
        else:
            config[key] = value
    config.update(tables)
    return write_toml(folder / "profile.toml", config)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def engine_env() -> dict[str, str]:
    env = dict(os.environ, DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WANDB_API_KEY", None)
    return env


def launch_argv(profile: Path, *extra: str, procs: int = 1, port: int | None = None) -> list[str]:
    """The supervisor's builtin argv (design.md): deepspeed runner → ``-m dpipe_tui.engine``."""
    port = port or free_port()
    where = ["--include", "localhost:0"] if procs == 1 else ["--num_gpus", str(procs)]
    runner = [sys.executable, "-m", "deepspeed.launcher.runner", *where, "--master_port", str(port)]
    engine = [
        "--module",
        "dpipe_tui.engine",
        "--deepspeed",
        "--config",
        str(profile),
        "--master_port",
        str(port),
    ]
    return [*runner, *engine, *extra]


def launch(profile: Path, *extra: str, procs: int = 1) -> subprocess.CompletedProcess[str]:
    """Run a training to its end; stdout+stderr combined in ``.stdout``."""
    return subprocess.run(
        launch_argv(profile, *extra, procs=procs),
        cwd=profile.parent,
        env=engine_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=LAUNCH_TIMEOUT,
        check=False,
    )


def step_losses(output: str) -> dict[int, float]:
    """``steps: N loss: X`` lines → {N: X}."""
    return {
        int(m.group(1)): float(m.group(2)) for m in re.finditer(r"^steps: (\d+) loss: ([\d.]+)", output, re.M)
    }


def run_dirs(profile_dir: Path) -> list[Path]:
    out = profile_dir / "output"
    return sorted(out.iterdir()) if out.is_dir() else []


def read_scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar of every ``events.out.tfevents.*`` file in a run folder, by tag (file order)."""
    import struct

    from tensorboardX.proto import event_pb2

    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(run_dir.glob("events.out.tfevents.*"), key=lambda p: p.stat().st_mtime_ns):
        data = path.read_bytes()
        pos = 0
        while pos + 12 <= len(data):
            (length,) = struct.unpack("<Q", data[pos : pos + 8])
            record = data[pos + 12 : pos + 12 + length]
            pos += 12 + length + 4
            event = event_pb2.Event()
            event.ParseFromString(record)
            for value in event.summary.value:
                out.setdefault(value.tag, []).append((event.step, value.simple_value))
    return out
