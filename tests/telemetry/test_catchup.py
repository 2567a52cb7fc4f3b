"""The catch-up sidecar: a reader that starts from it folds the same events as one that reads it all.

Real files throughout: metrics.jsonl written by :class:`MetricsAppender` (the monitor's writer), the
sidecar beside it, and a child process killed with SIGKILL in the middle of writing either file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.telemetry.catchup import CatchUp, read_sidecar, sidecar_path
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS, ProgressModel, ProgressPlan
from dpipe_tui.telemetry.store import MetricsAppender, MetricsTail

if TYPE_CHECKING:
    from pathlib import Path

RECENT = 20
FOLD = {"kinds": FOLDED_KINDS, "recent_kind": "step", "recent": RECENT}


def run_events(first: int, last: int, t0: float = 1.8e9) -> list[Event]:
    """Steps with a TensorBoard scalar each, epochs every 50, a checkpoint every 120, phases."""
    out = [Event(EventKind.PHASE, t0 + first, {"phase": "training"})]
    for step in range(first, last + 1):
        t = t0 + step
        out.append(Event(EventKind.STEP, t, {"step": step, "loss": 1 / step, "iter_time": 1.0}))
        out.append(Event(EventKind.SCALAR, t, {"tag": "train/loss", "step": step, "value": 1 / step}))
        if step % 50 == 0:
            out.append(Event(EventKind.EPOCH, t, {"epoch": step // 50 + 1, "step": step}))
        if step % 120 == 0:
            out.append(Event(EventKind.CHECKPOINT, t, {"tag": f"global_step{step}", "step": step}))
    return out


def write(path: Path, events: list[Event], *, batch: int = 7, **kw: object) -> None:
    with MetricsAppender(path, interval=0.0, **FOLD, **kw) as appender:  # type: ignore[arg-type]
        for i in range(0, len(events), batch):
            appender.write(events[i : i + batch])


def without_sidecar(path: Path) -> list[str]:
    fold = CatchUp(**FOLD)  # type: ignore[arg-type]
    fold.add(path.read_bytes().split(b"\n")[:-1])
    return [e.to_json() for e in fold.events()]


def with_sidecar(path: Path) -> tuple[list[str], bool]:
    tail = MetricsTail(path)
    fold = CatchUp(**FOLD)  # type: ignore[arg-type]
    used = tail.catch_up_into(fold)
    return [e.to_json() for e in fold.events()], used


def progress(events: list[Event]) -> tuple[object, ...]:
    model = ProgressModel(ProgressPlan(epochs=20), clock=lambda: 1.8e9 + 10_000)
    model.feed(events)
    snap = model.snapshot()
    return (snap.step, snap.epoch, snap.phase, snap.last_checkpoint_step, snap.completed, snap.total_steps)


def test_a_reader_starts_from_the_sidecar_and_folds_the_same_events(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write(path, run_events(1, 700))
    assert sidecar_path(path).is_file()
    events, used = with_sidecar(path)
    assert used
    assert events == without_sidecar(path)
    state = json.loads(sidecar_path(path).read_text())
    assert state["offset"] > path.stat().st_size * 0.9  # the reader reads the window, not the file
    assert len(sidecar_path(path).read_bytes()) < 8192


def test_the_catch_up_gives_the_progress_of_a_full_replay(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write(path, run_events(1, 700))
    full = MetricsTail(path).read_new()
    sparse = MetricsTail(path).catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT)
    assert len(sparse) < len(full) / 10
    assert progress(sparse) == progress(full) == (700, 15, "training", 600, False, 1000)


def test_a_stale_sidecar_is_still_right(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    write(path, run_events(1, 400))
    stale = sidecar_path(path).read_bytes()
    write(path, run_events(401, 900))  # a second attempt appends (the appender folds the first)
    sidecar_path(path).write_bytes(stale)
    events, used = with_sidecar(path)
    assert used
    assert events == without_sidecar(path)
    assert progress(MetricsTail(path).read_new()) == progress([Event.from_json(e) for e in events])  # type: ignore[misc]


@pytest.mark.parametrize(
    "damage",
    [
        "missing",
        "garbage",
        "other kinds",
        "file replaced",
        "file edited",
        "file truncated",
        "offset past the end",
    ],
)
def test_a_sidecar_that_does_not_match_is_ignored(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "metrics.jsonl"
    write(path, run_events(1, 500))
    side = sidecar_path(path)
    state = json.loads(side.read_text())
    if damage == "missing":
        side.unlink()
    elif damage == "garbage":
        side.write_bytes(b"\x00{not json")
    elif damage == "other kinds":
        side.write_text(json.dumps({**state, "recent": RECENT + 1}))
    elif damage == "file replaced":  # by another run's metrics (a run id reused after rm)
        (tmp_path / "other").mkdir()
        other = tmp_path / "other" / "metrics.jsonl"
        write(other, run_events(1, 500, t0=1.9e9))
        os.replace(other, path)
    elif damage == "file edited":
        path.write_bytes(path.read_bytes().replace(b'"step":1,', b'"step":2,', 1))
    elif damage == "file truncated":
        path.write_bytes(path.read_bytes()[: state["offset"] // 2])
    else:
        side.write_text(json.dumps({**state, "offset": path.stat().st_size + 10}))
    events, used = with_sidecar(path)
    assert not used
    assert events == without_sidecar(path)


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dpipe_tui.telemetry.events import Event, EventKind
    from dpipe_tui.telemetry.progress import FOLDED_KINDS
    from dpipe_tui.telemetry.store import MetricsAppender

    path, where, at = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    saves = 0

    def before_replace(tmp):
        global saves
        saves += 1
        if where == "sidecar" and saves == at:
            data = tmp.read_bytes()
            tmp.write_bytes(data[: len(data) // 2])  # half a sidecar on disk, then killed
            os.kill(os.getpid(), signal.SIGKILL)

    appender = MetricsAppender(path, kinds=FOLDED_KINDS, recent_kind="step", recent=20, interval=0.0,
                               before_replace=before_replace)
    for step in range(1, 100_000):
        t = 1.8e9 + step
        events = [Event(EventKind.STEP, t, {"step": step, "loss": 0.5})]
        if step % 50 == 0:
            events.append(Event(EventKind.EPOCH, t, {"epoch": step // 50 + 1, "step": step}))
        if where == "metrics" and step == at:
            line = events[0].to_json().encode()
            appender._fh.write(line[: len(line) // 2])  # half a line on disk, then killed
            appender._fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        appender.write(events)
    """
)


@pytest.mark.parametrize(("where", "at"), [("sidecar", 180), ("metrics", 333)])
def test_a_monitor_killed_mid_write_leaves_a_file_the_reader_folds_right(
    tmp_path: Path, where: str, at: int
) -> None:
    path = tmp_path / "metrics.jsonl"
    child = subprocess.run([sys.executable, "-c", CHILD, str(path), where, str(at)], check=False, timeout=120)
    assert child.returncode == -signal.SIGKILL
    assert sidecar_path(path).is_file()
    assert read_sidecar(path, CatchUp(**FOLD))  # type: ignore[arg-type]  # the last whole sidecar
    events, used = with_sidecar(path)
    assert used
    assert events == without_sidecar(path)
    full = MetricsTail(path).read_new()
    assert progress(MetricsTail(path).catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT)) == progress(
        full
    )
    # the next attempt's writer ends a half line and goes on; readers still agree
    write(path, run_events(at + 1, at + 300))
    events, used = with_sidecar(path)
    assert used
    assert events == without_sidecar(path)
    assert not [
        p for p in os.listdir(tmp_path) if p.endswith(".tmp") and "catchup" in p and where == "metrics"
    ]


def test_the_monitor_fold_matches_what_readers_use() -> None:
    assert RECENT_STEPS >= 100  # the monitor saves the fold readers ask for (see supervisor/monitor.py)
