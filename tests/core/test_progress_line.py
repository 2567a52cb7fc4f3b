"""The live progress line of ``run``/``follow``: designed for 80 columns, fields dropped whole by a fixed
priority when narrower, everything from 120 (present.progress_segments)."""

from __future__ import annotations

import dataclasses

import pytest

from dpipe_tui.present import LineFacts, progress_line

TRAINING = LineFacts(
    state="running",
    phase="training",
    step=120,
    total=300,
    elapsed_sec=80,
    eta="1m58s",
    rate="0.65 it/s (1.5s/step)",
    loss=0.1234,
    epoch="3/50",
    save_in_sec=40,
    checkpoint_in_sec=120,
    checkpoint_age_sec=30,
)

SNAPSHOT_80 = "▶ running ━━━━━━━━──────────── 120/300 40% 1m20s eta 1m58s 0.65 it/s loss 0.1234"
"""The 80-column line (plain text): state, bar, step/total, percent, elapsed, ETA, rate and loss."""


def test_the_80_column_line() -> None:
    assert progress_line(TRAINING, 80) == SNAPSHOT_80
    assert len(SNAPSHOT_80) == 80


def test_everything_shows_from_120_columns() -> None:
    line = progress_line(TRAINING, 120)
    for field in ("120/300", "40%", "1m20s", "eta 1m58s", "0.65 it/s", "loss 0.1234", "epoch 3/50"):
        assert field in line
    assert "save in 40s" in line
    assert "ckpt in 2m00s" in line
    assert "ckpt 30s ago" in line
    assert len(line) <= 120


def test_the_ascii_bar() -> None:
    assert progress_line(TRAINING, 80, ascii_only=True).startswith("> running ########------------ 120/300")


@pytest.mark.parametrize("width", range(12, 201))
def test_narrower_drops_whole_fields_in_a_fixed_order_and_never_cuts_the_state(width: int) -> None:
    line = progress_line(TRAINING, width)
    wider = progress_line(TRAINING, width + 1)
    assert len(line) <= width
    assert line.startswith("▶ running")  # never "runni…"
    words = [w for w in line.split(" ") if w.strip("━─")]  # the bar's length changes, its presence not
    wider_words = [w for w in wider.split(" ") if w.strip("━─")]
    assert set(words) <= set(wider_words)  # a field that shows at this width shows at every wider one
    if width >= 40:
        assert "120/300" in line
        assert "eta 1m58s" in line
        assert "━" in line


def test_before_the_first_step_and_in_another_phase() -> None:
    assert progress_line(LineFacts(state="starting", phase="loading"), 80) == "◌ starting loading"
    line = progress_line(dataclasses.replace(TRAINING, phase="checkpointing"), 80)
    assert line.startswith("▶ running checkpointing ━")  # a phase other than training is worth its place
