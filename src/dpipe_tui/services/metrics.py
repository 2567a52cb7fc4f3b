"""Use case: a run's events and a summary, from its ``metrics.jsonl`` or any saved console log.

Why two sources: for a registry run the monitor already wrote ``metrics.jsonl``, which also holds what
the console never prints (TensorBoard eval and epoch losses, design.md), so that file is the truth;
``dpipe-tui metrics`` must also work on a log a user saved from tmux scrollback (or a run folder whose
``metrics.jsonl`` is missing), which is parsed with the same :class:`ConsoleParser` the monitor uses,
in 1 MiB chunks, so memory stays flat on multi-GB logs. Progress of a registry run (status, the
foreground viewer, the TUI) is folded from the same events by :class:`ProgressTracker`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui import paths
from dpipe_tui.supervisor.telemetry_link import frozen_config
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.failures import Failure, classify_failure
from dpipe_tui.telemetry.parse import ConsoleParser
from dpipe_tui.telemetry.progress import (
    FOLDED_KINDS,
    RECENT_STEPS,
    ProgressModel,
    ProgressPlan,
    ProgressSnapshot,
)
from dpipe_tui.telemetry.store import LogTail, MetricsTail

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    from dpipe_tui.runs.model import RunRecord

_CHUNK = 1024 * 1024


class LogNotFound(LookupError):
    """Neither a file nor a run matching the argument exists."""


@dataclass(frozen=True, slots=True)
class MetricsSource:
    """Where a target's events come from: ``metrics`` (a registry run's events) else ``console``."""

    console: Path | None
    metrics: Path | None = None

    @property
    def path(self) -> Path:
        """The file the events are read from."""
        found = self.metrics or self.console
        assert found is not None
        return found


def _run_folder_source(folder: Path) -> MetricsSource | None:
    metrics, console = folder / "metrics.jsonl", folder / "console.log"
    has_metrics, has_console = metrics.is_file(), console.is_file()
    if not (has_metrics or has_console):
        return None
    return MetricsSource(console if has_console else None, metrics if has_metrics else None)


def resolve_source(target: str, home: Path | None = None) -> MetricsSource:
    """Find what ``target`` means: a log file, a run folder, or a registry run id / unique prefix.

    A run folder's ``metrics.jsonl`` is preferred (it holds TensorBoard eval/epoch losses too); its
    ``console.log`` is parsed when that file is absent. A file argument is always parsed as a log.

    Raises:
        LogNotFound: nothing matches, or a prefix matches several runs.
    """
    path = Path(target).expanduser()
    if path.is_file():
        return MetricsSource(path)
    if path.is_dir() and (found := _run_folder_source(path)) is not None:
        return found
    runs = paths.runs_dir(home or paths.home())
    if runs.is_dir() and "/" not in target:
        if (runs / target).is_dir() and (found := _run_folder_source(runs / target)) is not None:
            return found
        matches = sorted(p.name for p in runs.iterdir() if p.name.startswith(target) and p.is_dir())
        if len(matches) == 1 and (found := _run_folder_source(runs / matches[0])) is not None:
            return found
        if len(matches) > 1:
            raise LogNotFound(f"{target!r} matches {len(matches)} runs: {', '.join(matches[:10])}")
    raise LogNotFound(f"no log file or run {target!r} (registry: {runs})")


def iter_events(path: Path) -> Iterator[Event]:
    """Parse ``path`` chunk by chunk; events are stamped with the file's mtime (the log has no times)."""
    mtime = path.stat().st_mtime
    parser = ConsoleParser(clock=lambda: mtime)
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            yield from parser.feed(chunk)
    yield from parser.flush()


def iter_metrics(path: Path) -> Iterator[Event]:
    """The events of a ``metrics.jsonl``, line by line (blank, partial or unknown lines are skipped)."""
    with path.open("rb") as fh:
        for raw in fh:
            event = Event.from_json(raw.decode("utf-8", "replace")) if raw.strip() else None
            if event is not None:
                yield event


def iter_source_events(source: MetricsSource) -> Iterator[Event]:
    """Events of a source: its ``metrics.jsonl`` when there is one, else its parsed console."""
    return iter_metrics(source.metrics) if source.metrics is not None else iter_events(source.path)


@dataclass(frozen=True, slots=True)
class MetricsSummary:
    """What a log says about its run."""

    log: str
    steps_seen: int
    last_step: int | None
    last_loss: float | None
    steps_per_sec: float | None
    epoch: int | None
    saves: tuple[str, ...]
    checkpoints: tuple[str, ...]
    resumed_at: int | None
    completed: bool
    exit_code: int | None
    warnings: dict[str, int] = field(default_factory=dict)
    failure: Failure | None = None
    source: str = "console.log"
    """Where the events came from: ``metrics.jsonl`` (a registry run) or ``console.log`` (parsed)."""
    epoch_loss: float | None = None
    """Last ``train/epoch_loss`` from TensorBoard (never printed on the console)."""
    eval_loss: dict[str, float] = field(default_factory=dict)
    """Last loss of each eval dataset, from TensorBoard."""
    eval_step: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        out: dict[str, Any] = {k: getattr(self, k) for k in self.__slots__ if k != "failure"}
        out["saves"], out["checkpoints"] = list(self.saves), list(self.checkpoints)
        for key in ("last_loss", "epoch_loss"):
            value = out[key]
            if value is not None and not math.isfinite(value):
                out[key] = str(value)
        out["eval_loss"] = {k: v if math.isfinite(v) else str(v) for k, v in self.eval_loss.items()}
        failure = self.failure
        out["failure"] = (
            None
            if failure is None
            else {"class": failure.cls, "message": failure.message, "hint": failure.hint}
        )
        return out


def summarize(
    path: Path,
    events: list[Event],
    tail_lines: list[str] | None = None,
    *,
    source: str = "console.log",
    process_exit: int | None = None,
) -> MetricsSummary:
    """Summarise a run's events (``tail_lines``: its console's last lines, read from ``path`` when None)."""
    steps = [e for e in events if e.kind is EventKind.STEP]
    epochs = [int(e.data["epoch"]) for e in events if e.kind is EventKind.EPOCH]
    exits = [e.get("code") for e in events if e.kind is EventKind.EXIT and e.get("code") is not None]
    exit_code = next((int(c) for c in exits if int(c) != 0), 0 if exits else None)
    if process_exit is not None and not exit_code:  # the process's own status (run.json) fills in
        exit_code = process_exit
    completed = any(e.kind is EventKind.COMPLETE for e in events)
    resumes = [e for e in events if e.kind is EventKind.RESUME]
    ended = completed or exit_code is not None or any(e.kind is EventKind.ERROR for e in events)
    tail = tail_lines if tail_lines is not None else LogTail(path).last_lines(200)
    failure = classify_failure(exit_code, events, tail) if ended else None
    warnings = Counter(str(e.get("code")) for e in events if e.kind is EventKind.WARNING)
    epoch_losses = [
        float(e.data["value"])
        for e in events
        if e.kind is EventKind.SCALAR and e.get("tag") == "train/epoch_loss" and e.get("value") is not None
    ]
    evals = [e for e in events if e.kind is EventKind.EVAL and e.get("loss") is not None]
    return MetricsSummary(
        log=str(path),
        steps_seen=len(steps),
        last_step=int(steps[-1].data["step"]) if steps else None,
        last_loss=float(steps[-1].data["loss"]) if steps else None,
        steps_per_sec=training_rate(events),
        epoch=max(epochs) if epochs else (1 if steps else None),
        saves=tuple(str(e.get("dir")) for e in events if e.kind is EventKind.SAVE),
        checkpoints=tuple(str(e.get("tag")) for e in events if e.kind is EventKind.CHECKPOINT),
        resumed_at=int(resumes[-1].data["step"]) if resumes else None,
        completed=completed,
        exit_code=exit_code,
        warnings=dict(warnings),
        failure=failure,
        source=source,
        epoch_loss=epoch_losses[-1] if epoch_losses else None,
        eval_loss={str(e.get("name", "eval")): float(e.data["loss"]) for e in evals},
        eval_step=int(evals[-1].data["step"]) if evals and evals[-1].get("step") is not None else None,
    )


def training_rate(events: list[Event]) -> float | None:
    """Steps over training time: the wall clock between steps, each attempt on its own.

    Loading before an attempt's first step and the gap before a resume are not training time;
    evals and saves between steps are. A console log parsed without times (every event stamped with
    the file's mtime) falls back to the sum of DeepSpeed's iter times — never a median with the slow
    steps thrown away, which made a run averaging 1.1 it/s read as 4.8.
    """
    done, seconds = 0, 0.0
    prev: Event | None = None
    for event in events:
        if event.kind is EventKind.RESUME:
            prev = None
        elif event.kind is EventKind.STEP:
            if prev is not None and event.t >= prev.t and int(event.data["step"]) > int(prev.data["step"]):
                done += int(event.data["step"]) - int(prev.data["step"])
                seconds += event.t - prev.t
            prev = event
    if seconds > 0 and done:
        return done / seconds
    iter_times = [
        float(e.data["iter_time"]) for e in events if e.kind is EventKind.STEP and e.get("iter_time")
    ]
    total = sum(iter_times)
    return len(iter_times) / total if total > 0 else None


def summarize_log(path: Path) -> MetricsSummary:
    """Parse and summarise a log file."""
    return summarize(path, list(iter_events(path)))


def summarize_source(source: MetricsSource) -> MetricsSummary:
    """Summarise a run from its ``metrics.jsonl`` (failure evidence from its console tail), or a log."""
    if source.metrics is None:
        return summarize_log(source.path)
    tail = LogTail(source.console).last_lines(200) if source.console is not None else []
    events = list(iter_metrics(source.metrics))
    return summarize(
        source.metrics, events, tail, source="metrics.jsonl", process_exit=_recorded_exit(source.metrics)
    )


def _recorded_exit(metrics: Path) -> int | None:
    """The exit code ``run.json`` beside ``metrics`` recorded, if any (the monitor saw the process end)."""
    try:
        code = json.loads((metrics.parent / "run.json").read_text(encoding="utf-8")).get("exit_code")
    except (OSError, ValueError, AttributeError):
        return None
    return code if isinstance(code, int) and not isinstance(code, bool) else None


# -- progress of a registry run ---------------------------------------------------------------------
def plan_for_record(record: RunRecord) -> ProgressPlan:
    """The progress plan of a run: its frozen profile's timing keys plus the launch-time step plan.

    ``record.total_steps`` and ``record.steps_per_epoch`` are what the supervisor's dataset plan
    (:func:`plan_for_profile`) gave at launch; for records written before ``steps_per_epoch`` was
    kept, steps per epoch follow from the total unless ``max_steps`` capped it (then they are
    learned from the first ``Started new epoch`` line). Reads one small TOML; never scans data.
    """
    config = frozen_config(record.config_path) or {}
    return ProgressPlan.from_config(
        config, steps_per_epoch=record.steps_per_epoch, total_steps=record.total_steps
    )


def checkpoint_saved_at(record: RunRecord, step: int) -> float | None:
    """When ``global_step<step>`` was written (its folder's mtime), or None when it is not there."""
    # resume_from is the run folder's name inside output_dir (the engine's explicit resume argument)
    named = Path(record.output_dir) / record.resume_from if record.output_dir and record.resume_from else None
    for folder in (record.engine_run_dir, named):
        if folder:
            try:
                return (Path(folder) / f"global_step{step}").stat().st_mtime
            except OSError:
                continue
    return None


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
