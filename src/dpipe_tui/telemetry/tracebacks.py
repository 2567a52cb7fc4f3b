"""Per-rank Python traceback tracking for the console parser.

Why per rank: with several GPUs every rank may die at once and torch.distributed prefixes each
stderr line with ``[rankN]:``, so the frames of different ranks interleave line by line. Keeping one
small state per rank (None = unprefixed) reassembles each traceback; only its last frame, the failing
source line and the exception line are kept — that is what a user needs to act.
"""

from __future__ import annotations

import re
from typing import Final

_EXCEPTION: Final = re.compile(
    r"^([A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Failure|Warning))(?::\s?(.*))?$"
)
_MAX_NOISE: Final = 200


class TracebackTracker:
    """Reassembles tracebacks rank by rank; see :meth:`feed`."""

    def __init__(self) -> None:
        self._open: dict[int | None, dict[str, str]] = {}
        self._noise: dict[int | None, int] = {}
        self.consumed = False

    @property
    def active(self) -> bool:
        """True while some rank is inside a traceback."""
        return bool(self._open)

    def start(self, rank: int | None) -> None:
        """A ``Traceback (most recent call last):`` line was seen for ``rank``."""
        self._open[rank] = {}
        self._noise[rank] = 0

    def feed(self, rank: int | None, line: str) -> dict[str, str] | None:
        """Offer one line; returns the finished traceback when it is the exception line.

        Sets :attr:`consumed` to whether the line belonged to an open traceback.
        """
        state = self._open.get(rank)
        self.consumed = False
        if state is None:
            return None
        if line.startswith("Traceback (most recent call last)"):
            return None  # the parser's trigger restarts it
        if line.startswith("  File "):
            state["frame"] = line.strip()
            state.pop("code", None)
            self.consumed = True
            return None
        if line.startswith((" ", "\t")):
            text = line.strip()
            if "frame" in state and "code" not in state and text and not set(text) <= set("^~ "):
                state["code"] = text
            self.consumed = True
            return None
        match = _EXCEPTION.match(line.strip())
        if match:
            del self._open[rank]
            state["exception"] = line.strip()
            self.consumed = True
            return state
        self._noise[rank] += 1
        if self._noise[rank] > _MAX_NOISE:
            del self._open[rank]
        return None

    def flush(self) -> list[tuple[int | None, dict[str, str]]]:
        """End of output: every traceback still open, as far as it got."""
        done = [(rank, state) for rank, state in self._open.items() if state]
        self._open.clear()
        return done
