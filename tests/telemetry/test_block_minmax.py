"""BlockMinMax: a redraw from folded blocks keeps what min/max downsampling of the raw series keeps."""

from __future__ import annotations

import math
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dpipe_tui.telemetry.downsample import BLOCK, BlockMinMax
from dpipe_tui.telemetry.store import Series


def _series(values: list[float]) -> Series:
    series = Series()
    for i, v in enumerate(values, start=1):
        series.append(float(i), v)
    return series


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=6 * BLOCK),
    start=st.integers(min_value=0, max_value=6 * BLOCK),
    seed=st.integers(min_value=0, max_value=10_000),
)
def test_extremes_and_order_survive(n: int, start: int, seed: int) -> None:
    rng = random.Random(seed)
    values = [rng.gauss(0, 1) if rng.random() > 0.01 else math.nan for _ in range(n)]
    series = _series(values)
    start = min(start, n - 1)
    xs, ys = BlockMinMax().reduce(series.x, series.y, 200, start=start)
    window = [v for v in values[start:] if math.isfinite(v)]
    if not window:
        assert ys == []
        return
    assert min(ys) == min(window)
    assert max(ys) == max(window)
    assert xs == sorted(xs)
    assert xs[0] >= start + 1
    assert len(xs) <= 2 * 200 + 2


def test_grows_incrementally_and_refolds_after_a_cut() -> None:
    series = _series([float(i % 97) for i in range(10 * BLOCK)])
    blocks = BlockMinMax()
    blocks.update(series.x, series.y)
    folded = len(blocks.x)
    for i in range(10 * BLOCK, 12 * BLOCK):
        series.append(float(i + 1), 5.0)
    blocks.update(series.x, series.y)
    assert len(blocks.x) > folded
    series.append(3.0 * BLOCK, -1.0)  # a resume went back: the tail is cut, a new point follows
    xs, ys = blocks.reduce(series.x, series.y, 100)
    assert xs[-1] == 3.0 * BLOCK
    assert min(ys) == -1.0
    assert max(xs) == 3.0 * BLOCK
