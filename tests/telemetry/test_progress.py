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
    model.feed([ev(EventKind.EPOCH, 48.0, epoch=2, step=25)])
    model.feed(steps(26, 30, t0=50.0))
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


def test_rate_and_eta_follow_the_wall_clock_not_iter_time() -> None:
    """The transcript of a busy 2-core machine: DeepSpeed said 0.046 s/step, steps came 1.4 s apart."""
    model = ProgressModel(ProgressPlan(steps_per_epoch=100, epochs=1), clock=lambda: 0.0)
    model.feed(
        ev(EventKind.STEP, 1.4 * n, step=n, loss=0.5, iter_time=0.046, samples_per_sec=87.0)
        for n in range(1, 41)
    )
    snap = model.snapshot()
    assert snap.steps_per_sec == pytest.approx(1 / 1.4)
    assert snap.eta_sec == pytest.approx(60 * 1.4)  # not 60 x 0.046 = 3 s
    assert snap.samples_per_sec == pytest.approx(4 / 1.4, rel=0.01)  # 4 samples a step
    assert not snap.measuring


def test_varying_step_times_count_in_full() -> None:
    """'5.00 it/s, eta 56s' while the run made 0.65 it/s: slow steps are real time, not outliers."""
    model = ProgressModel(ProgressPlan(total_steps=300), clock=lambda: 0.0)
    t, events = 0.0, []
    for n in range(1, 101):
        t += 0.2 if n % 5 else 6.7  # four fast steps, then a slow one (data loading, a busy CPU)
        events.append(ev(EventKind.STEP, t, step=n, loss=0.5, iter_time=0.2))
    model.feed(events)
    snap = model.snapshot()
    assert snap.steps_per_sec == pytest.approx(99 / (t - 0.2), rel=0.01)
    assert snap.steps_per_sec == pytest.approx(0.66, abs=0.02)
    assert snap.eta_sec == pytest.approx(200 / (99 / (t - 0.2)), rel=0.01)


def test_the_first_steps_say_measuring_and_evals_count() -> None:
    model = ProgressModel(ProgressPlan(total_steps=1000), clock=lambda: 0.0)
    model.feed(steps(1, 3, iter_time=1.0))
    snap = model.snapshot()
    assert snap.measuring
    assert snap.steps_per_sec is None
    assert snap.eta_sec is None
    model.feed(steps(4, 10, iter_time=1.0, t0=3.0))
    assert not model.snapshot().measuring
    assert model.snapshot().steps_per_sec == pytest.approx(1.0)
    # a 60 s eval in the middle of training is part of the real rate
    model.feed([ev(EventKind.PHASE, 9.5, phase="eval"), ev(EventKind.PHASE, 69.0, phase="training")])
    model.feed(steps(11, 20, iter_time=1.0, t0=70.0))
    assert model.snapshot().steps_per_sec == pytest.approx(19 / 79.0)


def test_a_resume_gap_is_not_training_time() -> None:
    model = ProgressModel(ProgressPlan(total_steps=1000), clock=lambda: 0.0)
    model.feed(steps(1, 20, iter_time=1.0))
    model.feed([ev(EventKind.RESUME, 86_400.0, epoch=1, step=21)])  # a day later
    model.feed(steps(21, 40, iter_time=2.0, t0=86_460.0))  # after a minute of loading
    snap = model.snapshot()
    assert snap.steps_per_sec == pytest.approx(0.5)
    assert snap.eta_sec == pytest.approx(960 * 2.0)


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
