"""Offline summaries of a run: steps, loss, rate, saves, checkpoints, failure — from its events.

Why two inputs: for a registry run the monitor already wrote ``metrics.jsonl``, which also holds what
the console never prints (TensorBoard eval and epoch losses, design.md), so that file is the truth;
``dpipe-tui metrics`` must also work on a log a user saved from tmux scrollback, which is parsed with
the same :class:`ConsoleParser` the monitor uses, in 1 MiB chunks, so memory stays flat on multi-GB
logs.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.failures import Failure, classify_failure
from dpipe_tui.telemetry.parse import ConsoleParser
from dpipe_tui.telemetry.store import LogTail

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dpipe_tui.services.sources import MetricsSource


_CHUNK = 1024 * 1024


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

    @property
    def empty(self) -> bool:
        """Nothing of a training run was recognised (an empty, binary or unrelated file)."""
        return not (
            self.steps_seen
            or self.last_step is not None
            or self.epoch is not None
            or self.saves
            or self.checkpoints
            or self.completed
            or self.exit_code is not None
            or self.failure is not None
            or self.warnings
            or self.eval_loss
        )

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


def iter_source_events(source: MetricsSource) -> Iterator[Event]:
    """Events of a source: its ``metrics.jsonl`` when there is one, else its parsed console."""
    return iter_metrics(source.metrics) if source.metrics is not None else iter_events(source.path)
