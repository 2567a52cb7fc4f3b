"""Following one run: :class:`RunWatch`, the one incremental object behind every live view.

Why one object: ``dpipe-tui run`` in the foreground, ``dpipe-tui logs -f`` and the TUI's run view all
show the same run as it moves (state, progress, charts, new console lines). If each kept its own
offsets and folds they would drift and each would be tempted to re-read files from the start. A watch
keeps byte offsets into ``metrics.jsonl`` and ``console.log`` and never reads a byte twice: the first
poll folds the history (sparsely unless the chart series are wanted, see
:meth:`dpipe_tui.telemetry.store.MetricsTail.catch_up`), every later poll reads only what was
appended. The record comes from the registry, reconciled with the OS, so a dead run is never shown
running. Nothing here writes or starts anything.
"""

from __future__ import annotations

import math
import time
from bisect import bisect_left
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpipe_tui.services.progress import ProgressTracker
from dpipe_tui.supervisor.follow import LineTail, RunFollower, last_lines
from dpipe_tui.telemetry.chart import ascii_chart, braille_chart
from dpipe_tui.telemetry.downsample import BlockMinMax, minmax
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS, ProgressSnapshot
from dpipe_tui.telemetry.store import MetricSeries, MetricsTail, Series

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.runs.registry import Registry

__all__ = ["Chart", "ChartLayer", "Event", "ProgressSnapshot", "RunWatch", "WatchUpdate"]


EMA_ALPHA = 0.05
"""Weight of a new loss in the smoothed curve (about the last 40 steps count)."""


@dataclass(frozen=True, slots=True)
class ChartLayer:
    """One series of a chart, drawn: ``lines`` of equal width (braille or ASCII), top row first."""

    name: str
    lines: list[str]


@dataclass(frozen=True, slots=True)
class Chart:
    """Series drawn on shared axes; a front end overlays the layers (later layers on top)."""

    layers: list[ChartLayer]
    x_range: tuple[float, float] | None
    y_range: tuple[float, float] | None
    """None when there is nothing to draw yet."""


@dataclass(frozen=True, slots=True)
class WatchUpdate:
    """What one poll of a :class:`RunWatch` saw."""

    record: RunRecord
    """The run as the registry and the OS say it is now."""
    progress: ProgressSnapshot
    """Epoch/step, rate, ETA, next save/checkpoint, folded from every event so far."""
    events: tuple[Event, ...]
    """Events new since the previous poll (the first poll: the history it folded)."""
    lines: tuple[str, ...]
    """Console lines new since the previous poll (the first poll: the requested tail)."""

    @property
    def ended(self) -> bool:
        """True once the run's current attempt has ended (completed, failed, stopped, lost)."""
        return self.record.state.is_terminal


class RunWatch:
    """Incremental view of one run.

    Args:
        registry: the registry the run lives in.
        run_id: the run (a full id).
        console: also follow ``console.log``.
        tail_lines: with ``console``, how many of the existing last lines the first poll returns
            (the rest of the existing log is skipped, never read).
        series: keep the loss/lr/eval series for charts (the first poll then reads every event of
            the history; without series it reads only what progress needs).
        clock: current unix time (the progress model's clock; injected in tests).
    """

    def __init__(
        self,
        registry: Registry,
        run_id: str,
        *,
        console: bool = False,
        tail_lines: int = 0,
        series: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Attach to ``run_id``; nothing is read until the first :meth:`poll`."""
        self.run_id = run_id
        self._follower = RunFollower(registry, run_id)
        self._metrics = MetricsTail(registry.metrics(run_id))
        self._console_path = registry.console_log(run_id) if console else None
        self._console: LineTail | None = None
        self._tail_lines = tail_lines
        self.series: MetricSeries | None = MetricSeries() if series else None
        self._blocks: dict[str, BlockMinMax] = {}
        self.loss_smooth = Series()
        """The loss as an exponential moving average (the smoothed curve of the run view)."""
        self._ema: float | None = None
        self._tracker = ProgressTracker(self._follower.record, clock=clock)
        self._started = False

    @property
    def record(self) -> RunRecord:
        """The record as of the last poll."""
        return self._follower.record

    @property
    def console_offset(self) -> int | None:
        """Byte offset in ``console.log`` of the next line to read (None before the first poll)."""
        return self._console.offset if self._console is not None else None

    def poll(self) -> WatchUpdate:
        """Read what changed since the last poll."""
        record = self._follower.poll_record()
        if not self._started:
            self._started = True
            events = self._history()
            lines = self._open_console()
        else:
            events = self._metrics.read_new()
            lines = self._console.read() if self._console is not None else []
        if self.series is not None:
            self.series.add(events)
            self._smooth(events)
        progress = self._tracker.update(record, events)
        return WatchUpdate(record, progress, tuple(events), tuple(lines))

    def _smooth(self, events: list[Event]) -> None:
        for event in events:
            if event.kind is not EventKind.STEP:
                continue
            loss = event.get("loss")
            if not isinstance(loss, int | float) or not math.isfinite(loss):
                continue
            step = float(event.data["step"])
            if self.loss_smooth.x and step <= self.loss_smooth.x[-1]:
                self._ema = None  # a resume went back: smooth the new timeline afresh
            self._ema = float(loss) if self._ema is None else self._ema + EMA_ALPHA * (loss - self._ema)
            self.loss_smooth.append(step, self._ema)

    def _history(self) -> list[Event]:
        if self.series is not None:
            return self._metrics.read_new()
        return self._metrics.catch_up(FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS)

    def _open_console(self) -> list[str]:
        if self._console_path is None:
            return []
        lines, offset = last_lines(self._console_path, self._tail_lines)
        self._console = LineTail(self._console_path, offset)
        return lines

    def chart(
        self, name: str, points: int, *, last_steps: int | None = None
    ) -> tuple[list[float], list[float]]:
        """A series reduced to about ``points`` points for drawing (min/max per bucket).

        Args:
            name: ``loss``, ``lr``, ``epoch_loss``, or ``eval:<name>`` (an eval dataset's loss).
            points: the chart's width in data points (e.g. 2 per braille cell column).
            last_steps: only the last N steps (the whole run when None).
        """
        series = self._series(name)
        if series is None or not len(series):
            return [], []
        xs, ys = series.x, series.y
        start = bisect_left(xs, xs[-1] - last_steps) if last_steps is not None else 0
        if len(xs) - start <= 8 * points:
            return minmax(xs[start:], ys[start:], points)
        blocks = self._blocks.setdefault(name, BlockMinMax())  # a redraw never walks the whole series
        return blocks.reduce(xs, ys, points, start=start)

    def _series(self, name: str) -> Series | None:
        found = self.series
        if found is None:
            return None
        if name.startswith("eval:"):
            return found.evals.get(name[5:])
        named = {"loss": found.loss, "loss_smooth": self.loss_smooth, "lr": found.lr}
        return named.get(name, found.epoch_loss if name == "epoch_loss" else None)

    def _x_ends(self, name: str, last_steps: int | None) -> tuple[float, float]:
        series = self._series(name)
        assert series is not None
        assert len(series)
        last = series.x[-1]
        first = series.x[0] if last_steps is None else max(series.x[0], last - last_steps)
        return first, last

    def eval_names(self) -> list[str]:
        """The eval datasets seen so far (``eval:<name>`` charts)."""
        return sorted(self.series.evals) if self.series is not None else []

    def draw(
        self,
        names: list[str],
        width: int,
        height: int,
        *,
        last_steps: int | None = None,
        ascii_only: bool = False,
    ) -> Chart:
        """Draw series on shared axes, ``width`` x ``height`` characters each layer.

        A 1M-point series is reduced to a few points per column first (min/max per bucket), so a
        redraw costs the chart's size, not the run's length.
        """
        data = [(n, *self.chart(n, max(2, width * 2), last_steps=last_steps)) for n in names]
        data = [(n, xs, ys) for n, xs, ys in data if xs]
        finite = [y for _, _, ys in data for y in ys if math.isfinite(y)]
        if not data or not finite or width < 1 or height < 1:
            return Chart([], None, None)
        y_range = (min(finite), max(finite))
        ends = [self._x_ends(n, last_steps) for n, _, _ in data]
        x_range = (min(e[0] for e in ends), max(e[1] for e in ends))
        layers = []
        for n, xs, ys in data:
            if ascii_only:
                mark = _MARKS.get(n, "o")
                lines = ascii_chart(xs, ys, width, height, y_range=y_range, x_range=x_range, mark=mark)
            else:
                lines = braille_chart(xs, ys, width, height, y_range=y_range, x_range=x_range)
            layers.append(ChartLayer(n, lines))
        return Chart(layers, x_range, y_range)


_MARKS = {"loss": ".", "loss_smooth": "*", "lr": "*"}
