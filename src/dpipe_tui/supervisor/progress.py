"""What the monitor folds from events into ``run.json``, and how it finds the engine's run folder.

Why a summary in ``run.json``: ``dpipe-tui ls`` must list fifty runs instantly, without reading fifty
``metrics.jsonl`` files; so the monitor keeps the last step, loss, epoch, phase and checkpoint tag
in the record (written at most once a second).

Why a diff of ``output_dir``: the engine creates its timestamped folder after caching and loading
(spec §5.1) and prints no line naming it reliably; the new entry that appears after launch is ours.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpipe_tui.telemetry.events import Event, EventKind

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

    from dpipe_tui.runs.model import RunRecord

_RUN_FOLDER = re.compile(r"^\d{8}_\d{2}-\d{2}-\d{2}$")


@dataclass(slots=True)
class RunSummary:
    """Mutable progress summary inside the monitor; :meth:`apply` copies it into a record."""

    phase: str | None = None
    step: int | None = None
    loss: float | None = None
    epoch: int | None = None
    checkpoint: str | None = None
    run_folder: str | None = None
    peak_vram: float | None = None
    folder_checked: float = -1e18
    dirty: bool = False

    def absorb(self, events: Iterable[Event]) -> None:
        """Fold new events in."""
        for e in events:
            if e.kind is EventKind.STEP and e.get("step") is not None:
                self.step = int(e.get("step"))
                loss = e.get("loss")
                self.loss = float(loss) if isinstance(loss, int | float) and math.isfinite(loss) else None
            elif e.kind in (EventKind.EPOCH, EventKind.RESUME) and e.get("epoch") is not None:
                self.epoch = int(e.get("epoch"))
            elif e.kind is EventKind.PHASE and e.get("phase"):
                self.phase = str(e.get("phase"))
            elif e.kind is EventKind.CHECKPOINT and e.get("tag"):
                self.checkpoint = str(e.get("tag"))
            else:
                continue
            self.dirty = True

    def apply(self, record: RunRecord) -> RunRecord:
        """Return ``record`` with this summary's known values."""
        changes: dict[str, Any] = {}
        for attr, field in (
            ("phase", "phase"),
            ("step", "last_step"),
            ("loss", "last_loss"),
            ("epoch", "last_epoch"),
            ("checkpoint", "checkpoint_tag"),
            ("run_folder", "engine_run_dir"),
            ("peak_vram", "peak_vram_bytes"),
        ):
            value = getattr(self, attr)
            if value is not None and getattr(record, field) != value:
                changes[field] = value
        return dataclasses.replace(record, **changes) if changes else record


def snapshot_entries(output_dir: Path | None) -> set[str]:
    """Names in ``output_dir`` before launch (empty when it does not exist yet)."""
    if output_dir is None:
        return set()
    try:
        return set(os.listdir(output_dir))
    except OSError:
        return set()


def discover_run_folder(output_dir: Path, before: set[str]) -> str | None:
    """The engine's new run folder: a timestamp-named directory that was not there before launch."""
    try:
        new = [n for n in os.listdir(output_dir) if n not in before and (output_dir / n).is_dir()]
    except OSError:
        return None
    stamped = sorted(n for n in new if _RUN_FOLDER.match(n))
    chosen = stamped[-1] if stamped else (sorted(new)[-1] if new else None)
    return str(output_dir / chosen) if chosen else None
