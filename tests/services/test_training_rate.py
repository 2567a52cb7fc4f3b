"""`dpipe-tui metrics`' rate: total steps over total training time, slow steps included."""

from __future__ import annotations

import pytest

from dpipe_tui.services.summaries import training_rate
from dpipe_tui.telemetry.events import Event, EventKind


def _step(t: float, n: int, iter_time: float = 0.2) -> Event:
    return Event(EventKind.STEP, t, {"step": n, "loss": 0.5, "iter_time": iter_time})


def test_rate_is_steps_over_training_time_across_attempts() -> None:
    t, events = 100.0, []
    for n in range(1, 51):  # 1.1 it/s on average: most steps fast, every fourth one slow
        t += 0.3 if n % 4 else 2.74
        events.append(_step(t, n))
    first = (49, events[-1].t - events[0].t)
    events.append(Event(EventKind.RESUME, t + 7200, {"epoch": 1, "step": 51}))  # two hours later
    events += [_step(t + 7260 + i, 51 + i) for i in range(20)]  # after a minute of loading
    rate = training_rate(events)
    assert rate is not None
    assert rate == pytest.approx((first[0] + 19) / (first[1] + 19))
    assert rate < 1.3  # the old median-of-iter-times said 5.0 it/s


def test_a_log_without_times_uses_the_sum_of_iter_times() -> None:
    events = [_step(42.0, n, iter_time=0.2 if n % 5 else 3.0) for n in range(1, 21)]
    assert training_rate(events) == pytest.approx(20 / (16 * 0.2 + 4 * 3.0))
    assert training_rate([]) is None
