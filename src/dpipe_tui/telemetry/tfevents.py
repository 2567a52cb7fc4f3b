"""Incremental reader of the TensorBoard event files in an engine's run folder (spec §5.4).

Why: the console never prints eval loss or epoch loss; only TensorBoard has them. The engine's
SummaryWriter flushes every ~2 minutes and a resume starts a new ``events.out.tfevents.*`` file, so
the reader keeps a byte offset per file, reads only what was appended, and leaves a half-written
tail record for the next call. Scalars become ``scalar`` events; ``<name>/loss`` (with the
``<name>/loss_quantile_*`` written just before it) becomes one ``eval`` event.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.tfrecord import CorruptRecord, ScalarRecord, decode_event, read_records

log = logging.getLogger(__name__)
_PATTERN = "events.out.tfevents.*"


class TfEventsReader:
    """Reads new scalars from the event files at the top level of ``run_dir`` on each call.

    Only the run folder's top level holds event files (spec §5.1; ``epochN/`` and ``global_stepN/``
    never do), so a plain ``glob`` is enough: no walk of every checkpoint folder every poll. A corrupt
    length header ends what can be framed: the good records before it are kept, the corruption is
    logged once, and later calls only peek at that header (12 bytes) in case it becomes valid (a
    block the writer had not finished yet can read as zeros on some filesystems).

    Args:
        run_dir: the engine's run folder (e.g. ``output_dir/20260821_14-02-30``).
    """

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self._offsets: dict[Path, int] = {}
        self._corrupt: dict[Path, int] = {}
        self._quantiles: dict[tuple[str, int], dict[str, float]] = {}

    def files(self) -> list[Path]:
        """The event files, oldest first (names embed the creation time)."""
        if not self.run_dir.is_dir():
            return []
        found = (p for p in self.run_dir.glob(_PATTERN) if p.is_file())
        return sorted(found, key=lambda p: (p.name.split(".")[3:4], p.name))

    @property
    def corrupt(self) -> dict[Path, int]:
        """Files whose framing broke, with the byte offset of the bad header."""
        return dict(self._corrupt)

    def read_new(self) -> list[Event]:
        """Events for the scalars appended since the last call."""
        out: list[Event] = []
        for path in self.files():
            for record in self._read_file(path):
                event = self._to_event(record)
                if event is not None:
                    out.append(event)
        return out

    def _read_file(self, path: Path) -> list[ScalarRecord]:
        offset = self._offsets.get(path, 0)
        try:
            with path.open("rb") as fh:
                size = fh.seek(0, 2)
                if size < offset:  # truncated/replaced: start over
                    offset = 0
                    self._corrupt.pop(path, None)
                if size == offset:
                    return []
                fh.seek(offset)
                if self._corrupt.get(path) == offset:
                    try:
                        read_records(fh.read(12))
                    except CorruptRecord:
                        return []  # still broken: reported already, nothing more to frame
                    fh.seek(offset)
                buf = fh.read(size - offset)
        except OSError as exc:
            log.debug("cannot read %s: %s", path, exc)
            return []
        try:
            payloads, used = read_records(buf)
        except CorruptRecord as exc:
            payloads, used = exc.records, exc.offset
            if path not in self._corrupt:
                log.warning(
                    "%s: corrupt record header at byte %d; kept the %d records before it, "
                    "the rest cannot be read",
                    path,
                    offset + used,
                    len(payloads),
                )
            self._corrupt[path] = offset + used
        else:
            self._corrupt.pop(path, None)
        self._offsets[path] = offset + used
        records: list[ScalarRecord] = []
        for payload in payloads:
            records.extend(decode_event(payload))
        return records

    def _to_event(self, rec: ScalarRecord) -> Event | None:
        name, _, leaf = rec.tag.rpartition("/")
        if name and name not in ("train", "eval"):
            if leaf.startswith("loss_quantile_"):
                quantiles = self._quantiles.setdefault((name, rec.step), {})
                quantiles[leaf.removeprefix("loss_quantile_")] = rec.value
                return None
            if leaf == "loss":
                data: dict[str, Any] = {"name": name, "step": rec.step, "loss": rec.value}
                found = self._quantiles.pop((name, rec.step), {})
                if found:
                    data["quantiles"] = found
                return Event(EventKind.EVAL, rec.wall_time, data)
        return Event(EventKind.SCALAR, rec.wall_time, {"tag": rec.tag, "step": rec.step, "value": rec.value})
