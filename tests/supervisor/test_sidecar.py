"""The monitor's sidecar: TensorBoard scalars from real tensorboardX files, peak VRAM from GPU samples."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dpipe_tui.gpu.probe import FakeProbe, GpuProcess, GpuReport, GpuSnapshot
from dpipe_tui.supervisor.sidecar import Sidecar
from dpipe_tui.telemetry.events import EventKind

if TYPE_CHECKING:
    from pathlib import Path

tensorboardX = pytest.importorskip("tensorboardX")


def _write(folder: Path, steps: range, tag: str = "train/loss") -> None:
    writer = tensorboardX.SummaryWriter(str(folder))
    for step in steps:
        writer.add_scalar(tag, 1.0 / step, step)
    writer.close()


def _report(used: float, pid: int) -> GpuReport:
    return GpuReport(True, None, (GpuSnapshot(0, memory_used=used, processes=(GpuProcess(pid, used),)),))


def test_scalars_are_read_once_and_on_the_interval(tmp_path: Path) -> None:
    sidecar = Sidecar("r1", (0,), cpu=True, tb_interval=10.0)
    assert sidecar.poll(None, None, now=0.0) == []  # no run folder yet
    _write(tmp_path, range(1, 4))
    first = sidecar.poll(str(tmp_path), None, now=1.0)
    assert [(e.kind, e.get("tag"), e.get("step")) for e in first] == [
        (EventKind.SCALAR, "train/loss", s) for s in (1, 2, 3)
    ]
    _write(tmp_path, range(4, 6))  # a second launch adds a second event file
    assert sidecar.poll(str(tmp_path), None, now=2.0) == []  # not due yet
    assert [e.get("step") for e in sidecar.poll(str(tmp_path), None, now=12.0)] == [4, 5]
    assert sidecar.poll(str(tmp_path), None, now=13.0, final=True) == []


def test_a_resumed_attempt_skips_what_earlier_attempts_merged(tmp_path: Path) -> None:
    _write(tmp_path, range(1, 4))
    sidecar = Sidecar("r1", (0,), cpu=True, run_folder=str(tmp_path))
    _write(tmp_path, range(4, 6))
    assert [e.get("step") for e in sidecar.poll(str(tmp_path), None, now=0.0)] == [4, 5]


def test_peak_vram_follows_the_highest_sample_of_the_run(tmp_path: Path) -> None:
    probe = FakeProbe([_report(5e9, 100), _report(9e9, 100), _report(2e9, 100)])
    sidecar = Sidecar("r1", (0,), cpu=False, probe=probe, gpu_interval=1.0, peak_vram=1e9)
    assert sidecar.peak_vram == 1e9  # the floor from earlier attempts
    for now in (0.0, 0.5, 1.0, 2.0):  # 0.5 is not due: three samples in all
        sidecar.poll(None, 100, now=now)
    assert sidecar.peak_vram == 9e9


def test_cpu_runs_are_never_sampled_and_probe_errors_never_escape(tmp_path: Path) -> None:
    class Broken:
        calls = 0

        def sample(self) -> GpuReport:
            Broken.calls += 1
            raise RuntimeError("NVML went away")

    assert Sidecar("r1", (0,), cpu=True, probe=Broken()).poll(None, 1, now=0.0) == []
    assert Broken.calls == 0
    sidecar = Sidecar("r1", (0,), cpu=False, probe=Broken())
    assert sidecar.poll(None, 1, now=0.0) == []
    assert Broken.calls == 1
    assert sidecar.peak_vram is None
