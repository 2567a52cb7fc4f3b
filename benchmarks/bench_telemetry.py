"""Telemetry benchmarks: parser throughput vs grep, tail of a 1 GB log, drawing 1M loss points
(downsampling, then rendering the result into a terminal braille chart), and the progress of a
1M-step run from its ``metrics.jsonl`` (what ``status`` and a TUI opening a run pay).

Run: ``.venv/bin/python benchmarks/bench_telemetry.py [--gb 1.0] [--lines 1000000] [--points 1000000]``.
Prints each figure beside its goal (issue 14) and whether it is met; asserts nothing (budgets live
here, not in unit tests). Temporary files go to a temp dir, deleted after.
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

from dpipe_tui.telemetry.catchup import sidecar_path
from dpipe_tui.telemetry.chart import braille_chart
from dpipe_tui.telemetry.downsample import BlockMinMax, lttb, minmax
from dpipe_tui.telemetry.events import Event, EventKind, make_event
from dpipe_tui.telemetry.lines import STEP_LINE_NL
from dpipe_tui.telemetry.parse import ConsoleParser
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS, ProgressModel, ProgressPlan
from dpipe_tui.telemetry.store import LogTail, MetricsAppender, MetricsTail


def goal(figure: str, measured: str, target: str, met: bool) -> None:
    """One figure beside its goal."""
    print(f"  {figure}: {measured}\n    goal: {target} -> {'met' if met else 'MISSED'}")


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


def parse_file(path: Path, *, line_by_line: bool) -> tuple[float, int, int]:
    """Seconds to parse ``path`` in 1 MiB reads, step events, all events (the best of 3 is used)."""
    t0 = time.perf_counter()
    parser = ConsoleParser(lambda: 0.0, line_by_line=line_by_line)
    n_steps = n_events = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            events = parser.feed(chunk)
            n_events += len(events)
            n_steps += sum(1 for e in events if e.kind is EventKind.STEP)
    events = parser.flush()
    n_events += len(events)
    n_steps += sum(1 for e in events if e.kind is EventKind.STEP)
    return time.perf_counter() - t0, n_steps, n_events


def bench_parser(n_lines: int, tmp: Path) -> None:
    path = tmp / "console.log"
    make_log(path, n_lines)
    size = path.stat().st_size
    total_lines = sum(1 for _ in path.open("rb"))
    t0 = time.perf_counter()
    grep = subprocess.run(["grep", "-c", "^steps: ", str(path)], capture_output=True, text=True, check=False)
    dg = time.perf_counter() - t0
    fast, n_steps, n_events = min(parse_file(path, line_by_line=False) for _ in range(3))
    slow, n_steps_ref, n_events_ref = min(parse_file(path, line_by_line=True) for _ in range(3))
    text = "\n" + path.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    floor = [  # the step events alone, straight from one regex scan: what any Python parser pays
        make_event(
            EventKind.STEP,
            0.0,
            {"step": int(a), "loss": float(b), "iter_time": float(c), "samples_per_sec": float(d)},
        )
        for a, b, c, d in STEP_LINE_NL.findall(text)
    ]
    dfloor = time.perf_counter() - t0
    assert len(floor) == n_steps
    assert (n_steps, n_events) == (n_steps_ref, n_events_ref), "the fast path lost events"
    assert str(n_steps) == grep.stdout.strip(), "grep and the parser disagree on the step count"
    print(f"console parser, {total_lines:,} lines ({size / 2**20:.0f} MiB), {n_events:,} events")
    print(f"  grep -c '^steps: ': {dg:.3f} s = {total_lines / dg:,.0f} lines/s")
    print(
        f"  line by line (the reference path): {slow:.2f} s = {total_lines / slow:,.0f} lines/s "
        f"({slow / dg:.0f}x grep)"
    )
    print(
        f"  floor: building the {n_steps:,} step events alone from one regex scan (no other line, "
        f"no state): {dfloor:.2f} s = {dfloor / dg:.0f}x grep"
    )
    goal(
        "chunk fast path",
        f"{fast:.2f} s = {total_lines / fast:,.0f} lines/s, {fast / dg:.0f}x grep "
        f"({slow / fast:.1f}x faster than line by line)",
        "within 10x of grep in the same run",
        fast <= 10 * dg,
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
    """Downsample a loss series, then draw it: both steps of showing it, timed apart and together.

    The whole-series reductions (min/max, LTTB) walk every point on each redraw; the run view uses
    :class:`BlockMinMax`, which folds blocks as points arrive, so a redraw costs the chart's size.
    """
    rnd = random.Random(0)
    xs = array("d", range(n))
    ys = array("d", (math.exp(-i / n) + rnd.random() * 0.05 for i in range(n)))
    points = 2 * width  # two data points per braille cell column, as the run view asks
    print(f"draw a {n:,}-point loss series into a {width}x{height} braille chart")
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
            f"  whole-series {fn.__name__}: -> {len(out_x):,} points in {dt * 1000:.0f} ms, "
            f"drawn in {dr * 1000:.1f} ms (total {(dt + dr) * 1000:.0f} ms)"
        )
    blocks = BlockMinMax()
    t0 = time.perf_counter()
    for end in range(0, n + 1, 1000):  # points arrive a thousand at a time (the monitor's batches)
        blocks.update(xs[:end], ys[:end])
    fold = time.perf_counter() - t0
    redraws = []
    for extra in range(5):  # a few redraws as more points arrive, each with an unfinished block
        grown_x = array("d", xs)
        grown_y = array("d", ys)
        grown_x.extend(range(n, n + 100 * (extra + 1)))
        grown_y.extend([0.5] * (100 * (extra + 1)))
        t1 = time.perf_counter()
        out_x, out_y = blocks.reduce(grown_x, grown_y, points)
        chart = braille_chart(out_x, out_y, width, height)
        redraws.append(time.perf_counter() - t1)
        assert len(chart) == height
    assert min(out_y) == min(ys), "the folded blocks lost the minimum"
    assert max(out_y) == max(ys), "the folded blocks lost the maximum"
    worst = max(redraws)
    goal(
        "incremental (BlockMinMax) redraw",
        f"{worst * 1000:.1f} ms worst of 5 redraws (reduce + draw); folding the blocks as points "
        f"arrived cost {fold * 1e9 / n:.0f} ns a point, {fold * 1000:.0f} ms in all, spread over the run",
        "< 30 ms",
        worst < 0.030,
    )


def bench_progress(n: int, tmp: Path) -> None:
    """Fold a run's progress from an ``n``-step ``metrics.jsonl`` (+ a TensorBoard scalar a step).

    The file is written by :class:`MetricsAppender` (the monitor's writer) in batches, so its
    sidecar is the one a real run leaves beside it.
    """
    path = tmp / "metrics.jsonl"
    t0 = time.perf_counter()
    with MetricsAppender(path, kinds=FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS) as out:
        batch: list[Event] = []
        for step in range(1, n + 1):
            t = 1.8e9 + step
            batch.append(Event(EventKind.STEP, t, {"step": step, "loss": 0.1, "iter_time": 1.0}))
            batch.append(Event(EventKind.SCALAR, t, {"tag": "train/loss", "step": step, "value": 0.1}))
            if step % 1000 == 0:
                batch.append(Event(EventKind.EPOCH, t, {"epoch": step // 1000 + 1, "step": step}))
            if len(batch) >= 2000:
                out.write(batch)
                batch = []
        out.write(batch)
    write = time.perf_counter() - t0
    size = path.stat().st_size
    side = sidecar_path(path).stat().st_size
    plan = ProgressPlan(epochs=2 * n // 1000)

    def fold(reader: MetricsTail) -> tuple[float, ProgressModel]:
        t0 = time.perf_counter()
        model = ProgressModel(plan)
        model.feed(reader.catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS))
        return time.perf_counter() - t0, model

    t0 = time.perf_counter()
    full = ProgressModel(plan)
    full.feed(MetricsTail(path).read_new())
    dt_full = time.perf_counter() - t0
    dt_side, with_side = fold(MetricsTail(path))
    hidden = sidecar_path(path).rename(tmp / "sidecar.away")
    dt_scan, scanned = fold(MetricsTail(path))
    hidden.rename(sidecar_path(path))
    assert with_side.snapshot() == scanned.snapshot() == full.snapshot(), "the catch-ups disagree"
    assert full.snapshot().step == n
    print(
        f"progress of a {n:,}-step run ({size / 2**20:.0f} MiB metrics.jsonl, "
        f"{side / 1024:.0f} KiB sidecar; writing both through MetricsAppender took {write:.1f} s)"
    )
    print(f"  full replay {dt_full:.2f} s; sparse catch-up without the sidecar {dt_scan:.2f} s")
    goal(
        "catch-up from the sidecar",
        f"{dt_side * 1000:.0f} ms ({dt_scan / dt_side:.0f}x faster than the sparse scan), same snapshot",
        "< 0.2 s",
        dt_side < 0.2,
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
