"""Benchmark of the built-in engine on the CPU: the tiny demo's step time, samples/s, and where the
time from launch to the first step goes.

Run: ``.venv/bin/python benchmarks/bench_engine.py [--keep DIR]``. It copies the demo profile into
a temp folder (assets come from ``.demo/``, created if missing), launches it under the deepspeed
launcher exactly as the supervisor does (``DS_ACCELERATOR=cpu``), timestamps every console line,
and prints a phase breakdown for a cold cache and a warm one, plus the import cost of the stack.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

from dpipe_tui.supervisor.ports import free_port

REPO = Path(__file__).resolve().parents[1]
PROFILE = REPO / "profiles" / "tiny-demo.toml"
PHASES = [
    ("engine process started", r"process \d+ spawned"),
    ("distributed init", r"Initializing TorchBackend"),
    ("caching starts", r"^caching latents:"),
    ("LoRA configured", r"^trainable params:"),
    ("DeepSpeed engine ready", r"^Global batch size"),
    ("first step done", r"^steps: 1 loss:"),
    ("training complete", r"^TRAINING COMPLETE!"),
]


def _prepare(work: Path) -> Path:
    subprocess.run(
        [sys.executable, "-m", "dpipe_tui.engine.demo", "--profile", str(PROFILE)], check=True, cwd=REPO
    )
    cfg = tomllib.loads(PROFILE.read_text())
    images = (
        PROFILE.parent / tomllib.loads((PROFILE.parent / cfg["dataset"]).read_text())["directory"][0]["path"]
    ).resolve()
    shutil.copytree(images, work / "images", ignore=shutil.ignore_patterns("cache"))
    text = (
        (PROFILE.parent / cfg["dataset"])
        .read_text()
        .replace("../.demo/datasets/shapes", str(work / "images"))
    )
    (work / "tiny-demo-dataset.toml").write_text(text)
    main = PROFILE.read_text().replace("../.demo/output/tiny-demo", str(work / "output"))
    main = main.replace("'../.demo/", f"'{(REPO / '.demo').as_posix()}/")
    (work / "tiny-demo.toml").write_text(main)
    return work / "tiny-demo.toml"


def _launch(profile: Path, port: int) -> tuple[float, list[tuple[float, str]], int]:
    runner = [sys.executable, "-m", "deepspeed.launcher.runner", "--include", "localhost:0"]
    engine = ["--module", "dpipe_tui.engine", "--deepspeed", "--config", str(profile)]
    argv = [*runner, "--master_port", str(port), *engine, "--master_port", str(port)]
    env = dict(os.environ, DS_ACCELERATOR="cpu", PYTHONUNBUFFERED="1")
    start = time.monotonic()
    proc = subprocess.Popen(
        argv, cwd=profile.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    lines = [(time.monotonic() - start, line.rstrip("\n")) for line in proc.stdout]
    return time.monotonic() - start, lines, proc.wait()


def _report(title: str, wall: float, lines: list[tuple[float, str]], rc: int) -> None:
    print(f"\n== {title} (exit {rc}, wall {wall:.1f} s)")
    previous = 0.0
    for name, pattern in PHASES:
        hit = next((t for t, line in lines if re.search(pattern, line)), None)
        if hit is not None:
            print(f"  {name:<26} at {hit:6.1f} s  (+{hit - previous:5.1f} s)")
            previous = hit
    steps = [(int(m[1]), float(m[2]), float(m[3])) for _, line in lines
             if (m := re.match(r"steps: (\d+) loss: ([\d.]+) iter time \(s\): ([\d.]+)", line))]  # fmt: skip
    if steps:
        times = [s[2] for s in steps[1:]] or [steps[0][2]]
        bs = int(next(m[1] for _, line in lines if (m := re.match(r"Global batch size = (\d+)", line))))
        med = statistics.median(times)
        print(f"  steps: {len(steps)}, median step {med * 1000:.1f} ms, samples/s {bs / med:.1f}, batch {bs}")
        print(f"  loss: first {steps[0][1]:.4f}, last {steps[-1][1]:.4f}, mean of last 10 "
              f"{statistics.mean(s[1] for s in steps[-10:]):.4f}")  # fmt: skip


def _imports() -> None:
    print("\n== import cost (fresh interpreter, cumulative)")
    for mod in (
        "torch",
        "deepspeed",
        "diffusers.models.transformers.transformer_chroma",
        "peft",
        "transformers",
    ):
        code = f"import time; t=time.perf_counter(); import {mod}; print(time.perf_counter()-t)"
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        print(f"  import {mod:<52} {float(out.strip().splitlines()[-1]):5.2f} s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-engine-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; work dir {work}")
    profile = _prepare(work)
    _report("cold cache (first launch)", *_launch(profile, free_port()))
    _report("warm cache (second launch)", *_launch(profile, free_port()))
    _imports()
    if args.keep is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
