"""A run's progress in two lines: a bar with step/total and epoch, then rate, ETA, saves and checkpoints.

All text comes from :mod:`dpipe_tui.present` (the CLI prints the same words); this widget only lays it
out and colours the one warning that matters most: no checkpoint yet, or an old one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

from dpipe_tui import present

if TYPE_CHECKING:
    from rich.console import RenderableType

    from dpipe_tui.services.cockpit import RunRecord
    from dpipe_tui.services.watch import WatchUpdate


def bar(fraction: float | None, width: int, *, ascii_only: bool = False) -> str:
    """A progress bar of ``width`` cells."""
    full, empty = ("#", "-") if ascii_only else ("█", "░")
    if fraction is None or width < 1:
        return empty * max(0, width)
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return full * filled + empty * (width - filled)


class ProgressPanel(Widget):
    """Progress of the run shown by the run view."""

    DEFAULT_CSS = """
    ProgressPanel { height: 2; padding: 0 1; }
    """

    def __init__(self, *, ascii_only: bool = False, **kw: object) -> None:
        """``ascii_only``: a ``#``/``-`` bar instead of blocks."""
        super().__init__(**kw)  # type: ignore[arg-type]  # Widget's name/id/classes keywords
        self.ascii_only = ascii_only
        self.update_: WatchUpdate | None = None

    def show(self, update: WatchUpdate) -> None:
        """Show a new poll's progress."""
        self.update_ = update
        self.refresh()

    def render(self) -> RenderableType:
        """Two lines (one when nothing is known yet)."""
        update = self.update_
        if update is None:
            return Text("reading the run…", style="dim")
        r, p = update.record, update.progress
        live = r.state.is_live
        step = p.step if p.step is not None else r.last_step
        total = p.total_steps or r.total_steps
        fraction = p.fraction if p.fraction is not None else (step / total if step and total else None)
        epoch = present.epoch_text(p.epoch if p.epoch is not None else r.last_epoch, p.epochs)
        numbers = f" {present.step_text(step, total)}  epoch {epoch}"
        width = max(4, self.size.width - 2 - len(numbers))
        first = Text(
            bar(fraction, min(width, 60), ascii_only=self.ascii_only), style="cyan" if live else "dim"
        )
        first.append(numbers)
        second = Text()
        if live:
            second.append(f"{present.rate_text(p)}  ETA {present.eta_text(p)}")
            if p.next_save_step is not None:
                second.append(f"  save @{p.next_save_step} in {present.duration(p.next_save_in_sec)}")
            if p.next_checkpoint_in_sec is not None:
                second.append(f"  ckpt in {present.duration(p.next_checkpoint_in_sec)}")
        else:
            second.append(_ended_text(r) + " ", style="dim")
        if p.last_checkpoint_age_sec is not None:
            second.append(f"  last ckpt {present.duration(p.last_checkpoint_age_sec)} ago")
        elif live and p.step:
            second.append("  no checkpoint yet", style="bold yellow")
        second.truncate(max(1, self.size.width - 2), overflow="ellipsis")
        return Text("\n").join([first, second])


def _ended_text(r: RunRecord) -> str:
    took = r.ended_at - r.started_at if r.ended_at and r.started_at else None
    return f"{r.state.value} after {present.duration(took)}" + (
        f"  exit {r.exit_code}" if r.exit_code not in (None, 0) else ""
    )
