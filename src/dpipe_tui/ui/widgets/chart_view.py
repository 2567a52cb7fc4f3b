"""A chart drawn by the cockpit (braille or ASCII layers on shared axes), coloured and labelled here.

Why the layers are merged here: the cockpit draws each series as plain text of the same size
(:class:`dpipe_tui.services.watch.Chart`); this widget overlays them cell by cell — braille dots of
all layers OR-ed together, the cell coloured by the topmost layer that has dots in it — and adds the
y-axis labels and a legend. It does no I/O and never walks a series: redraws cost the chart's size.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType

    from dpipe_tui.services.watch import Chart

BLANK = 0x2800
STYLES = {"loss": "bright_black", "loss_smooth": "cyan", "lr": "yellow", "epoch_loss": "magenta"}
EVAL_STYLE = "green"
LABEL_WIDTH = 8


def _label(value: float) -> str:
    text = f"{value:.3g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.1e}"
    return text.rjust(LABEL_WIDTH - 1)[: LABEL_WIDTH - 1] + " "


def merge(chart: Chart, *, ascii_only: bool) -> list[Text]:
    """The chart's lines with layers overlaid, later layers on top."""
    if not chart.layers:
        return []
    height = len(chart.layers[0].lines)
    out: list[Text] = []
    for row in range(height):
        line = Text()
        width = len(chart.layers[0].lines[row])
        for col in range(width):
            style = ""
            if ascii_only:
                char = " "
                for layer in chart.layers:
                    c = layer.lines[row][col]
                    if c != " ":
                        char, style = c, _style(layer.name)
            else:
                bits = 0
                for layer in chart.layers:
                    b = ord(layer.lines[row][col]) - BLANK
                    if b:
                        bits |= b
                        style = _style(layer.name)
                char = chr(BLANK + bits)
            line.append(char, style=style)
        out.append(line)
    return out


def _style(name: str) -> str:
    return EVAL_STYLE if name.startswith("eval:") else STYLES.get(name, "white")


class ChartView(Widget):
    """One chart with a title, y labels (top, bottom) and a legend."""

    DEFAULT_CSS = """
    ChartView { height: 1fr; min-height: 4; }
    """

    def __init__(self, title: str, *, ascii_only: bool = False, **kw: object) -> None:
        """A chart titled ``title``."""
        super().__init__(**kw)  # type: ignore[arg-type]  # Widget's name/id/classes keywords
        self.title = title
        self.ascii_only = ascii_only
        self.chart: Chart | None = None
        self.note = ""
        self.plot_size = (60, 6)
        """(width, height) in characters left for the plot (labels and title taken off); the
        poller reads it from its thread, so it is a plain attribute updated on resize."""

    def on_resize(self) -> None:
        """Keep :attr:`plot_size` in step with the widget's size."""
        self.plot_size = (max(1, self.size.width - LABEL_WIDTH), max(1, self.size.height - 1))

    def show(self, chart: Chart, note: str = "") -> None:
        """Draw ``chart``; ``note`` goes after the title (e.g. "last 500 steps")."""
        self.chart = chart
        self.note = note
        self.refresh()

    def render(self) -> RenderableType:
        """Title and legend, then the plot with y labels."""
        head = Text(self.title, style="bold")
        if self.note:
            head.append(f" ({self.note})", style="dim")
        chart = self.chart
        if chart is None or not chart.layers or chart.y_range is None:
            head.append("\n  no data yet", style="dim")
            return head
        for layer in chart.layers:
            head.append("  ")
            head.append("■" if not self.ascii_only else "#", style=_style(layer.name))
            head.append(f" {layer.name.replace('_', ' ')}", style="dim")
        if chart.x_range is not None:
            head.append(f"  steps {chart.x_range[0]:.0f}–{chart.x_range[1]:.0f}", style="dim")
        head.truncate(self.size.width, overflow="ellipsis")
        lines = merge(chart, ascii_only=self.ascii_only)[: max(1, self.size.height - 1)]
        low, high = chart.y_range
        body = Text("\n").join(
            Text(
                _label(high) if i == 0 else (_label(low) if i == len(lines) - 1 else " " * LABEL_WIDTH), "dim"
            )
            + line
            for i, line in enumerate(lines)
        )
        return Text("\n").join([head, body])
