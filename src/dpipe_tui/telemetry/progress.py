"""Progress, ETA and save/checkpoint timing: what diffusion-pipe never prints (spec §3.3, §7.3).

Why a pure model fed with events: the monitor, the CLI and the TUI all derive the same numbers from
the same event stream, replayed from ``metrics.jsonl`` after a restart. Time comes from an injected
clock.

Speed comes from the wall clock: steps per second between the event times (``t``, stamped by the
monitor as it reads each line) over a recent window. DeepSpeed's per-step ``iter time`` leaves out
everything between steps (data loading, logging, other processes on a busy machine: measured on a
2-core box it said 21.7 it/s while the run made 0.7), and averaging it with outliers thrown away made
ETAs far too optimistic. The ordinary cost of evals and saves during training is part of the real
rate; time outside training (loading before the first step, a resume gap) is not: the window starts
at the first step of an attempt. Until the window holds :data:`MIN_INTERVALS` steps over at least
:data:`MIN_SPAN_S` seconds the snapshot says ``measuring`` instead of a wild ETA.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from dpipe_tui.telemetry.events import Event

FOLDED_KINDS = frozenset({"phase", "epoch", "resume", "checkpoint", "save", "complete"})
"""Event kinds :class:`ProgressModel` folds besides ``step`` (each has an ``_on_<kind>`` handler)."""

MIN_INTERVALS = 5
"""Step intervals the rate window needs before a rate and ETA are shown."""
MIN_SPAN_S = 5.0
"""Wall-clock seconds the rate window needs before a rate and ETA are shown."""
WINDOW_STEPS = 200
"""The rate is measured over at most this many recent steps ..."""
WINDOW_S = 600.0
"""... and at most this many recent seconds (a slowdown shows within minutes)."""

RECENT_STEPS = 500
"""Step events a catch-up replays: the EMAs (alpha 0.1) forget anything older (0.9**500 ~ 1e-23)."""


@dataclass(frozen=True, slots=True)
class ProgressPlan:
    """What is known before the run starts (from the profile and the dataset plan)."""

    steps_per_epoch: int | None = None
    epochs: int | None = None
    max_steps: int | None = None
    total_steps: int | None = None
    save_every_n_epochs: int | None = None
    save_every_n_steps: int | None = None
    checkpoint_every_n_minutes: float | None = None
    checkpoint_every_n_epochs: int | None = None

    @classmethod
    def from_config(
        cls,
        config: Mapping[str, Any],
        *,
        steps_per_epoch: int | None = None,
        total_steps: int | None = None,
    ) -> ProgressPlan:
        """Read the timing keys of a main TOML mapping (unknown/missing keys are None).

        Args:
            config: the main TOML as a mapping.
            steps_per_epoch: from the dataset plan, when known.
            total_steps: the dataset plan's total (epochs x steps/epoch, capped by max_steps). When
                ``steps_per_epoch`` is not given it is derived from this total if the total is not
                the ``max_steps`` cap (then it is exactly epochs x steps/epoch).
        """

        def num(key: str) -> Any:
            value = config.get(key)
            return (
                value
                if isinstance(value, int | float) and not isinstance(value, bool) and value > 0
                else None
            )

        epochs, max_steps = num("epochs"), num("max_steps")
        if (
            steps_per_epoch is None
            and total_steps
            and isinstance(epochs, int)
            and total_steps % epochs == 0
            and (max_steps is None or total_steps < max_steps)
        ):
            steps_per_epoch = total_steps // epochs
        return cls(
            steps_per_epoch=steps_per_epoch,
            epochs=epochs,
            max_steps=max_steps,
            total_steps=total_steps,
            save_every_n_epochs=num("save_every_n_epochs"),
            save_every_n_steps=num("save_every_n_steps"),
            checkpoint_every_n_minutes=num("checkpoint_every_n_minutes"),
            checkpoint_every_n_epochs=num("checkpoint_every_n_epochs"),
        )


@dataclass(frozen=True, slots=True)
class ProgressSnapshot:
    """Everything a progress panel shows; None where unknown."""

    phase: str | None
    step: int | None
    epoch: int | None
    epochs: int | None
    steps_per_epoch: int | None
    total_steps: int | None
    fraction: float | None
    steps_per_sec: float | None
    sec_per_step: float | None
    eta_sec: float | None
    loss: float | None
    loss_ema: float | None
    next_save_step: int | None
    next_save_in_sec: float | None
    next_checkpoint_in_sec: float | None
    last_checkpoint_step: int | None
    last_checkpoint_age_sec: float | None
    last_save: str | None
    completed: bool
    warnings: tuple[str, ...] = field(default=())
    measuring: bool = False
    """Too little wall-clock history for a rate yet: rate and ETA are None, front ends say so."""
    samples_per_sec: float | None = None
    """Training samples per wall-clock second (the rate times the samples of a step)."""


class ProgressModel:
    """Folds events into progress state; :meth:`snapshot` gives the typed view.

    Args:
        plan: what is known up front (may be empty; steps/epoch is learned from the log then).
        clock: current time (injected).
        alpha: EMA weight of a new sample.
    """

    def __init__(
        self, plan: ProgressPlan | None = None, clock: Callable[[], float] = time.time, alpha: float = 0.1
    ) -> None:
        self.plan = plan or ProgressPlan()
        self._clock = clock
        self._alpha = alpha
        self._spe = self.plan.steps_per_epoch
        self.step: int | None = None
        self.epoch: int | None = None
        self.phase: str | None = None
        self._window: deque[tuple[float, int]] = deque(maxlen=WINDOW_STEPS + 1)
        self._samples_per_step: float | None = None
        self.loss: float | None = None
        self.loss_ema: float | None = None
        self._epoch_start: dict[int, int] = {}
        self._ckpt_step: int | None = None
        self._ckpt_t: float | None = None
        self._train_start_t: float | None = None
        self._last_save: str | None = None
        self.completed = False
        self.checkpoint_time_estimated = False
        """True while the last checkpoint's time is the resume time, not its save time."""

    def feed(self, events: Iterable[Event]) -> None:
        """Fold events in order."""
        for event in events:
            handler = getattr(self, f"_on_{event.kind.value}", None)
            if handler is not None:
                handler(event)

    def _on_phase(self, event: Event) -> None:
        self.phase = str(event.get("phase"))

    def _on_step(self, event: Event) -> None:
        step = int(event.data["step"])
        if self._train_start_t is None:
            self._train_start_t = event.t
        if self.epoch is None:
            self.epoch = 1 if self._spe is None else 1 + (step - 1) // self._spe
            self._epoch_start.setdefault(self.epoch, step)
        self.step = step
        loss = event.get("loss")
        if isinstance(loss, float | int) and math.isfinite(loss):
            self.loss = float(loss)
            self.loss_ema = self.loss if self.loss_ema is None else self._ema(self.loss_ema, self.loss)
        if self._window and (step <= self._window[-1][1] or event.t < self._window[-1][0]):
            self._window.clear()  # a new timeline (resume, replay): measure it afresh
        self._window.append((event.t, step))
        while len(self._window) > 2 and self._window[-1][0] - self._window[0][0] > WINDOW_S:
            self._window.popleft()
        iter_time, samples = event.get("iter_time"), event.get("samples_per_sec")
        if isinstance(iter_time, float | int) and isinstance(samples, float | int) and iter_time > 0:
            self._samples_per_step = float(iter_time) * float(samples)  # the global batch, in samples

    def _ema(self, old: float, new: float) -> float:
        return old + self._alpha * (new - old)

    def rate(self) -> float | None:
        """Steps per wall-clock second over the recent window (None while still measuring)."""
        if len(self._window) < MIN_INTERVALS + 1:
            return None
        (t0, s0), (t1, s1) = self._window[0], self._window[-1]
        if t1 - t0 < MIN_SPAN_S or s1 <= s0:
            return None
        return (s1 - s0) / (t1 - t0)

    def _on_epoch(self, event: Event) -> None:
        epoch = int(event.data["epoch"])
        step = event.get("step")
        self.epoch = epoch
        if isinstance(step, int):
            self._epoch_start[epoch] = step + 1
            if self._spe is None:
                if epoch == 2:
                    self._spe = step
                elif epoch - 1 in self._epoch_start:
                    self._spe = step + 1 - self._epoch_start[epoch - 1]

    def _on_resume(self, event: Event) -> None:
        self.epoch = int(event.data["epoch"])
        self.step = int(event.data["step"]) - 1
        self._train_start_t = event.t
        self._window.clear()  # the gap before a resume is not training time
        if self._ckpt_step == self.step and self._ckpt_t is not None:
            return  # the checkpoint event of an earlier attempt was replayed: its time is the save time
        # Only the resume time is known here; :meth:`note_checkpoint_time` may correct it later
        # (e.g. from the global_stepN folder's mtime) so the age is not reset by the resume.
        self._ckpt_step = self.step
        self._ckpt_t = event.t
        self.checkpoint_time_estimated = True

    def _on_checkpoint(self, event: Event) -> None:
        step = event.get("step")
        self._ckpt_step = int(step) if step is not None else self.step
        self._ckpt_t = event.t
        self.checkpoint_time_estimated = False

    def note_checkpoint_time(self, step: int, t: float) -> None:
        """Set when checkpoint ``step`` was saved, if it is the last one and its time was only estimated.

        After a resume the model knows the checkpoint's step but not when it was written; callers that
        can stat the checkpoint folder pass its mtime here so "last checkpoint age" stays honest.
        """
        if self._ckpt_step == step and self.checkpoint_time_estimated:
            self._ckpt_t = t
            self.checkpoint_time_estimated = False

    @property
    def last_checkpoint_step(self) -> int | None:
        """Step of the last checkpoint seen (or resumed from)."""
        return self._ckpt_step

    def set_plan(self, plan: ProgressPlan) -> None:
        """Replace the plan (e.g. a resume re-froze the profile); a planned steps/epoch wins."""
        self.plan = plan
        if plan.steps_per_epoch:
            self._spe = plan.steps_per_epoch

    def _on_save(self, event: Event) -> None:
        self._last_save = str(event.get("dir"))

    def _on_complete(self, event: Event) -> None:
        self.completed = True

    @property
    def steps_per_epoch(self) -> int | None:
        """Steps per epoch: from the plan, else learned from the epoch lines."""
        return self._spe

    def total_steps(self) -> int | None:
        """epochs x steps/epoch, capped by max_steps (or the plan's explicit total)."""
        plan = self.plan
        total = plan.total_steps
        if total is None and plan.epochs and self._spe:
            total = plan.epochs * self._spe
        if plan.max_steps:
            total = min(total, plan.max_steps) if total else plan.max_steps
        return total

    def snapshot(self) -> ProgressSnapshot:
        """The current view, computed at ``clock()``."""
        now = self._clock()
        plan, step, spe = self.plan, self.step, self._spe
        total = self.total_steps()
        sps = self.rate()
        spi = 1.0 / sps if sps else None
        remaining = total - step if total is not None and step is not None else None
        eta = max(remaining, 0) * spi if remaining is not None and spi else None
        measuring = sps is None and step is not None and not self.completed
        next_save = self._next_save_step()
        warnings: list[str] = []
        if step and self._ckpt_step is None and not self.completed:
            warnings.append("no checkpoint yet: a crash now loses everything (resume needs global_stepN)")
        return ProgressSnapshot(
            phase=self.phase,
            step=step,
            epoch=self.epoch,
            epochs=plan.epochs,
            steps_per_epoch=spe,
            total_steps=total,
            fraction=min(step / total, 1.0) if total and step is not None else None,
            steps_per_sec=sps,
            sec_per_step=spi,
            eta_sec=eta,
            loss=self.loss,
            loss_ema=self.loss_ema,
            next_save_step=next_save,
            next_save_in_sec=self._in_sec(next_save),
            next_checkpoint_in_sec=self._next_checkpoint_in(now),
            last_checkpoint_step=self._ckpt_step,
            last_checkpoint_age_sec=now - self._ckpt_t if self._ckpt_t is not None else None,
            last_save=self._last_save,
            completed=self.completed,
            warnings=tuple(warnings),
            measuring=measuring,
            samples_per_sec=sps * self._samples_per_step if sps and self._samples_per_step else None,
        )

    def _in_sec(self, target: int | None) -> float | None:
        sps = self.rate()
        if target is None or self.step is None or not sps:
            return None
        return max(target - self.step, 0) / sps

    def _next_epoch_boundary(self, every: int) -> int | None:
        if self._spe is None or self.step is None:
            return None
        epoch = self.epoch or 1
        target = math.ceil(epoch / every) * every
        return target * self._spe

    def _next_save_step(self) -> int | None:
        plan, step = self.plan, self.step
        candidates: list[int] = []
        if plan.save_every_n_steps and step is not None:
            candidates.append((step // plan.save_every_n_steps + 1) * plan.save_every_n_steps)
        if plan.save_every_n_epochs:
            boundary = self._next_epoch_boundary(plan.save_every_n_epochs)
            if boundary is not None:
                candidates.append(boundary)
        return min(candidates) if candidates else None

    def _next_checkpoint_in(self, now: float) -> float | None:
        plan = self.plan
        options: list[float] = []
        if plan.checkpoint_every_n_minutes:
            since = self._ckpt_t if self._ckpt_t is not None else self._train_start_t
            if since is not None:
                options.append(max(since + plan.checkpoint_every_n_minutes * 60 - now, 0.0))
        if plan.checkpoint_every_n_epochs:
            seconds = self._in_sec(self._next_epoch_boundary(plan.checkpoint_every_n_epochs))
            if seconds is not None:
                options.append(seconds)
        return min(options) if options else None
