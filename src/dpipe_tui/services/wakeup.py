"""Wake a polling client when files under the registry change (watchfiles), else let it poll.

Why: a TUI left open for days over SSH should do almost nothing while nothing happens. Its workers
used to list the registry every second; with a :class:`Wakeup` they sleep until something under the
watched folder changes (a run created, a state written, console lines appended) and only fall back
to a slow timer, which still catches what no file shows (a run whose processes were SIGKILLed with
their monitor). Where inotify (or the OS's equivalent) is unavailable, or the folder does not exist
yet, :attr:`Wakeup.watching` is False and the client keeps its own polling interval.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

log = logging.getLogger(__name__)

DEBOUNCE_MS = 200
"""Changes closer together than this arrive as one wake-up."""

logging.getLogger("watchfiles").setLevel(logging.WARNING)  # it logs every change at INFO


class Wakeup:
    """A background watch of ``paths``; :meth:`wait` returns when something changed (or on timeout).

    Args:
        paths: folders (watched recursively) or files; those that do not exist are skipped.
        ignore: changes to files of these names do not wake (a listing that does not show console
            lines ignores ``console.log`` and ``metrics.jsonl``, which a live run appends to all the
            time; its client polls live runs on its own timer anyway).
        recursive: watch folders' subfolders too (the editor watches one file's folder only: a
            profile beside 10,000 images must not cost 10,000 watches).
    """

    def __init__(
        self, paths: list[Path], ignore: frozenset[str] = frozenset(), *, recursive: bool = True
    ) -> None:
        """Start watching in a daemon thread (nothing when no path exists)."""
        self._recursive = recursive
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._paths = [p for p in paths if p.exists()]
        self.watching = bool(self._paths)
        """True while changes wake :meth:`wait`; False: the caller must poll on its own timer."""
        self._ignore = ignore
        if self.watching:  # changes before the watch is in place are the caller's to read (a first poll)
            threading.Thread(target=self._run, name="dpipe-wakeup", daemon=True).start()

    def _run(self) -> None:
        try:
            from watchfiles import watch

            for _changes in watch(
                *self._paths,
                watch_filter=self._wanted if self._ignore else None,
                debounce=DEBOUNCE_MS,
                stop_event=self._stop,
                recursive=self._recursive,
                rust_timeout=1000,
                raise_interrupt=False,
            ):
                self._changed.set()
        except Exception as exc:  # no inotify, too many watches, a vanished folder: poll instead
            log.info("file watch unavailable (%s); polling", exc)
        finally:
            self.watching = False
            self._changed.set()  # a waiter learns at once that it must poll now

    def _wanted(self, _change: object, path: str) -> bool:
        return os.path.basename(path) not in self._ignore

    def changed(self) -> bool:
        """Whether something changed since the last call (never blocks; for a UI timer)."""
        if self._changed.is_set():
            self._changed.clear()
            return not self._stop.is_set()
        return False

    def wait(self, timeout: float) -> bool:
        """Block until a change (True) or ``timeout`` seconds (False); consumes the change."""
        changed = self._changed.wait(timeout)
        self._changed.clear()
        return changed and not self._stop.is_set()

    def close(self) -> None:
        """Stop watching; a thread blocked in :meth:`wait` returns at once."""
        self._stop.set()
        self._changed.set()
