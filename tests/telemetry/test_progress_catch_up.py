"""The sparse catch-up of a long ``metrics.jsonl`` folds to the same progress as a full replay."""

from __future__ import annotations

import dataclasses
import math
import random
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS, ProgressModel, ProgressPlan
from dpipe_tui.telemetry.store import MetricsTail

if TYPE_CHECKING:
    from pathlib import Path

T0 = 1_800_000_000.0


def _history(steps: int, seed: int = 0) -> list[Event]:
    """A long run: steps with noisy iter times and a slow patch, TensorBoard scalars, epochs, saves,
    phases around checkpoints, a resume in the middle, warnings and evals."""
    rnd = random.Random(seed)
    events: list[Event] = [Event(EventKind.PHASE, T0, {"phase": "training"})]
    t = T0
    for step in range(1, steps + 1):
        t += 1.0 + rnd.random() * (5.0 if 2000 < step < 2100 else 0.2)
        events.append(
            Event(
                EventKind.STEP,
                t,
                {"step": step, "loss": rnd.random(), "iter_time": t - events[-1].t, "samples_per_sec": 4.0},
            )
        )
        events.append(Event(EventKind.SCALAR, t, {"tag": "train/loss", "step": step, "value": 0.5}))
        if step % 400 == 0:
            events.append(Event(EventKind.EPOCH, t, {"epoch": step // 400 + 1, "step": step}))
            events.append(Event(EventKind.SAVE, t, {"dir": f"epoch{step // 400}"}))
            events.append(Event(EventKind.EVAL, t, {"name": "val", "loss": 0.3, "step": step}))
        if step % 1000 == 0:
            events.append(Event(EventKind.PHASE, t, {"phase": "checkpointing"}))
            events.append(Event(EventKind.CHECKPOINT, t, {"tag": f"global_step{step}", "step": step}))
        if step == 3000:
            events.append(Event(EventKind.RESUME, t + 5, {"epoch": 8, "step": 3001}))
        if step % 777 == 0:
            events.append(Event(EventKind.WARNING, t, {"code": "nan_loss", "message": "x"}))
    return events


def _write(path: Path, events: list[Event]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.writelines(e.to_json() + "\n" for e in events)


def _snapshot(model: ProgressModel) -> dict[str, object]:
    return dataclasses.asdict(model.snapshot())


def test_folded_kinds_are_exactly_the_models_handlers() -> None:
    handlers = {name.removeprefix("_on_") for name in dir(ProgressModel) if name.startswith("_on_")}
    assert handlers == {*FOLDED_KINDS, "step"}
    assert all(kind in {k.value for k in EventKind} for kind in handlers)


@pytest.mark.parametrize("steps", [1, 10, RECENT_STEPS + 1, 5000])
def test_catch_up_folds_like_a_full_replay(tmp_path: Path, steps: int) -> None:
    events = _history(steps)
    path = tmp_path / "metrics.jsonl"
    _write(path, events)
    with path.open("a", encoding="utf-8") as fh:
        fh.write("not json\n\n")  # bad and blank lines are skipped by both readers
    plan = ProgressPlan(epochs=20, save_every_n_epochs=1, checkpoint_every_n_minutes=30)

    def clock() -> float:
        return T0 + 10 * steps

    full = ProgressModel(plan, clock=clock)
    full.feed(MetricsTail(path).read_new())
    sparse_tail = MetricsTail(path)
    picked = sparse_tail.catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS)
    sparse = ProgressModel(plan, clock=clock)
    sparse.feed(picked)

    step_events = [e for e in picked if e.kind is EventKind.STEP]
    assert len(step_events) == min(steps, RECENT_STEPS + 1)  # the first step + the recent window
    assert not any(e.kind in (EventKind.SCALAR, EventKind.WARNING, EventKind.EVAL) for e in picked)
    assert [e.t for e in picked] == sorted(e.t for e in picked)  # file order kept

    a, b = _snapshot(full), _snapshot(sparse)
    for key in a:
        if isinstance(a[key], float):
            assert math.isclose(a[key], b[key], rel_tol=1e-9, abs_tol=1e-9), key  # type: ignore[arg-type]
        else:
            assert a[key] == b[key], key

    # Later reads continue after the catch-up: only what is appended now.
    more = [Event(EventKind.STEP, clock(), {"step": steps + 1, "loss": 0.1, "iter_time": 1.0})]
    _write(path, more)
    assert sparse_tail.read_new() == more
