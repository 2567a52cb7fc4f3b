"""Use case: sample GPUs and the host for ``dpipe-tui gpus`` and the TUI's GPU panel.

Why a service: the CLI and the TUI must render the same report; this is the one place that picks the
probe and turns a :class:`GpuReport` into plain data (JSON for ``--json``, rows for tables).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from dpipe_tui.gpu.probe import GpuProbe, GpuReport, GpuSnapshot, default_probe

__all__ = [
    "GpuProbe",
    "GpuReport",
    "GpuSnapshot",
    "default_probe",
    "host_line",
    "report_rows",
    "report_to_dict",
    "sample",
]


def sample(probe: GpuProbe | None = None) -> GpuReport:
    """One GPU + host report (the NVML probe unless one is given)."""
    return (probe or default_probe()).sample()


def report_to_dict(report: GpuReport) -> dict[str, Any]:
    """The report as JSON-ready nested dicts."""
    return dataclasses.asdict(report)


def _gib(value: float | None) -> str:
    return "-" if value is None else f"{value / 2**30:.1f}"


def _num(value: float | None, fmt: str = "{:.0f}") -> str:
    return "-" if value is None else fmt.format(value)


def _procs(gpu: GpuSnapshot) -> str:
    """``pid:GiB`` per process, e.g. ``4242:10.2,4243:0.8`` (``pid:-`` where NVML cannot tell)."""
    return ",".join(f"{p.pid}:{_gib(p.used_memory)}" for p in gpu.processes) or "-"


def report_rows(report: GpuReport) -> list[list[str]]:
    """Table rows: index, name, util %, memory used/total GiB, temp °C, power W, SM/memory clocks
    MHz, throttle reasons, processes with their memory (``pid:GiB``)."""
    rows = [["GPU", "name", "util%", "mem GiB", "temp", "power W", "clk MHz", "throttle", "pid:GiB"]]
    for gpu in report.gpus:
        rows.append(
            [
                str(gpu.index),
                gpu.name or "-",
                _num(gpu.utilization),
                f"{_gib(gpu.memory_used)}/{_gib(gpu.memory_total)}",
                _num(gpu.temperature),
                f"{_num(gpu.power_draw)}/{_num(gpu.power_limit)}",
                f"{_num(gpu.clock_sm)}/{_num(gpu.clock_mem)}",
                ",".join(gpu.throttle_reasons) or "-",
                _procs(gpu),
            ]
        )
    return rows


def host_line(report: GpuReport) -> str:
    """One line: CPU % and RAM used/total."""
    host = report.host
    if host is None:
        return "host: unknown"
    return f"host: CPU {_num(host.cpu_percent)}%  RAM {_gib(host.ram_used)}/{_gib(host.ram_total)} GiB"
