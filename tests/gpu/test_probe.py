"""GPU probe without a driver, attribution and peak VRAM; a `gpu` test for machines with NVML devices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from dpipe_tui.gpu.attribution import PeakVram, attribute, process_tree
from dpipe_tui.gpu.probe import FakeProbe, GpuProcess, GpuReport, GpuSnapshot, NullProbe, NvmlProbe


def nvml_device_count() -> int:
    report = NvmlProbe().sample()
    return len(report.gpus) if report.available else 0


def test_probe_never_raises_and_reports_host() -> None:
    report = NvmlProbe().sample()
    assert report.host is not None
    assert report.host.ram_total
    assert report.host.ram_total > 0
    if not report.available:
        assert report.reason
        assert report.gpus == ()


def test_nvml_errors_mid_run_become_none() -> None:
    probe = NvmlProbe()

    def broken() -> None:
        raise RuntimeError("GPU fell off the bus")

    assert probe._query(broken, default=7) == 7


def test_null_and_fake_probe() -> None:
    assert NullProbe("no GPUs here").sample().reason == "no GPUs here"
    reports = [GpuReport(True, None, (GpuSnapshot(0, memory_used=float(i)),)) for i in range(2)]
    fake = FakeProbe(reports)
    assert [fake.sample().gpus[0].memory_used for _ in range(3)] == [0.0, 1.0, 1.0]


REPORT = GpuReport(
    True,
    None,
    (
        GpuSnapshot(0, utilization=90.0, memory_used=20e9, processes=(GpuProcess(111, 19e9),)),
        GpuSnapshot(1, utilization=80.0, memory_used=10e9, processes=(GpuProcess(222, 9e9),)),
        GpuSnapshot(2, utilization=0.0, memory_used=1e9),
    ),
)


def test_attribution_by_pid_then_gpu_set() -> None:
    trees = {10: {10, 111}, 20: {20, 21}}
    runs = [("a", [0], 10), ("b", [1, 2], 20), ("c", [5], None)]
    usage = attribute(REPORT, runs, tree=lambda pid: trees.get(pid, set()))
    assert usage["a"].method == "pid"
    assert usage["a"].memory_used == 19e9
    assert usage["a"].pids == (111,)
    assert usage["b"].method == "gpu_set"  # container: NVML pids never match ours
    assert usage["b"].memory_used == 11e9
    assert usage["b"].utilization == pytest.approx(40.0)
    assert usage["c"].method == "none"
    peaks = PeakVram()
    peaks.feed(usage)
    peaks.feed(attribute(REPORT, [("a", [0], None)], tree=lambda pid: set()))
    assert peaks.peak("a") == 20e9
    assert peaks.peak("zzz") is None


def test_process_tree_is_real() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(5)"])
    try:
        assert {os.getpid(), child.pid} <= process_tree(os.getpid())
    finally:
        child.kill()
        child.wait()
    assert process_tree(2**22 + 12345) == set()


@pytest.mark.gpu
@pytest.mark.skipif(nvml_device_count() == 0, reason="no NVML device")
def test_real_gpu_sample() -> None:
    report = NvmlProbe().sample()
    assert report.available
    gpu = report.gpus[0]
    assert gpu.name
    assert gpu.uuid
    assert gpu.memory_total
    assert gpu.memory_total > 0
    assert gpu.utilization is not None
    assert report.driver_version


def test_failed_nvml_init_is_retried_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    if nvml_device_count():
        pytest.skip("NVML works here: nothing fails to retry")
    now = [0.0]
    probe = NvmlProbe(retry_after=30.0, clock=lambda: now[0])
    first = probe.sample()
    assert not first.available
    assert first.reason
    if first.reason == "nvidia-ml-py is not installed":
        pytest.skip("without the package there is nothing to retry")
    assert probe.init_attempts == 1
    now[0] = 29.0
    assert probe.sample().reason == first.reason
    assert probe.init_attempts == 1, "no NVML call inside the retry window"
    now[0] = 31.0
    assert not probe.sample().available  # still no driver on this machine, but it was asked again
    assert probe.init_attempts == 2


def test_first_cpu_figure_of_a_process_is_measured() -> None:
    """psutil's first ``cpu_percent(interval=None)`` is always 0.0; the probe samples briefly instead."""
    code = (
        "import threading, time\n"
        "stop = time.monotonic() + 1.5\n"
        "def burn():\n"
        "    while time.monotonic() < stop: pass\n"
        "threading.Thread(target=burn, daemon=True).start()\n"
        "from dpipe_tui.gpu.probe import host_snapshot\n"
        "print(host_snapshot().cpu_percent)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=True)
    assert float(out.stdout) > 0.0


def test_text_table_has_clocks_and_per_process_memory() -> None:
    from dpipe_tui.services.gpus import report_rows

    gpu = GpuSnapshot(
        0,
        name="NVIDIA H100 80GB HBM3",
        memory_used=21 * 2**30,
        memory_total=80 * 2**30,
        clock_sm=1980.0,
        clock_mem=2619.0,
        processes=(GpuProcess(4242, 20.5 * 2**30), GpuProcess(4243, None)),
    )
    header, row = report_rows(GpuReport(True, None, (gpu,)))
    cells = dict(zip(header, row, strict=True))
    assert cells["clk MHz"] == "1980/2619"
    assert cells["pid:GiB"] == "4242:20.5,4243:-"
    assert cells["mem GiB"] == "21.0/80.0"
