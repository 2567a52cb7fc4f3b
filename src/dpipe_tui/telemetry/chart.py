"""A series drawn as terminal text with braille dots: a pure function, for any front end.

Why braille and why here: each braille character is a 2x4 dot grid, so an 80x24 tmux pane still
shows a readable loss curve (160x96 dots in a 80x24 area), and plain strings need no terminal library:
the CLI can print them, the TUI's ``LossChart`` can put them in a ``Static``, tests can compare them.
Feed it a series already downsampled (:mod:`downsample`) to a few points per column; it costs one
pass over the points. Non-finite points are skipped; consecutive points in neighbouring columns are
joined by a vertical run so a steep drop stays a line, not scattered dots.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

_BLANK = 0x2800
# dot bit for (row 0..3 from the top, column 0..1) inside one braille cell (Unicode order)
_DOT = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))


def braille_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    width: int,
    height: int,
    *,
    y_range: tuple[float, float] | None = None,
    x_range: tuple[float, float] | None = None,
) -> list[str]:
    """Draw ``(xs, ys)`` into ``height`` strings of ``width`` braille characters (top row first).

    Args:
        xs: increasing x values.
        ys: y values; NaN/inf are skipped.
        width: characters per line (2 dots each).
        height: lines (4 dots each).
        y_range: (low, high) of the y axis; default the finite data's min and max. Values outside
            are clamped to the edge rows.
        x_range: (first, last) of the x axis; default the data's first and last x (several series
            drawn on one chart share it).

    Returns:
        ``height`` strings, each exactly ``width`` characters.

    Raises:
        ValueError: width or height below 1, or xs and ys of different lengths.
    """
    _check(xs, ys, width, height)
    cells = [[0] * width for _ in range(height)]
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if points:
        _plot(cells, points, y_range, x_range)
    return ["".join(chr(_BLANK + bits) for bits in row) for row in cells]


def _check(xs: Sequence[float], ys: Sequence[float], width: int, height: int) -> None:
    if width < 1 or height < 1:
        raise ValueError(f"chart size must be at least 1x1, got {width}x{height}")
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length ({len(xs)} != {len(ys)})")


def _plot(
    cells: list[list[int]],
    points: list[tuple[float, float]],
    y_range: tuple[float, float] | None,
    x_range: tuple[float, float] | None,
) -> None:
    height, width = len(cells), len(cells[0])
    dots_w, dots_h = width * 2, height * 4
    x0, x1 = x_range if x_range is not None else (points[0][0], points[-1][0])
    low, high = y_range if y_range is not None else (min(p[1] for p in points), max(p[1] for p in points))
    if high <= low:  # a flat series sits in the middle
        low, high = low - 1.0, low + 1.0
    sx = (dots_w - 1) / (x1 - x0) if x1 > x0 else 0.0
    sy = (dots_h - 1) / (high - low)
    prev: tuple[int, int] | None = None
    for x, y in points:
        px = min(max(int((x - x0) * sx), 0), dots_w - 1)
        py = min(max(round((high - y) * sy), 0), dots_h - 1)
        if prev is not None and px - prev[0] <= 1:
            lo, hi = sorted((prev[1], py))
            for row in range(lo, hi + 1):
                cells[row >> 2][px >> 1] |= _DOT[row & 3][px & 1]
        else:
            cells[py >> 2][px >> 1] |= _DOT[py & 3][px & 1]
        prev = (px, py)


def ascii_chart(
    xs: Sequence[float],
    ys: Sequence[float],
    width: int,
    height: int,
    *,
    y_range: tuple[float, float] | None = None,
    x_range: tuple[float, float] | None = None,
    mark: str = "*",
) -> list[str]:
    """The ASCII fallback of :func:`braille_chart`: one ``mark`` per cell, spaces elsewhere.

    For terminals without braille glyphs: a cell is marked when any point falls in it (one row per
    line, one column per character), with the same axes and clamping as the braille chart.
    """
    _check(xs, ys, width, height)
    rows = [[" "] * width for _ in range(height)]
    points = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(x) and math.isfinite(y)]
    if points:
        x0, x1 = x_range if x_range is not None else (points[0][0], points[-1][0])
        low, high = y_range if y_range is not None else (min(p[1] for p in points), max(p[1] for p in points))
        if high <= low:
            low, high = low - 1.0, low + 1.0
        sx = (width - 1) / (x1 - x0) if x1 > x0 else 0.0
        sy = (height - 1) / (high - low)
        for x, y in points:
            col = min(max(int((x - x0) * sx), 0), width - 1)
            row = min(max(round((high - y) * sy), 0), height - 1)
            rows[row][col] = mark
    return ["".join(row) for row in rows]
