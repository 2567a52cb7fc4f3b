"""metrics.jsonl / console.log tails, series and downsampling."""

from __future__ import annotations

import math
import os
from array import array
from typing import TYPE_CHECKING

from dpipe_tui.telemetry.downsample import lttb, minmax
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.store import LogTail, MetricSeries, MetricsTail, Series

if TYPE_CHECKING:
    from pathlib import Path


def step(n: int, loss: float = 0.5) -> Event:
    return Event(EventKind.STEP, 1.0, {"step": n, "loss": loss, "lr": [1e-4]})


def test_metrics_tail_incremental_half_line_and_truncation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    tail = MetricsTail(path)
    assert tail.read_new() == []
    line1, line2 = step(1).to_json(), step(2).to_json()
    path.write_text(line1 + "\n" + line2[:10])
    assert tail.read_new() == [step(1)]
    with path.open("a") as fh:
        fh.write(line2[10:] + "\n" + "not json\n")
    assert tail.read_new() == [step(2)]
    assert tail.read_new() == []
    path.write_text(step(3).to_json() + "\n")  # truncated and rewritten (shorter)
    assert tail.read_new() == [step(3)]


def test_metrics_tail_rotation(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text("\n".join(step(i).to_json() for i in range(1, 50)) + "\n")
    tail = MetricsTail(path)
    assert len(tail.read_new()) == 49
    new = tmp_path / "new.jsonl"
    new.write_text("\n".join(step(i).to_json() for i in range(100, 200)) + "\n")
    os.replace(new, path)  # a new file (new inode) that is larger: still read from the start
    assert [e.data["step"] for e in tail.read_new()][:2] == [100, 101]


def test_log_tail_last_lines_then_new(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    with path.open("w") as fh:
        for i in range(100_000):
            fh.write(f"line {i}\n")
        fh.write("\r 10%|#| 1/10\r 20%|##| 2/10\n")
        fh.write("partial")
    tail = LogTail(path)
    last = tail.last_lines(3)
    assert last == ["line 99998", "line 99999", " 20%|##| 2/10"]
    assert tail.read_new() == []
    with path.open("a") as fh:
        fh.write(" end\nnext\n")
    assert tail.read_new() == ["partial end", "next"]
    assert LogTail(tmp_path / "missing").last_lines(5) == []


def test_series_resume_replaces_tail() -> None:
    series = Series()
    for x in range(1, 11):
        series.append(x, x * 1.0)
    series.append(6, 60.0)  # resumed from step 5: steps 6.. are rewritten
    assert list(series.x) == [1, 2, 3, 4, 5, 6]
    assert series.y[-1] == 60.0


def test_metric_series_from_events() -> None:
    m = MetricSeries()
    m.add([step(1, 0.4), step(2, 0.3)])
    m.add([Event(EventKind.EVAL, 1.0, {"name": "val", "step": 2, "loss": 0.2})])
    m.add([Event(EventKind.SCALAR, 1.0, {"tag": "train/epoch_loss", "step": 1, "value": 0.35})])
    assert list(m.loss.y) == [0.4, 0.3]
    assert list(m.lr.y) == [1e-4, 1e-4]
    assert list(m.evals["val"].y) == [0.2]
    assert list(m.epoch_loss.y) == [0.35]


def test_minmax_keeps_spikes_and_skips_nan() -> None:
    n = 100_000
    xs = array("d", range(n))
    ys = array("d", [0.1] * n)
    ys[54321] = 9.0
    ys[100] = math.nan
    out_x, out_y = minmax(xs, ys, 1000)
    assert len(out_x) <= 1000
    assert 9.0 in out_y
    assert all(math.isfinite(v) for v in out_y)
    assert out_x == sorted(out_x)


def test_lttb_size_and_endpoints() -> None:
    xs = [float(i) for i in range(10_000)]
    ys = [math.sin(i / 100) for i in range(10_000)]
    out_x, out_y = lttb(xs, ys, 500)
    assert len(out_x) == 500
    assert (out_x[0], out_x[-1]) == (0.0, 9999.0)
    assert max(out_y) > 0.99
    assert lttb(xs[:10], ys[:10], 500) == (xs[:10], ys[:10])


def test_log_tail_is_not_stuck_by_more_than_max_bytes_without_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "console.log"
    bar = b"\r caching latents:  57%|#####     | 57/100 [00:12<00:09,  4.61it/s]"
    storm = bar * (9 * 2**20 // len(bar))  # > the 8 MiB read limit, \r only (a tqdm bar)
    path.write_bytes(b"before\n" + storm)
    tail = LogTail(path)
    got = tail.read_new()
    assert got == ["before"]
    while tail._tail.offset < path.stat().st_size:  # the rest of the storm is consumed, not re-read
        assert tail.read_new() == []
    assert len(tail._tail._rest) <= 2**20, "pending partial line stays bounded"
    with path.open("ab") as fh:
        fh.write(b"\r caching latents: 100%|##########| 100/100\nnext\n")
    assert tail.read_new() == [" caching latents: 100%|##########| 100/100", "next"]


def test_byte_tail_hands_out_a_huge_line_without_cr_in_pieces(tmp_path: Path) -> None:
    from dpipe_tui.telemetry.store import ByteTail

    path = tmp_path / "console.log"
    path.write_bytes(b"x" * 2500 + b"\nok\n")
    tail = ByteTail(path, max_partial=1000)
    pieces: list[bytes] = []
    while tail.offset < path.stat().st_size:
        pieces += tail.read_new_lines(max_bytes=700)
    assert pieces[-2:] == [b"x" * 500, b"ok"]
    assert b"".join(pieces[:-1]) == b"x" * 2500
    assert all(len(p) <= 1000 for p in pieces)


def test_follow_line_tail_shares_the_tail(tmp_path: Path) -> None:
    from dpipe_tui.supervisor.follow import LineTail

    path = tmp_path / "console.log"
    path.write_bytes(b"a\r" * (3 * 2**20) + b"b\nc")
    tail = LineTail(path)
    seen: list[str] = []
    for _ in range(10):
        seen += tail.read(max_bytes=1 << 20)
    assert seen == ["\rb"]  # the superseded redraws are gone; the last one is kept with its \r
    tail.offset = 0  # a follower may reposition it (e.g. after showing the last lines)
    assert tail.read() == []  # 4 MiB of redraws, no newline yet: consumed, nothing to show
    assert tail.read() == ["\rb"]
