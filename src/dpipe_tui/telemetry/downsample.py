"""Downsampling long series for display: min/max per bucket and LTTB.

Why two: a terminal chart is ~100-200 cells wide, so a million-point loss series must shrink to a
few thousand points before drawing. Min/max per bucket keeps every spike (a loss explosion must
stay visible) and runs on C-level ``min``/``max`` over array slices, so it is the default. LTTB
(largest triangle three buckets) keeps the visual shape with one point per bucket; it is pure
Python and slower, for when a smooth line matters more than extremes. NaN points are skipped.
"""

from __future__ import annotations

import math
from array import array
from bisect import bisect_left
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


def _finite(xs: Sequence[float], ys: Sequence[float]) -> tuple[Sequence[float], Sequence[float]]:
    if math.isfinite(sum(ys)):  # one C-level pass; filter only when something is NaN/inf
        return xs, ys
    keep = [i for i, v in enumerate(ys) if math.isfinite(v)]
    return array("d", (xs[i] for i in keep)), array("d", (ys[i] for i in keep))


def minmax(xs: Sequence[float], ys: Sequence[float], target: int) -> tuple[list[float], list[float]]:
    """Reduce to about ``target`` points: each bucket contributes its min and its max, in x order.

    Args:
        xs: increasing x values.
        ys: y values (NaN skipped).
        target: wanted number of points (>= 2).

    Returns:
        The reduced (xs, ys).
    """
    xs, ys = _finite(xs, ys)
    n = len(xs)
    if n <= target or target < 4:
        return list(xs), list(ys)
    buckets = target // 2
    out_x: list[float] = []
    out_y: list[float] = []
    for b in range(buckets):
        lo, hi = b * n // buckets, (b + 1) * n // buckets
        if hi <= lo:
            continue
        seg = ys[lo:hi]
        y_min, y_max = min(seg), max(seg)
        i_min, i_max = lo + seg.index(y_min), lo + seg.index(y_max)
        for i in sorted({i_min, i_max}):
            out_x.append(xs[i])
            out_y.append(ys[i])
    return out_x, out_y


def lttb(xs: Sequence[float], ys: Sequence[float], target: int) -> tuple[list[float], list[float]]:
    """Largest-triangle-three-buckets downsampling to exactly ``target`` points (first and last kept)."""
    xs, ys = _finite(xs, ys)
    n = len(xs)
    if n <= target or target < 3:
        return list(xs), list(ys)
    out_x, out_y = [xs[0]], [ys[0]]
    every = (n - 2) / (target - 2)
    a = 0
    for i in range(target - 2):
        lo = int(i * every) + 1
        hi = int((i + 1) * every) + 1
        nlo, nhi = hi, min(int((i + 2) * every) + 1, n)
        span = nhi - nlo
        if span > 0:
            avg_x = sum(xs[nlo:nhi]) / span
            avg_y = sum(ys[nlo:nhi]) / span
        else:
            avg_x, avg_y = xs[n - 1], ys[n - 1]
        ax, ay = xs[a], ys[a]
        dx, dy = ax - avg_x, avg_y - ay
        best, best_area = lo, -1.0
        for j in range(lo, hi):
            area = abs(dx * (ys[j] - ay) - (ax - xs[j]) * dy)
            if area > best_area:
                best_area, best = area, j
        out_x.append(xs[best])
        out_y.append(ys[best])
        a = best
    out_x.append(xs[n - 1])
    out_y.append(ys[n - 1])
    return out_x, out_y


BLOCK = 512
"""Raw points per block of :class:`BlockMinMax`."""


class BlockMinMax:
    """Per-block minimum and maximum of a growing series, folded as points arrive.

    Why: redrawing a chart of a million-step run must not walk a million points (measured: 113 ms for
    loss + smoothed loss at 120x20). Each complete block of :data:`BLOCK` points is reduced once to
    its min and max (kept in x order); a redraw reduces the ~2n/BLOCK block points plus the raw
    points of the unfinished block, so it costs the chart's size, not the run's length. Spikes survive:
    a block's extremes are exactly what min/max downsampling would keep. A series that was cut (a
    resume went back in steps) is detected by its last folded point and folded again.
    """

    def __init__(self) -> None:
        """Nothing folded yet."""
        self.x: array[float] = array("d")
        self.y: array[float] = array("d")
        self._done = 0
        self._last_x: float | None = None

    def update(self, xs: Sequence[float], ys: Sequence[float]) -> None:
        """Fold the complete blocks of ``(xs, ys)`` not folded yet."""
        n = len(xs)
        if self._done and (n < self._done or xs[self._done - 1] != self._last_x):
            self.x, self.y, self._done = array("d"), array("d"), 0  # the series was cut: start over
        while self._done + BLOCK <= n:
            lo, hi = self._done, self._done + BLOCK
            seg_x, seg_y = _finite(xs[lo:hi], ys[lo:hi])
            if len(seg_y):
                y_min, y_max = min(seg_y), max(seg_y)
                i_min, i_max = seg_y.index(y_min), seg_y.index(y_max)
                for i in sorted({i_min, i_max}):
                    self.x.append(seg_x[i])
                    self.y.append(seg_y[i])
            self._done = hi
            self._last_x = xs[hi - 1]

    def reduce(
        self, xs: Sequence[float], ys: Sequence[float], target: int, *, start: int = 0
    ) -> tuple[list[float], list[float]]:
        """``(xs, ys)[start:]`` reduced to about ``target`` points: raw points up to the first whole
        block, then the folded blocks' extremes, then the raw points of the unfinished block."""
        self.update(xs, ys)
        boundary = min(-(-start // BLOCK) * BLOCK, self._done)  # the first block starting at/after start
        if boundary >= self._done:
            return minmax(xs[start:], ys[start:], target)
        px = array("d", xs[start:boundary])
        py = array("d", ys[start:boundary])
        first = bisect_left(self.x, xs[boundary])
        px.extend(self.x[first:])
        py.extend(self.y[first:])
        px.extend(xs[self._done :])
        py.extend(ys[self._done :])
        return minmax(px, py, target)
