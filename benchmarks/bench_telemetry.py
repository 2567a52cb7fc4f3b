"""Telemetry benchmarks: parser throughput vs grep, tail of a 1 GB log, drawing 1M loss points
(downsampling, then rendering the result into a terminal braille chart), and the progress of a
1M-step run from its ``metrics.jsonl`` (what ``status`` and a TUI opening a run pay).

Run: ``.venv/bin/python benchmarks/bench_telemetry.py [--gb 1.0] [--lines 1000000] [--points 1000000]``.
Prints figures; asserts nothing (budgets live here, not in unit tests). Temporary files go to a temp
dir, deleted after.
"""

from __future__ import annotations

import argparse
import math
import random
import subprocess
import tempfile
import time
from array import array
from pathlib import Path

from dpipe_tui.telemetry.chart import braille_chart
from dpipe_tui.telemetry.downsample import lttb, minmax
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.parse import ConsoleParser
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS, ProgressModel, ProgressPlan
from dpipe_tui.telemetry.store import LogTail, MetricsTail

PREFIX = "[2026-08-21 14:10:03,412] [INFO] [logging.py:123:log_dist] "


def make_log(path: Path, n_lines: int) -> int:
    """A realistic mix: per-step pairs, epochs/saves, caching tqdm redraws, DeepSpeed noise."""
    rnd = random.Random(0)
    lines: list[str] = []
    step = 0
    with path.open("w") as fh:
        while len(lines) < n_lines:
            kind = rnd.random()
            if kind < 0.8:
                step += 1
                lines.append(f"{PREFIX}[Rank 0] step={step}, skipped=0, lr=[5.0e-05], mom=[[0.9, 0.99]]")
                lines.append(
                    f"steps: {step} loss: {rnd.random():.4f} iter time (s): 4.512 samples/sec: 0.887"
                )
            elif kind < 0.81:
                lines.append(f"Started new epoch: {step // 100}")
                lines.append(f"Saving model to directory epoch{step // 100}")
            elif kind < 0.9:
                lines.append(f"\r {rnd.randrange(100):3d}%|#####     | 28/62 [00:12<00:14,  2.31it/s]")
            else:
                lines.append(f"{PREFIX}  zero_optimization ............ {rnd.random()}")
            if len(lines) >= 10000:
                fh.write("\n".join(lines) + "\n")
                n_lines -= len(lines)
                lines = []
        if lines:
            fh.write("\n".join(lines) + "\n")
    return step


def bench_parser(n_lines: int, tmp: Path) -> None:
    path = tmp / "console.log"
    make_log(path, n_lines)
    size = path.stat().st_size
    total_lines = sum(1 for _ in path.open("rb"))
    t0 = time.perf_counter()
    parser = ConsoleParser(lambda: 0.0)
    n_steps = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            n_steps += sum(1 for e in parser.feed(chunk) if e.kind is EventKind.STEP)
    n_steps += sum(1 for e in parser.flush() if e.kind is EventKind.STEP)
    dt = time.perf_counter() - t0
    t0 = time.perf_counter()
    grep = subprocess.run(["grep", "-c", "^steps: ", str(path)], capture_output=True, text=True, check=False)
    dg = time.perf_counter() - t0
    print(
        f"parser: {total_lines:,} lines ({size / 2**20:.0f} MiB) in {dt:.2f} s = "
        f"{total_lines / dt:,.0f} lines/s; "
        f"{n_steps:,} step events"
    )
    print(
        f"grep -c '^steps: ': {grep.stdout.strip()} in {dg:.3f} s = {total_lines / dg:,.0f} lines/s "
        f"(parser/grep time ratio {dt / dg:.1f}x)"
    )


def bench_tail(gb: float, tmp: Path) -> None:
    path = tmp / "huge.log"
    block = ("steps: 1 loss: 0.1234 iter time (s): 4.512 samples/sec: 0.887\n" * 16384).encode()
    t0 = time.perf_counter()
    with path.open("wb") as fh:
        for _ in range(int(gb * 2**30 / len(block))):
            fh.write(block)
        fh.write(b"last line\n")
    gen = time.perf_counter() - t0
    t0 = time.perf_counter()
    lines = LogTail(path).last_lines(200)
    dt = time.perf_counter() - t0
    assert lines[-1] == "last line"
    assert len(lines) == 200
    print(
        f"tail: last 200 lines of a {path.stat().st_size / 2**30:.2f} GiB log in {dt * 1000:.2f} ms "
        f"(generating it took {gen:.1f} s)"
    )
    path.unlink()


def bench_downsample(n: int, width: int = 120, height: int = 20) -> None:
    """Downsample a loss series, then draw it: both steps of showing it, timed apart and together."""
    rnd = random.Random(0)
    xs = array("d", range(n))
    ys = array("d", (math.exp(-i / n) + rnd.random() * 0.05 for i in range(n)))
    for fn in (minmax, lttb):
        t0 = time.perf_counter()
        out_x, out_y = fn(xs, ys, 2000)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        chart = braille_chart(out_x, out_y, width, height)
        dr = time.perf_counter() - t1
        assert len(chart) == height
        assert all(len(line) == width for line in chart)
        print(
            f"draw {fn.__name__}: {n:,} -> {len(out_x):,} points in {dt * 1000:.0f} ms, "
            f"rendered into a {width}x{height} braille chart in {dr * 1000:.1f} ms "
            f"(total {(dt + dr) * 1000:.0f} ms)"
        )


def bench_progress(n: int, tmp: Path) -> None:
    """Fold a run's progress from an ``n``-step ``metrics.jsonl`` (+ a TensorBoard scalar a step)."""
    path = tmp / "metrics.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        for step in range(1, n + 1):
            t = 1.8e9 + step
            fh.write(Event(EventKind.STEP, t, {"step": step, "loss": 0.1, "iter_time": 1.0}).to_json() + "\n")
            fh.write(Event(EventKind.SCALAR, t, {"tag": "train/loss", "step": step, "value": 0.1}).to_json())
            fh.write("\n")
            if step % 1000 == 0:
                fh.write(
                    Event(EventKind.EPOCH, t, {"epoch": step // 1000 + 1, "step": step}).to_json() + "\n"
                )
    size = path.stat().st_size
    plan = ProgressPlan(epochs=2 * n // 1000)
    t0 = time.perf_counter()
    full = ProgressModel(plan)
    full.feed(MetricsTail(path).read_new())
    dt_full = time.perf_counter() - t0
    t0 = time.perf_counter()
    sparse = ProgressModel(plan)
    sparse.feed(MetricsTail(path).catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS))
    dt_sparse = time.perf_counter() - t0
    assert sparse.snapshot().step == full.snapshot().step == n
    print(
        f"progress of a {n:,}-step run ({size / 2**20:.0f} MiB metrics.jsonl): full replay "
        f"{dt_full:.2f} s, sparse catch-up {dt_sparse:.2f} s ({dt_full / dt_sparse:.0f}x)"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--gb", type=float, default=1.0)
    ap.add_argument("--points", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="dpipe-bench-") as tmp:
        bench_parser(args.lines, Path(tmp))
        bench_tail(args.gb, Path(tmp))
        bench_progress(args.points, Path(tmp))
    bench_downsample(args.points)


if __name__ == "__main__":
    main()
