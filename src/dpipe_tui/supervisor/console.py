"""Writing ``console.log`` from the engine's raw output, with tqdm redraws kept sane.

Why: diffusion-pipe's caching and eval bars redraw the same line with ``\\r`` many times a second
(spec §4). Written verbatim, ``console.log`` would hold megabytes of one bar and ``logs -f`` would
be unreadable; dropped, a long caching phase would look silent. So each ``\\r``-terminated redraw
replaces the previous one in memory, and only the final form (the one a ``\\n`` ends), or one redraw
every ``redraw_interval`` seconds, is written as a line.
"""

from __future__ import annotations

import codecs
import re
import time
from collections import deque
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from collections.abc import Callable

_SPLIT = re.compile(r"(\r\n|\r|\n)")
MAX_LINE = 64 * 1024


class ConsoleWriter:
    """Feed raw output chunks; complete lines go to ``sink`` and into :attr:`tail`."""

    def __init__(
        self,
        sink: BinaryIO,
        *,
        clock: Callable[[], float] = time.monotonic,
        redraw_interval: float = 2.0,
        tail_size: int = 200,
    ) -> None:
        """Write into the binary file ``sink``; keep the last ``tail_size`` lines for diagnosis."""
        self._sink = sink
        self._clock = clock
        self._interval = redraw_interval
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._partial = ""
        self._cr_pending = False
        self._redraw: str | None = None
        self._last_redraw_write = -1e18
        self.tail: deque[str] = deque(maxlen=tail_size)
        self.lines_written = 0

    def feed(self, data: bytes) -> None:
        """Consume a chunk of output (any split, even mid-character or between ``\\r`` and ``\\n``)."""
        text = self._decoder.decode(data)
        if self._cr_pending:
            text = "\r" + text
            self._cr_pending = False
        if text.endswith("\r"):  # may be the first half of "\r\n": decide with the next chunk
            text = text[:-1]
            self._cr_pending = True
        pieces = _SPLIT.split(self._partial + text)
        self._partial = pieces.pop()
        out: list[str] = []
        now = self._clock()
        for i in range(0, len(pieces), 2):
            line, sep = pieces[i], pieces[i + 1]
            if sep == "\r":
                if line.strip():
                    self._redraw = line
                    if now - self._last_redraw_write >= self._interval:
                        out.append(line)
                        self._redraw = None
                        self._last_redraw_write = now
                continue
            self._redraw = None
            out.append(line)
        if len(self._partial) > MAX_LINE:  # a runaway line without terminator
            out.append(self._partial)
            self._partial = ""
        self._write(out)

    def flush(self) -> None:
        """Write what is pending (the last redraw and an unterminated last line)."""
        out = []
        if self._partial or self._redraw is not None:
            out.append(self._partial or self._redraw or "")
        self._partial = ""
        self._redraw = None
        self._cr_pending = False
        self._write(out)
        self._sink.flush()

    def write_note(self, text: str) -> None:
        """Write a supervisor line (attempt separators, exit summaries) into the log."""
        self._write([text])
        self._sink.flush()

    def _write(self, lines: list[str]) -> None:
        if not lines:
            return
        self._sink.write(("\n".join(lines) + "\n").encode("utf-8", errors="replace"))
        self._sink.flush()  # readers (`logs -f`, the TUI) tail the file: one write per output batch
        self.tail.extend(lines)
        self.lines_written += len(lines)
