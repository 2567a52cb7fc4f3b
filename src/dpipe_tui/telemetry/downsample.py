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
