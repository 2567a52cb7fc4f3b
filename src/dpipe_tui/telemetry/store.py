"""Reading a run's ``metrics.jsonl`` and ``console.log`` incrementally, and keeping series compactly.

Why offsets: both files grow for days (a console log can reach gigabytes), and the TUI polls them
every ~250 ms. Each reader keeps a byte offset and reads only what was appended; a half-written last
line stays for the next call; a file that shrank (truncated, rotated, replaced) is read again from
the start. :meth:`LogTail.last_lines` seeks from the end, so opening a huge log costs a few blocks.
Series store floats in ``array`` buffers (8 bytes a point, no per-point objects).
"""

from __future__ import annotations

import os
import time
from array import array
from bisect import bisect_left
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from dpipe_tui.telemetry.catchup import SIDECAR_NAME, CatchUp, read_sidecar, write_sidecar
from dpipe_tui.telemetry.events import Event, EventKind, decode_lines

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

_BLOCK = 64 * 1024


MAX_PARTIAL = 1 << 20
"""Longest unterminated tail kept pending; beyond it a ``\\r``-only redraw storm keeps its last redraw."""


class ByteTail:
    """Complete lines appended to a file, by byte offset: the one tail every follower uses.

    Everything read is consumed (``offset`` is where the next read starts); an unterminated last
    piece waits in a buffer for its newline. A tqdm bar that redraws with ``\\r`` only can write
    megabytes without a newline: once the pending piece (or a completed line) exceeds ``max_partial``
    it is cut to its last ``\\r`` segment (the last update wins; earlier redraws are superseded), and a
    genuinely huge line without any ``\\r`` is handed out in ``max_partial`` pieces, so a reader never
    stalls and memory stays bounded. A replaced (new inode) or truncated file is read again from the start.

    Args:
        path: the file (it may not exist yet).
        offset: byte offset to start from.
        max_partial: see above.
    """

    def __init__(self, path: Path, offset: int = 0, *, max_partial: int = MAX_PARTIAL) -> None:
        self.path = Path(path)
        self._offset = offset
        self._rest = b""
        self._max_partial = max_partial
        self._ident: tuple[int, int] | None = None

    @property
    def offset(self) -> int:
        """Byte offset of the next read (a pending partial line lies just before it)."""
        return self._offset

    @offset.setter
    def offset(self, value: int) -> None:
        self._offset, self._rest = value, b""

    @property
    def pending(self) -> int:
        """Bytes of an unterminated last line read but not yet handed out."""
        return len(self._rest)

    def read_new_lines(self, max_bytes: int | None = None) -> list[bytes]:
        """The complete lines appended since the last call (reading at most ``max_bytes``)."""
        try:
            with self.path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                ident = (st.st_dev, st.st_ino)
                if (self._ident is not None and ident != self._ident) or st.st_size < self._offset:
                    self.offset = 0  # rotated or truncated
                self._ident = ident
                if st.st_size == self._offset:
                    return []
                fh.seek(self._offset)
                want = st.st_size - self._offset
                data = fh.read(want if max_bytes is None else min(want, max_bytes))
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._rest + data).split(b"\n") if self._rest else data.split(b"\n")
        self._rest = lines.pop()
        for i, line in enumerate(lines):  # a completed redraw storm: only its last redraw matters
            if len(line) > self._max_partial and (cut := line.rfind(b"\r")) > 0:
                lines[i] = line[cut:]
        if len(self._rest) > self._max_partial:
            cut = self._rest.rfind(b"\r")
            if cut > 0:
                self._rest = self._rest[cut:]
            while len(self._rest) > self._max_partial:
                lines.append(self._rest[: self._max_partial])
                self._rest = self._rest[self._max_partial :]
        return lines


class MetricsTail:
    """Incremental reader of ``metrics.jsonl``: :meth:`read_new` returns the events appended since."""

    def __init__(self, path: Path) -> None:
        self._tail = ByteTail(path)

    @property
    def offset(self) -> int:
        """Byte offset of the first unread line."""
        return self._tail.offset

    def read_new(self) -> list[Event]:
        """Events from the complete lines appended since the last call (bad lines are skipped)."""
        return decode_lines(self._tail.read_new_lines())

    def catch_up(self, kinds: frozenset[str], *, recent_kind: str, recent: int) -> list[Event]:
        """Everything appended so far, decoding only what a fold needs; later reads continue after it.

        A million-step run's file holds millions of lines, and decoding them all costs seconds (measured
        in ``benchmarks/bench_telemetry.py``). Folding progress needs every event of ``kinds`` (epochs,
        checkpoints...), the first ``recent_kind`` event and the last ``recent`` ones (:class:`CatchUp`);
        on a first read the monitor's sidecar supplies the fold of the file up to its recent window,
        so only the window and what follows it are read. Events come in file order.

        Args:
            kinds: kinds returned wherever they are.
            recent_kind: the bulk kind (``step``) of which only the first and the last ``recent`` count.
            recent: how many of the last ``recent_kind`` events to keep.
        """
        fold = CatchUp(kinds, recent_kind=recent_kind, recent=recent)
        self.catch_up_into(fold)
        return fold.events()

    def catch_up_into(self, fold: CatchUp) -> bool:
        """Fold everything appended so far into ``fold`` (fresh); True when the sidecar was used."""
        used = self._tail.offset == 0 and read_sidecar(self._tail.path, fold)
        if used:
            self._tail.offset = fold.offset
        else:
            fold.offset = self._tail.offset
        while True:
            before = self._tail.offset
            fold.add(self._tail.read_new_lines(max_bytes=_CATCH_UP_CHUNK))
            if self._tail.offset == before:
                break
        fold.exact = fold.exact and fold.offset == self._tail.offset - self._tail.pending
        return used


_CATCH_UP_CHUNK = 8 << 20
SIDECAR_INTERVAL_S = 2.0
"""How often :class:`MetricsAppender` saves the catch-up sidecar while events keep coming."""


class MetricsAppender:
    """The monitor's writer of ``metrics.jsonl``: appends event lines, keeps the catch-up sidecar.

    It folds what it writes (:class:`CatchUp`, after folding what the file already holds, e.g. an
    earlier attempt's events) and saves the fold beside the file at most every ``interval``
    seconds and on :meth:`close`, so a reader opening the run reads the recent window, not the file.

    Args:
        path: ``metrics.jsonl`` (created if missing, private).
        kinds, recent_kind, recent: the fold readers use (``catch_up``'s arguments).
        interval: minimum seconds between two sidecar saves.
        clock: monotonic time source (injected in tests).
        before_replace: test hook, see :func:`write_sidecar`.
    """

    def __init__(
        self,
        path: Path,
        *,
        kinds: frozenset[str],
        recent_kind: str,
        recent: int,
        interval: float = SIDECAR_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
        before_replace: Callable[[Path], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fold = CatchUp(kinds, recent_kind=recent_kind, recent=recent)
        for stray in self.path.parent.glob(f".{SIDECAR_NAME}.*.tmp"):  # a save killed before its rename
            stray.unlink(missing_ok=True)
        MetricsTail(self.path).catch_up_into(self.fold)
        self._fh: BinaryIO = open(self.path, "ab")  # noqa: SIM115 - closed by close()
        os.chmod(self.path, 0o600)
        size = self._fh.tell()
        if size > self.fold.offset:  # a last line without newline (a writer killed mid-line): end it
            with open(self.path, "rb") as fh:
                fh.seek(self.fold.offset)
                partial = fh.read(size - self.fold.offset)
            self._fh.write(b"\n")
            self._fh.flush()
            self.fold.add([partial])
        self._interval = interval
        self._clock = clock
        self._before_replace = before_replace
        self._saved = clock()

    def write(self, events: Sequence[Event]) -> None:
        """Append ``events`` (one JSON line each); save the sidecar when it is due."""
        if not events:
            return
        raws = [e.to_json().encode("utf-8") for e in events]
        self._fh.write(b"\n".join(raws) + b"\n")
        self._fh.flush()
        self.fold.add(raws)
        if self._clock() - self._saved >= self._interval:
            self.save_sidecar()

    def save_sidecar(self) -> bool:
        """Save the fold beside the file now (atomically); False when it could not be saved."""
        self._saved = self._clock()
        return write_sidecar(self.path, self.fold, before_replace=self._before_replace)

    def close(self) -> None:
        """Save the sidecar and close the file."""
        if not self._fh.closed:
            self._fh.flush()
            self.save_sidecar()
            self._fh.close()

    def __enter__(self) -> MetricsAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class LogTail:
    """``console.log`` reader: the last N lines fast, then the lines appended since.

    Lines are split on ``\\n`` and ``\\r`` (tqdm redraws), keeping the last redraw of each line.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._tail = ByteTail(self.path)

    def last_lines(self, n: int) -> list[str]:
        """The last ``n`` lines, reading backwards block by block; later reads start after them."""
        try:
            with self.path.open("rb") as fh:
                size = fh.seek(0, os.SEEK_END)
                chunks: list[bytes] = []
                count = 0
                pos = size
                while pos > 0 and count <= n:
                    step = min(_BLOCK, pos)
                    pos -= step
                    fh.seek(pos)
                    chunk = fh.read(step)
                    chunks.append(chunk)
                    count += chunk.count(b"\n")
        except FileNotFoundError:
            return []
        data = b"".join(reversed(chunks))
        last_nl = data.rfind(b"\n")
        self._tail.offset = pos + last_nl + 1 if last_nl >= 0 else pos
        lines = [_last_redraw(raw) for raw in data[: last_nl if last_nl >= 0 else 0].split(b"\n")]
        if pos > 0:
            lines = lines[1:]  # the first piece may be a partial line
        return lines[-n:] if n else []

    def read_new(self, max_bytes: int | None = 8 * 1024 * 1024) -> list[str]:
        """Complete lines appended since the last call (at most ``max_bytes`` per call)."""
        return [_last_redraw(raw) for raw in self._tail.read_new_lines(max_bytes)]


def _last_redraw(raw: bytes) -> str:
    text = raw.decode("utf-8", "replace")
    if "\r" in text:
        parts = [p for p in text.split("\r") if p]
        return parts[-1] if parts else ""
    return text


class Series:
    """A growing (x, y) series in two ``array('d')`` buffers."""

    def __init__(self) -> None:
        self.x: array[float] = array("d")
        self.y: array[float] = array("d")

    def __len__(self) -> int:
        return len(self.x)

    def append(self, x: float, y: float) -> None:
        """Add one point; a point whose x does not grow replaces the tail from x on (a resume)."""
        if self.x and x <= self.x[-1]:
            cut = bisect_left(self.x, x)
            del self.x[cut:]
            del self.y[cut:]
        self.x.append(x)
        self.y.append(y)


class MetricSeries:
    """The series a run view plots, fed with events: loss and lr per step, eval loss per name."""

    def __init__(self) -> None:
        self.loss = Series()
        self.lr = Series()
        self.epoch_loss = Series()
        self.evals: dict[str, Series] = {}
        self.scalars: dict[str, Series] = {}

    def add(self, events: Iterable[Event]) -> None:
        """Fold events into the series."""
        for event in events:
            kind = event.kind
            if kind is EventKind.STEP:
                step = float(event.data["step"])
                self.loss.append(step, float(event.get("loss", float("nan"))))
                lr = event.get("lr")
                if lr:
                    self.lr.append(step, float(lr[0]))
            elif kind is EventKind.EVAL and event.get("loss") is not None:
                series = self.evals.setdefault(str(event.get("name", "eval")), Series())
                series.append(float(event.get("step", 0)), float(event.data["loss"]))
            elif kind is EventKind.SCALAR:
                tag = str(event.get("tag"))
                if tag == "train/epoch_loss":
                    self.epoch_loss.append(float(event.get("step", 0)), float(event.get("value")))
                elif tag != "train/loss":
                    self.scalars.setdefault(tag, Series()).append(
                        float(event.get("step", 0)), float(event.get("value"))
                    )
