"""The chunk fast path gives the events of the line-by-line parser, event for event.

The reference is the same parser with ``line_by_line=True`` (every line through ``_line``, the
parser as it was before the fast path). Compared as JSON lines, so NaN losses compare equal.
"""

from __future__ import annotations

import dataclasses
import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpipe_tui.telemetry import ConsoleParser
from dpipe_tui.telemetry.events import Event, EventKind, make_event

DATA = Path(__file__).resolve().parents[1] / "data"
TRANSCRIPTS = sorted(DATA.glob("*.log"))
PREFIX = "[2026-08-21 14:10:03,412] [INFO] [logging.py:123:log_dist] "


def events(data: bytes, cuts: list[int], *, line_by_line: bool) -> list[str]:
    parser = ConsoleParser(lambda: 5.0, line_by_line=line_by_line)
    out = []
    prev = 0
    for cut in sorted(set(cuts)):
        out += parser.feed(data[prev:cut])
        prev = cut
    out += parser.feed(data[prev:])
    out += parser.flush()
    return [e.to_json() for e in out]


def training_log(n_lines: int, seed: int) -> bytes:
    """The shape of a long run: step pairs, epochs and saves, tqdm redraws, DeepSpeed noise."""
    rnd = random.Random(seed)
    lines: list[str] = []
    step = 0
    while len(lines) < n_lines:
        kind = rnd.random()
        if kind < 0.8:
            step += 1
            lines.append(
                f"{PREFIX}[Rank 0] step={step}, skipped=0, lr=[{rnd.choice(['5e-05', '4e-05'])}], mom=[]"
            )
            lines.append(f"steps: {step} loss: {rnd.random():.4f} iter time (s): 4.512 samples/sec: 0.887")
        elif kind < 0.82:
            lines += [f"Started new epoch: {step // 100}", f"Saving model to directory epoch{step // 100}"]
        elif kind < 0.9:
            lines.append(f"\r {rnd.randrange(100):3d}%|#####     | 28/62 [00:12<00:14,  2.31it/s]")
        else:
            lines.append(f"{PREFIX}  zero_optimization ............ {rnd.random()}")
    return ("\n".join(lines) + "\n").encode()


def test_the_transcripts_are_there() -> None:
    assert len(TRANSCRIPTS) >= 14


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
def test_every_transcript_gives_the_reference_events(path: Path) -> None:
    data = path.read_bytes()
    reference = events(data, [], line_by_line=True)
    assert reference, "a transcript without events tests nothing"
    assert events(data, [], line_by_line=False) == reference
    cuts = random.Random(path.name).sample(range(len(data)), min(50, len(data)))
    assert events(data, cuts, line_by_line=False) == reference


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.name)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.floats(0, 1), max_size=30))
def test_random_chunkings_of_every_transcript(path: Path, cuts: list[float]) -> None:
    data = path.read_bytes()
    at = [int(c * len(data)) for c in cuts]
    assert events(data, at, line_by_line=False) == events(data, [], line_by_line=True)


def test_a_long_training_log_in_one_mebibyte_reads() -> None:
    data = training_log(20_000, seed=3)
    cuts = list(range(1 << 20, len(data), 1 << 20)) + list(range(4093, len(data), 65_537))
    fast = events(data, cuts, line_by_line=False)
    assert fast == events(data, [], line_by_line=True)
    assert sum('"kind":"step"' in e for e in fast) > 7000


# Lines near the canonical step line (the fast path must hand every variant to the line parser),
# plus the lines whose meaning depends on their neighbours.
PIECES = [
    "steps: 7 loss: 0.25 iter time (s): 1.5 samples/sec: 2.0",
    "steps: 8 loss: nan iter time (s): 1.5 samples/sec: 2.0",
    "steps: 9 loss: 0.25 iter time (s): 1.5 samples/sec: 2.0 extra",
    "steps: 9 loss: 0.25 iter time (s): x samples/sec: 2.0",
    "steps:  9 loss: 0.25  iter time (s): 1.5 samples/sec: 2.0",
    "steps: 10 loss: 0.25 iter time (s): 1.5 samples/sec: 2.0 ",
    "steps: 13 loss: 0.1 iter time (s): 1.0 samples/sec: 1.0 TRAINING COMPLETE!",
    "[rank0]: steps: 11 loss: 0.5 iter time (s): 1.0 samples/sec: 1.0",
    "steps: 1_2 loss: 1e-3 iter time (s): 1_0 samples/sec: inf",
    f"{PREFIX}[Rank 0] step=7, skipped=0, lr=[5e-05], mom=[[0.9, 0.99]]",
    "[Rank 0] step=12, skipped=0, lr=[1e-4, 2e-4], mom=[]",
    "Traceback (most recent call last):",
    '  File "train.py", line 1, in <module>',
    "    main()",
    "[rank1]: Traceback (most recent call last):",
    "[rank1]: RuntimeError: CUDA out of memory.",
    "RuntimeError: boom",
    " 42%|####      | 5/12 [00:01<00:02,  2.31it/s]",
    "Started new epoch: 2",
    "Saving model to directory epoch2",
    "TRAINING COMPLETE!",
    "noise line",
    "",
]
SEPARATORS = ["\n", "\r", "\r\n", "\n\n"]


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(SEPARATORS)), max_size=40),
    st.lists(st.floats(0, 1), max_size=10),
)
def test_mixed_lines_and_chunkings_give_the_reference_events(
    parts: list[tuple[str, str]], cuts: list[float]
) -> None:
    data = "".join(piece + sep for piece, sep in parts).encode()
    at = [int(c * len(data)) for c in cuts]
    assert events(data, at, line_by_line=False) == events(data, [], line_by_line=True)


def test_make_event_is_an_ordinary_frozen_event() -> None:
    made = make_event(EventKind.STEP, 2.5, {"step": 3})
    assert made == Event(EventKind.STEP, 2.5, {"step": 3})
    assert repr(made) == repr(Event(EventKind.STEP, 2.5, {"step": 3}))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.t = 1.0  # type: ignore[misc]
