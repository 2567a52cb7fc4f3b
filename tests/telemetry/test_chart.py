"""The braille chart renderer: size, orientation, gaps, NaN and flat series."""

from __future__ import annotations

import math

import pytest

from dpipe_tui.telemetry.chart import braille_chart

BLANK = chr(0x2800)


def dots(lines: list[str]) -> set[tuple[int, int]]:
    """(x, y) dot coordinates lit in a chart, y from the top."""
    bits = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
    out = set()
    for row, line in enumerate(lines):
        for col, ch in enumerate(line):
            value = ord(ch) - 0x2800
            for r in range(4):
                for c in range(2):
                    if value & bits[r][c]:
                        out.add((col * 2 + c, row * 4 + r))
    return out


def test_size_and_orientation() -> None:
    lines = braille_chart([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 2.0, 3.0], 4, 2)
    assert len(lines) == 2
    assert all(len(line) == 4 for line in lines)
    lit = dots(lines)
    assert (0, 7) in lit  # lowest value bottom-left
    assert (7, 0) in lit  # highest value top-right


def test_steep_drop_is_joined_into_a_vertical_run() -> None:
    lit = dots(braille_chart([0.0, 1.0], [1.0, 0.0], 1, 3))  # 2x12 dots
    assert {(1, y) for y in range(12)} <= lit


def test_nan_points_are_skipped_and_flat_series_sit_in_the_middle() -> None:
    lit = dots(braille_chart([0.0, 1.0, 2.0], [0.5, math.nan, 0.5], 2, 2))
    assert lit
    assert {y for _, y in lit} <= {3, 4}
    assert braille_chart([], [], 3, 1) == [BLANK * 3]
    assert braille_chart([1.0], [math.inf], 2, 1) == [BLANK * 2]


def test_fixed_y_range_clamps() -> None:
    lit = dots(braille_chart([0.0, 1.0], [10.0, -10.0], 1, 1, y_range=(0.0, 1.0)))
    assert (0, 0) in lit
    assert (1, 3) in lit


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="at least 1x1"):
        braille_chart([0.0], [0.0], 0, 5)
    with pytest.raises(ValueError, match="differ in length"):
        braille_chart([0.0, 1.0], [0.0], 5, 5)
