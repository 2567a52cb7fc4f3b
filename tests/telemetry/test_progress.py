"""Progress/ETA model fed with events and a fake clock."""

from __future__ import annotations

import pytest

from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import ProgressModel, ProgressPlan


def ev(kind: EventKind, t: float = 0.0, **data: object) -> Event:
    return Event(kind, t, data)


def steps(first: int, last: int, iter_time: float = 2.0, t0: float = 0.0) -> list[Event]:
    return [
        ev(EventKind.STEP, t0 + (n - first) * iter_time, step=n, loss=0.5, iter_time=iter_time)
        for n in range(first, last + 1)
    ]


def test_learns_steps_per_epoch_and_eta() -> None:
    now = [100.0]
    model = ProgressModel(ProgressPlan(epochs=10, save_every_n_epochs=2), clock=lambda: now[0])
    model.feed(steps(1, 25))
    assert model.snapshot().total_steps is None
    model.feed([ev(EventKind.EPOCH, epoch=2, step=25)])
    model.feed(steps(26, 30))
    snap = model.snapshot()
    assert snap.steps_per_epoch == 25
    assert snap.total_steps == 250
    assert snap.epoch == 2
    assert snap.sec_per_step == pytest.approx(2.0)
    assert snap.eta_sec == pytest.approx(220 * 2.0)
    assert snap.next_save_step == 50
    assert snap.next_save_in_sec == pytest.approx(40.0)
    assert snap.fraction == pytest.approx(30 / 250)
    assert "no checkpoint yet" in snap.warnings[0]


def test_eval_pause_does_not_spoil_speed() -> None:
    model = ProgressModel(ProgressPlan(steps_per_epoch=100, epochs=1), clock=lambda: 0.0)
    model.feed(steps(1, 10))
    model.feed([ev(EventKind.PHASE, phase="eval"), ev(EventKind.PHASE, phase="training")])
    model.feed([ev(EventKind.STEP, step=11, loss=0.5, iter_time=300.0)])  # includes the eval
    model.feed([ev(EventKind.STEP, step=12, loss=0.5, iter_time=50.0)])  # lone outlier
    assert model.snapshot().sec_per_step == pytest.approx(2.0)
    model.feed(steps(13, 30, iter_time=8.0))  # a real slowdown is adopted
    assert model.snapshot().sec_per_step == pytest.approx(8.0, rel=0.1)


def test_max_steps_caps_total_and_checkpoint_timing() -> None:
    now = [1000.0]
    plan = ProgressPlan(steps_per_epoch=100, epochs=10, max_steps=300, checkpoint_every_n_minutes=10)
    model = ProgressModel(plan, clock=lambda: now[0])
    model.feed(steps(1, 5, t0=900.0))
    assert model.snapshot().total_steps == 300
    assert model.snapshot().next_checkpoint_in_sec == pytest.approx(500.0)
    model.feed([ev(EventKind.CHECKPOINT, 950.0, tag="global_step5", step=5)])
    snap = model.snapshot()
    assert snap.last_checkpoint_step == 5
    assert snap.last_checkpoint_age_sec == pytest.approx(50.0)
    assert snap.next_checkpoint_in_sec == pytest.approx(550.0)
    assert snap.warnings == ()


def test_resume_and_loss_ema() -> None:
    model = ProgressModel(
        ProgressPlan.from_config({"epochs": 4, "save_every_n_steps": 100}), clock=lambda: 0.0
    )
    model.feed([ev(EventKind.RESUME, epoch=3, step=501)])
    model.feed(
        [ev(EventKind.STEP, step=501, loss=1.0, iter_time=1.0), ev(EventKind.STEP, step=502, loss=0.0)]
    )
    snap = model.snapshot()
    assert snap.epoch == 3
    assert snap.step == 502
    assert snap.loss_ema == pytest.approx(0.9)
    assert snap.next_save_step == 600
    assert snap.last_checkpoint_step == 500
