"""Chunk boundaries never change the events; garbage never raises."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dpipe_tui.telemetry import ConsoleParser, Event

DATA = Path(__file__).resolve().parents[1] / "data"
FILES = [
    "single_gpu_complete.log",
    "two_ranks_traceback.log",
    "cache_only.log",
    "cuda_oom.log",
    "nccl_timeout.log",
]


def feed_chunks(data: bytes, cuts: list[int]) -> list[Event]:
    parser = ConsoleParser(lambda: 5.0)
    out: list[Event] = []
    prev = 0
    for cut in sorted(set(cuts)):
        out += parser.feed(data[prev:cut])
        prev = cut
    out += parser.feed(data[prev:])
    return out + parser.flush()


@pytest.mark.parametrize("name", FILES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.floats(0, 1), max_size=40))
def test_random_chunking_gives_same_events(name: str, cuts: list[float]) -> None:
    data = (DATA / name).read_bytes()
    whole = feed_chunks(data, [])
    assert feed_chunks(data, [int(c * len(data)) for c in cuts]) == whole


def test_byte_by_byte_split_utf8() -> None:
    data = (DATA / "cache_only.log").read_bytes()[:6000]  # tqdm bars: multi-byte █
    assert feed_chunks(data, list(range(len(data)))) == feed_chunks(data, [])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=10))
def test_random_bytes_never_raise(chunks: list[bytes]) -> None:
    parser = ConsoleParser(lambda: 1.0)
    for chunk in chunks:
        parser.feed(chunk)
    parser.flush()


KEYWORDS = [
    "steps: ",
    "[Rank 0] step=",
    "Traceback (most recent call last):",
    "  File ",
    "Started new epoch: ",
    "%|",
    "exits with return code = ",
    "[rank1]: ",
    "Resuming at epoch: ",
    "Saving model checkpoint: ",
    "Checkpoint global_step is about to be saved!",
    "Global batch size = ",
    "loss: nan",
    "\r",
    "\n",
    "x",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.sampled_from(KEYWORDS), st.text(max_size=12)), max_size=60))
def test_truncated_and_mangled_lines_never_raise(parts: list[str]) -> None:
    parser = ConsoleParser(lambda: 1.0)
    parser.feed("".join(parts))
    parser.tick()
    parser.flush()


def test_runaway_line_is_cut() -> None:
    parser = ConsoleParser(lambda: 1.0)
    parser.feed("a" * 300_000)
    assert len(parser._buf) < 70_000
