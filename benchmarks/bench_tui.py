"""The TUI's performance goals (issue: the TUI), measured on this machine, each printed beside its goal.

1. Cold start to a drawn dashboard with 50 runs (a fresh process, headless): goal < 0.5 s.
2. Idle CPU of a real ``dpipe-tui`` in tmux (80x24) with 50 runs: goal < 1 % of one core.
3. CPU of a real ``dpipe-tui`` in tmux with the run view open on a run printing ~100 lines/s: goal < 5 %.
4. Opening the run view of a run whose console.log is 1 GiB, to the drawn tail: goal < 100 ms.
5. Drawing a 1M-point loss chart (loss + smoothed, 120x20, braille, merged): goal < 30 ms.

    .venv/bin/python benchmarks/bench_tui.py [--seconds 20] [--skip-tmux]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from dpipe_tui.runs.model import RunRecord, RunState  # noqa: E402
from dpipe_tui.runs.registry import Registry  # noqa: E402
from dpipe_tui.services.cockpit import Cockpit  # noqa: E402
from dpipe_tui.services.watch import RunWatch  # noqa: E402
from dpipe_tui.telemetry.events import Event, EventKind  # noqa: E402

DPIPE_TUI = str(Path(sys.executable).with_name("dpipe-tui"))


def populate(home: Path, n: int = 50) -> list[str]:
    registry = Registry(home)
    now = time.time()
    ids = []
    for i in range(n):
        created = now - 3600 * (n - i)
        record = RunRecord(
            id=f"20261201-{i:04d}-bench-run-{i:04x}",
            profile_path=f"/profiles/bench-{i % 5}.toml",
            engine="builtin",
            state=(RunState.COMPLETED, RunState.FAILED, RunState.STOPPED)[i % 3],
            created_at=created,
            queued_at=created,
            started_at=created + 1,
            ended_at=created + 1800,
            total_steps=1000,
            last_step=1000 - i,
            last_loss=0.1 + i / 1000,
        )
        registry.create(record)
        ids.append(record.id)
    return ids


COLD = """
import asyncio, os, sys, time
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.widgets.line_table import LineTable
class Probe:
    def sample(self):
        from dpipe_tui.services.gpus import GpuReport
        return GpuReport(available=False, reason="bench")
async def main():
    app = DpipeApp(Cockpit(probe=Probe()))
    async with app.run_test(size=(80, 24)) as pilot:
        while True:
            tables = app.screen.query(LineTable)
            if tables and len(tables.first().rows) == 50:
                break
            await asyncio.sleep(0.005)
        print(time.time())
asyncio.run(main())
"""


def cold_start(home: Path) -> float:
    env = {**os.environ, "DPIPE_TUI_HOME": str(home)}
    times = []
    for _ in range(5):
        t0 = time.time()  # the child's own start time is only known to the second (/proc btime)
        out = subprocess.run(
            [sys.executable, "-c", COLD], env=env, capture_output=True, text=True, check=True
        )
        times.append(float(out.stdout.strip().splitlines()[-1]) - t0)
    return statistics.median(times)


def tmux_cpu(home: Path, args: list[str], seconds: float, settle: float = 4.0) -> float:
    socket = f"bench-{os.getpid()}"
    env = {**os.environ, "DPIPE_TUI_HOME": str(home), "TERM": "xterm-256color"}
    command = " ".join([DPIPE_TUI, "tui", *args])
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-x", "80", "-y", "24", command], env=env, check=True
    )
    try:
        time.sleep(settle)
        pid = int(
            subprocess.run(
                ["tmux", "-L", socket, "display-message", "-p", "#{pane_pid}"],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            ).stdout.strip()
        )
        proc = psutil.Process(pid)
        before = proc.cpu_times()
        time.sleep(seconds)
        after = proc.cpu_times()
        used = (after.user - before.user) + (after.system - before.system)
        return 100 * used / seconds
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False, capture_output=True)


def noisy_run(home: Path, tmp: Path, seconds: float) -> str:
    from tests.supervisor.conftest import copy_freezer, stand_in_checkout

    from dpipe_tui.supervisor.submit import SubmitSpec, submit

    checkout = tmp / "dp"
    shim = stand_in_checkout(checkout)
    profile = tmp / "noisy.toml"
    steps = int((seconds + 30) * 10)
    profile.write_text(
        f'output_dir = "{tmp / "out"}"\n[scripted]\nsteps = {steps}\nstep_time = 0.1\nnoise_rate = 80\n'
    )
    spec = SubmitSpec(
        profile=profile,
        engine="diffusion-pipe",
        base_dir=checkout,
        cwd=checkout,
        launcher=str(shim),
        gpus=(0,),
    )
    return submit(Registry(home), spec, freezer=copy_freezer).id


def big_log_run(home: Path) -> str:
    registry = Registry(home)
    record = dataclasses.replace(
        RunRecord(id="20261201-2359-big-log-ffff", profile_path="/p/big.toml", engine="builtin"),
        state=RunState.COMPLETED,
        created_at=time.time() - 100,
        ended_at=time.time(),
        last_step=10,
    )
    registry.create(record)
    line = b"steps: 123456 loss: 0.1234 iter time (s): 0.800 samples/sec: 5.000 padding padding padding\n"
    block = line * (16 * 1024 * 1024 // len(line))
    with open(registry.console_log(record.id), "wb") as fh:
        for _ in range(64):
            fh.write(block)
    return record.id


async def open_big_log(home: Path, run_id: str) -> float:
    from textual.widgets import Log

    from dpipe_tui.ui.app import DpipeApp

    class Probe:
        def sample(self):  # type: ignore[no-untyped-def]
            from dpipe_tui.services.gpus import GpuReport

            return GpuReport(available=False, reason="bench")

    app = DpipeApp(Cockpit(home, probe=Probe()))
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause(0.5)
        t0 = time.perf_counter()
        app.action_open_run(run_id)
        while True:
            logs = app.screen.query(Log)
            if logs and logs.first().line_count > 1:
                break
            await asyncio.sleep(0.002)
        return time.perf_counter() - t0


def chart_redraw() -> tuple[float, float, int]:
    from dpipe_tui.ui.widgets.chart_view import merge

    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        registry = Registry(home)
        registry.create(RunRecord(id="20261201-0000-chart-0000", profile_path="/p.toml", engine="builtin"))
        watch = RunWatch(registry, "20261201-0000-chart-0000", series=True)
        events = [
            Event(EventKind.STEP, float(i), {"step": i, "loss": 0.1 + (i % 977) / 5000, "lr": [1e-4]})
            for i in range(1, 1_000_001)
        ]
        assert watch.series is not None
        watch.series.add(events)
        watch._smooth(events)
        times = []
        for _ in range(15):
            t0 = time.perf_counter()
            chart = watch.draw(["loss", "loss_smooth"], 120, 20)
            merge(chart, ascii_only=False)
            times.append(time.perf_counter() - t0)
            watch.series.loss.append(float(len(watch.series.loss) + 1), 0.1)  # a new step between redraws
        return times[0], statistics.median(times[1:]), len(watch.series.loss)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--skip-tmux", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        home = tmp / "home"
        populate(home)
        cold = cold_start(home)
        print(
            f"1. cold start to a drawn dashboard, 50 runs: {cold * 1000:.0f} ms median of 5 (goal < 500 ms)"
        )
        if not args.skip_tmux and shutil.which("tmux"):
            idle = tmux_cpu(home, [], args.seconds)
            print(f"2. idle dpipe-tui in tmux, 50 runs: {idle:.2f} % of one core (goal < 1 %)")
            run_id = noisy_run(home, tmp, args.seconds)
            time.sleep(3)
            follow = tmux_cpu(home, ["--run", run_id], args.seconds)
            lines = Registry(home).console_log(run_id).read_bytes().count(b"\n")
            Cockpit(home).stop(run_id, now=True)
            print(
                f"3. run view following a run printing ~100 lines/s ({lines} lines in all): "
                f"{follow:.2f} % of one core (goal < 5 %)"
            )
        big = big_log_run(home)
        opened = asyncio.run(open_big_log(home, big))
        print(f"4. run view, 1 GiB console.log, to the drawn tail: {opened * 1000:.0f} ms (goal < 100 ms)")
    first, redraw, points = chart_redraw()
    print(
        f"5. {points:,}-point loss + smoothed chart, 120x20: {redraw * 1000:.1f} ms a redraw, median "
        f"(goal < 30 ms); the first draw folds the history into blocks: {first * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
