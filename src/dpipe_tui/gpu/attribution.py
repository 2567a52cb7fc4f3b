"""Which run uses which GPU memory, and the peak VRAM of each run.

Why two methods: NVML reports process ids in the host's pid namespace, so inside a container
(RunPod-style, the common case) they never match the pids we launched. Matching a run's process tree
against NVML's pids is exact when it works; otherwise the run is charged with whatever its assigned
GPUs use (exact when runs have disjoint GPUs, which the supervisor enforces). Each result says which
method produced it so the UI can label it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from dpipe_tui.gpu.probe import GpuReport


@dataclass(frozen=True, slots=True)
class RunGpuUsage:
    """GPU usage charged to one run.

    Attributes:
        method: ``pid`` (NVML pids matched the run's process tree), ``gpu_set`` (the run's assigned
            GPUs, whole-GPU figures) or ``none`` (nothing known).
    """

    run_id: str
    method: str
    gpus: tuple[int, ...]
    memory_used: float | None
    utilization: float | None
    pids: tuple[int, ...] = ()


def process_tree(root_pid: int) -> set[int]:
    """``root_pid`` and all its descendants (empty when it is gone)."""
    try:
        root = psutil.Process(root_pid)
        return {root_pid, *(child.pid for child in root.children(recursive=True))}
    except (psutil.Error, OSError):
        return set()


def attribute(
    report: GpuReport,
    runs: Sequence[tuple[str, Sequence[int], int | None]],
    *,
    tree: Callable[[int], set[int]] = process_tree,
) -> Mapping[str, RunGpuUsage]:
    """Charge GPU usage to runs.

    Args:
        report: one GPU sample.
        runs: ``(run_id, gpu indices, root pid)`` per running run.
        tree: pid -> pids of its process tree (injected for tests).

    Returns:
        A :class:`RunGpuUsage` per run id.
    """
    by_index = {g.index: g for g in report.gpus}
    out: dict[str, RunGpuUsage] = {}
    for run_id, gpus, root in runs:
        pids = tree(root) if root is not None else set()
        matched_gpus: list[int] = []
        matched_pids: list[int] = []
        memory = 0.0
        for gpu in report.gpus:
            for proc in gpu.processes:
                if proc.pid in pids:
                    matched_pids.append(proc.pid)
                    if gpu.index not in matched_gpus:
                        matched_gpus.append(gpu.index)
                    memory += proc.used_memory or 0.0
        if matched_pids:
            utils = [by_index[i].utilization for i in matched_gpus if by_index[i].utilization is not None]
            out[run_id] = RunGpuUsage(
                run_id, "pid", tuple(matched_gpus), memory, _mean(utils), tuple(sorted(set(matched_pids)))
            )
            continue
        assigned = [by_index[i] for i in gpus if i in by_index]
        if not assigned:
            out[run_id] = RunGpuUsage(run_id, "none", tuple(gpus), None, None)
            continue
        mems = [g.memory_used for g in assigned if g.memory_used is not None]
        utils = [g.utilization for g in assigned if g.utilization is not None]
        out[run_id] = RunGpuUsage(
            run_id, "gpu_set", tuple(g.index for g in assigned), sum(mems) if mems else None, _mean(utils)
        )
    return out


def _mean(values: Sequence[float | None]) -> float | None:
    nums = [v for v in values if v is not None]
    return sum(nums) / len(nums) if nums else None


class PeakVram:
    """Per-run peak VRAM, fed with attribution results (pure)."""

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}

    def feed(self, usage: Mapping[str, RunGpuUsage]) -> None:
        """Fold one sample in."""
        for run_id, item in usage.items():
            if item.memory_used is not None and item.memory_used > self.peaks.get(run_id, -1.0):
                self.peaks[run_id] = item.memory_used

    def peak(self, run_id: str) -> float | None:
        """The highest memory seen for ``run_id`` (bytes), or None."""
        return self.peaks.get(run_id)
