"""Progress of a registry run (status, the foreground viewer, the TUI), folded from its events.

Why incremental: a long-lived client polls a run for days; :class:`ProgressTracker` reads only what
was appended to ``metrics.jsonl`` since its last call, and its first read folds the history sparsely
(:meth:`MetricsTail.catch_up`), so a million-step run opens in well under a second.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.checkpoints.resume import saved_at
from dpipe_tui.telemetry.progress import (
    FOLDED_KINDS,
    RECENT_STEPS,
    ProgressModel,
    ProgressPlan,
    ProgressSnapshot,
)
from dpipe_tui.telemetry.store import MetricsTail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.telemetry.events import Event


def plan_for_record(record: RunRecord) -> ProgressPlan:
    """The progress plan of a run: its frozen profile's timing keys plus the launch-time step plan.

    ``record.total_steps`` and ``record.steps_per_epoch`` are what the supervisor's dataset plan
    (:func:`plan_for_profile`) gave at launch; for records written before ``steps_per_epoch`` was
    kept, steps per epoch follow from the total unless ``max_steps`` capped it (then they are
    learned from the first ``Started new epoch`` line). Reads one small TOML; never scans data.
    """
    from dpipe_tui.profiles.frozen import frozen_config  # lazily: the profiles package loads pydantic

    config = frozen_config(record.config_path) or {}
    return ProgressPlan.from_config(
        config, steps_per_epoch=record.steps_per_epoch, total_steps=record.total_steps
    )


def checkpoint_saved_at(record: RunRecord, step: int) -> float | None:
    """When the run's ``global_step<step>`` was written, or None when it is not there."""
    # resume_from is the run folder's name inside output_dir (the engine's explicit resume argument)
    named = Path(record.output_dir) / record.resume_from if record.output_dir and record.resume_from else None
    return saved_at((record.engine_run_dir, named), step)


class ProgressTracker:
    """Progress of one registry run, folded incrementally from its events (CLI follow view, TUI).

    Feed it the events a :class:`RunFollower` returns, or let :meth:`refresh` tail ``metrics.jsonl``
    itself; each call reads only what was appended. The plan is rebuilt when a resume changes the
    record (new attempt, re-frozen profile). After a resume the last checkpoint's age comes from the
    ``global_stepN`` folder's mtime (one ``stat`` per checkpoint), not from the resume time.

    Args:
        record: the run as last read.
        metrics_path: its ``metrics.jsonl`` (only needed for :meth:`refresh`).
        clock: current unix time (injected for tests).
    """

    def __init__(
        self,
        record: RunRecord,
        metrics_path: Path | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = _plan_key(record)
        self.model = ProgressModel(plan_for_record(record), clock=clock)
        self._tail = MetricsTail(metrics_path) if metrics_path is not None else None
        self._stat_done: set[int] = set()
        self._caught_up = False

    def update(self, record: RunRecord, events: Iterable[Event] = ()) -> ProgressSnapshot:
        """Fold ``events`` (in order) and return the snapshot for ``record``."""
        if _plan_key(record) != self._key:
            self._key = _plan_key(record)
            self.model.set_plan(plan_for_record(record))
        self.model.feed(events)
        step = self.model.last_checkpoint_step
        if step is not None and self.model.checkpoint_time_estimated and step not in self._stat_done:
            self._stat_done.add(step)
            saved = checkpoint_saved_at(record, step)
            if saved is not None:
                self.model.note_checkpoint_time(step, saved)
        return self.model.snapshot()

    def refresh(self, record: RunRecord) -> ProgressSnapshot:
        """Read the events appended to ``metrics.jsonl`` since the last call and update."""
        if self._tail is None:
            return self.update(record)
        if not self._caught_up:  # the first read folds the file's history sparsely (see catch_up)
            self._caught_up = True
            events = self._tail.catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS)
            return self.update(record, events)
        return self.update(record, self._tail.read_new())


def _plan_key(record: RunRecord) -> tuple[str | None, int | None, int]:
    return (record.config_path, record.total_steps, record.attempt)


def run_progress(
    record: RunRecord, metrics_path: Path, clock: Callable[[], float] = time.time
) -> ProgressSnapshot:
    """One-shot progress of a run from its whole ``metrics.jsonl`` (``dpipe-tui status``)."""
    return ProgressTracker(record, metrics_path, clock).refresh(record)


def progress_to_dict(snapshot: ProgressSnapshot) -> dict[str, Any]:
    """JSON-ready form of a snapshot (non-finite floats become None)."""
    out: dict[str, Any] = {}
    for key, value in dataclasses.asdict(snapshot).items():
        if isinstance(value, float) and not math.isfinite(value):
            value = None
        out[key] = list(value) if isinstance(value, tuple) else value
    return out
