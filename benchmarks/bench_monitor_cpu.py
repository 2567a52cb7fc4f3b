"""CPU cost of the per-run monitor while its engine prints 100 lines a second for ~20 s.

Runs a real detached run (the scripted stand-in trainer from tests/supervisor behind a deepspeed shim,
diffusion-pipe launch path) in a temporary home, samples the monitor process's own ``cpu_times``
(user + system) with psutil, and prints its CPU use as a share of one core: over its whole life, and
while steps flow (from the first step it records to its exit; the goal is about this one).

    .venv/bin/python benchmarks/bench_monitor_cpu.py [--seconds 20] [--rate 100]
"""

from __future__ import annotations

import argparse
import shutil
import stat
import sys
import tempfile
import time
from pathlib import Path

import psutil

from dpipe_tui.runs.registry import Registry
from dpipe_tui.supervisor import procs
from dpipe_tui.supervisor.submit import SubmitSpec, submit

REPO = Path(__file__).resolve().parents[1]
SHIM = """#!{python}
import os, sys
args = sys.argv[1:]
i = args.index("train.py")
os.execv(sys.executable, [sys.executable, "-u", "train.py", *args[i + 1:]])
"""


def _copy_freezer(profile: Path, dest: Path, base_dir: Path) -> Path:
    shutil.copy(profile, dest / "profile.toml")
    return dest / "profile.toml"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--rate", type=int, default=100, help="console lines per second")
    args = ap.parse_args()
    steps_per_sec = 10
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkout = tmp / "dp"
        (checkout / "venv" / "bin").mkdir(parents=True)
        shutil.copy(REPO / "tests" / "supervisor" / "scripted_trainer.py", checkout / "train.py")
        shim = checkout / "venv" / "bin" / "deepspeed"
        shim.write_text(SHIM.format(python=sys.executable))
        shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
        profile = tmp / "bench.toml"
        noise = max(0, args.rate - 2 * steps_per_sec)  # each step prints two lines
        profile.write_text(
            f'output_dir = "{tmp / "out"}"\n[scripted]\nsteps = {int(args.seconds * steps_per_sec)}\n'
            f"step_time = {1 / steps_per_sec}\nnoise_rate = {noise}\n"
        )
        home = tmp / "home"
        spec = SubmitSpec(
            profile=profile, engine="diffusion-pipe", base_dir=checkout, cwd=checkout, launcher=str(shim)
        )
        registry = Registry(home)
        record = submit(registry, spec, freezer=_copy_freezer)
        while registry.load(record.id).monitor_pid is None:
            time.sleep(0.05)
        live = registry.load(record.id)
        monitor = psutil.Process(live.monitor_pid)
        born = monitor.create_time()
        first: tuple[float, float] | None = None
        last: tuple[float, float] | None = None
        life: tuple[float, float] | None = None
        while procs.is_alive(live.monitor_pid, live.monitor_started):
            try:
                cpu = monitor.cpu_times()
            except psutil.NoSuchProcess:
                break
            sample = (time.monotonic(), cpu.user + cpu.system)
            life = (time.time() - born, sample[1])
            if first is None and registry.load(record.id).last_step:  # steady state: steps flowing
                first = sample
            last = sample
            time.sleep(0.5)
        final = registry.load(record.id)
        lines = sum(1 for _ in registry.console_log(record.id).open("rb"))
        metrics = sum(1 for _ in registry.metrics(record.id).open("rb"))
        if first is None or last is None or life is None:
            print("the monitor ended before it could be sampled")
            return 1
        wall, cpu_s = last[0] - first[0], last[1] - first[1]
        print(f"run state: {final.state.value}, last step {final.last_step}")
        print(
            f"engine output: ~{args.rate} lines/s for {wall:.1f} s; console.log {lines} lines, "
            f"metrics.jsonl {metrics} events"
        )
        share = 100 * cpu_s / wall
        print(
            f"monitor CPU over its whole life (start-up imports, spawn, exit): {life[1]:.2f} s over "
            f"{life[0]:.1f} s = {100 * life[1] / life[0]:.2f}% of one core"
        )
        print(
            f"monitor CPU while steps flow (from the first recorded step): {cpu_s:.2f} s over "
            f"{wall:.1f} s wall = {share:.2f}% of one core"
        )
        print(f"  goal: < 0.5% of one core at 100 lines/s -> {'met' if share < 0.5 else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
