"""The GPU panel: one line per GPU (utilisation, memory, temperature, power, owning run, history).

Why a plain widget that renders a few lines: a box has one to eight GPUs, sampled every two seconds,
so the whole panel is a handful of short lines; it is fed :class:`GpuSampled` reports by a thread
worker (it never calls NVML itself) and keeps a short utilisation history per GPU for a sparkline.
Without an NVIDIA driver it says so and shows the host's CPU and RAM instead.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from rich.text import Text
from textual.widget import Widget

if TYPE_CHECKING:
    from rich.console import RenderableType

    from dpipe_tui.services.gpus import GpuReport

SPARK = "▁▂▃▄▅▆▇█"
SPARK_ASCII = "_.-=+*#@"
HISTORY = 24


def sparkline(values: list[float], *, ascii_only: bool = False) -> str:
    """Percentages (0-100) as a one-line bar chart."""
    ramp = SPARK_ASCII if ascii_only else SPARK
    top = len(ramp) - 1
    return "".join(ramp[max(0, min(top, round(v / 100 * top)))] for v in values)


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.1f}"


class GpuPanel(Widget):
    """GPUs (or the host without a driver) from the latest report."""

    DEFAULT_CSS = """
    GpuPanel { height: auto; max-height: 10; padding: 0 1; }
    """

    def __init__(self, *, ascii_only: bool = False, **kw: object) -> None:
        """``ascii_only``: no block characters (terminals without Unicode)."""
        super().__init__(**kw)  # type: ignore[arg-type]  # Widget's name/id/classes keywords
        self.ascii_only = ascii_only
        self.report: GpuReport | None = None
        self.owners: dict[int, str] = {}
        self._history: dict[int, deque[float]] = {}
        self._lines: tuple[int, bool, bool] = (0, False, False)

    def show(self, report: GpuReport, owners: dict[int, str]) -> None:
        """A new sample; ``owners`` maps GPU index to the live run using it."""
        lines = (len(report.gpus), report.available, report.host is not None)
        relayout = self.report is None or lines != self._lines
        self._lines = lines
        self.report = report
        self.owners = owners
        for gpu in report.gpus:
            if gpu.utilization is not None:
                self._history.setdefault(gpu.index, deque(maxlen=HISTORY)).append(gpu.utilization)
        self.refresh(layout=relayout)  # the height changes only with the number of lines

    def render(self) -> RenderableType:
        """The panel's lines."""
        report = self.report
        if report is None:
            return Text("GPUs: sampling…", style="dim")
        width = max(20, self.size.width - 2)
        text = Text()
        if not report.available or not report.gpus:
            text.append("No NVIDIA GPU", style="bold")
            text.append(f"  ({report.reason or 'no driver'}); training runs on CPU slots\n", style="dim")
        for gpu in report.gpus:
            text.append_text(self._gpu_line(gpu.index, width))
            text.append("\n")
        host = report.host
        if host is not None:
            ram = f"RAM {_gib(host.ram_used)}/{_gib(host.ram_total)} GiB"
            cpu = "-" if host.cpu_percent is None else f"{host.cpu_percent:.0f}%"
            text.append(f"host  CPU {cpu}  {ram}", style="dim")
        return text

    def _gpu_line(self, index: int, width: int) -> Text:
        assert self.report is not None
        gpu = next(g for g in self.report.gpus if g.index == index)
        util = "-" if gpu.utilization is None else f"{gpu.utilization:3.0f}%"
        mem = f"{_gib(gpu.memory_used)}/{_gib(gpu.memory_total)}G"
        temp = "-" if gpu.temperature is None else f"{gpu.temperature:.0f}°C"
        power = "-" if gpu.power_draw is None else f"{gpu.power_draw:.0f}W"
        owner = self.owners.get(index, "free")
        line = Text(f"GPU{index} ", style="bold")
        line.append(f"{util:>4} {mem:>11} {temp:>5} {power:>5} ")
        history = list(self._history.get(index, ()))
        spark_width = min(HISTORY, max(0, width - 40 - len(owner)))
        if spark_width >= 6 and history:
            line.append(sparkline(history[-spark_width:], ascii_only=self.ascii_only) + " ", style="green")
        line.append(owner, style="dim" if owner == "free" else "bold")
        line.truncate(width, overflow="ellipsis")
        return line
