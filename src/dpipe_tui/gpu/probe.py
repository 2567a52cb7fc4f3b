"""GPU and host sampling through NVML (nvidia-ml-py), degrading to a reason instead of a crash.

Why this shape (style.md §6, after nvitop): every NVML call goes through one :meth:`NvmlProbe._query`
that turns any NVML error into a default, so a GPU that falls off the bus mid-run, an unsupported
field (power on some boards, clocks in MIG) or a missing driver shows as ``None``/a reason, never as a
traceback. NVML is initialised lazily on the first sample, so importing this module costs nothing on a
machine without a driver. ``NullProbe`` and ``FakeProbe`` let the app and its tests run anywhere.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psutil

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)

_THROTTLE_NAMES = (
    ("GpuIdle", "idle"),
    ("ApplicationsClocksSetting", "app_clocks"),
    ("SwPowerCap", "power_cap"),
    ("HwSlowdown", "hw_slowdown"),
    ("SyncBoost", "sync_boost"),
    ("SwThermalSlowdown", "sw_thermal"),
    ("HwThermalSlowdown", "hw_thermal"),
    ("HwPowerBrakeSlowdown", "power_brake"),
    ("DisplayClockSetting", "display_clock"),
)


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process using a GPU, as NVML reports it (host pid namespace)."""

    pid: int
    used_memory: float | None  # bytes


@dataclass(frozen=True, slots=True)
class GpuSnapshot:
    """One GPU at one instant; fields are None when NVML cannot tell."""

    index: int
    uuid: str | None = None
    name: str | None = None
    utilization: float | None = None  # percent
    memory_used: float | None = None  # bytes
    memory_total: float | None = None
    temperature: float | None = None  # °C
    power_draw: float | None = None  # watts
    power_limit: float | None = None
    clock_sm: float | None = None  # MHz
    clock_mem: float | None = None
    throttle_reasons: tuple[str, ...] = ()
    processes: tuple[GpuProcess, ...] = ()


@dataclass(frozen=True, slots=True)
class HostSnapshot:
    """Host CPU and RAM (psutil)."""

    cpu_percent: float | None
    ram_used: float | None  # bytes
    ram_total: float | None
    ram_available: float | None
    swap_used: float | None
    cpu_count: int | None


@dataclass(frozen=True, slots=True)
class GpuReport:
    """One sample of every GPU plus the host; ``available`` False with a ``reason`` when NVML is not."""

    available: bool
    reason: str | None
    gpus: tuple[GpuSnapshot, ...] = ()
    host: HostSnapshot | None = None
    driver_version: str | None = None
    t: float = field(default=0.0)


class GpuProbe(Protocol):
    """Anything that can sample GPUs."""

    def sample(self) -> GpuReport:
        """Take one sample."""
        ...


CPU_SAMPLE_S = 0.2
"""Length of the first CPU sample of a process (psutil's first ``interval=None`` reading is 0.0)."""
_cpu_primed = False


def host_snapshot(cpu_sample: float = CPU_SAMPLE_S) -> HostSnapshot:
    """CPU and RAM now; None where psutil cannot tell.

    CPU % is measured since the previous call; the first call of a process has no previous one
    (psutil would say 0.0), so it blocks for a short ``cpu_sample`` seconds to measure instead.
    """
    global _cpu_primed
    try:
        mem = psutil.virtual_memory()
        swap = psutil.swap_memory()
        cpu = psutil.cpu_percent(interval=None if _cpu_primed else cpu_sample)
        _cpu_primed = True
        return HostSnapshot(
            cpu_percent=cpu,
            ram_used=float(mem.total - mem.available),
            ram_total=float(mem.total),
            ram_available=float(mem.available),
            swap_used=float(swap.used),
            cpu_count=psutil.cpu_count(),
        )
    except (OSError, RuntimeError) as exc:  # e.g. /proc not mounted in a sandbox
        log.debug("psutil failed: %s", exc)
        return HostSnapshot(None, None, None, None, None, None)


class NullProbe:
    """No GPUs: reports the reason given, plus the host."""

    def __init__(self, reason: str = "GPU monitoring disabled") -> None:
        self.reason = reason

    def sample(self) -> GpuReport:
        """A report with no GPUs."""
        return GpuReport(False, self.reason, (), host_snapshot(), t=time.time())


class FakeProbe:
    """Returns scripted reports in turn (the last one repeats); for UI tests."""

    def __init__(self, reports: Sequence[GpuReport]) -> None:
        self._reports = list(reports)
        self._i = 0

    def sample(self) -> GpuReport:
        """The next scripted report."""
        report = self._reports[min(self._i, len(self._reports) - 1)]
        self._i += 1
        return report


class NvmlProbe:
    """Samples GPUs through NVML. Initialises on first use; failures become ``available=False``.

    A failed initialisation is retried after ``retry_after`` seconds (a driver that was being
    installed or reloaded, a container whose devices appeared later), not remembered forever; a
    missing ``nvidia-ml-py`` package is final.

    Args:
        retry_after: seconds before a failed NVML initialisation is tried again.
        clock: monotonic time (injected for tests).
    """

    def __init__(self, retry_after: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._nvml: Any = None
        self._reason: str | None = None
        self._handles: list[Any] = []
        self._retry_after = retry_after
        self._clock = clock
        self._failed_at: float | None = None
        self.init_attempts = 0
        """How many times NVML initialisation was tried (for diagnostics)."""

    def _init(self) -> bool:
        if self._nvml is not None:
            return True
        if self._reason is not None and (
            self._failed_at is None or self._clock() - self._failed_at < self._retry_after
        ):
            return False
        try:
            import pynvml
        except ImportError:
            self._reason, self._failed_at = "nvidia-ml-py is not installed", None  # final
            return False
        self.init_attempts += 1
        try:
            pynvml.nvmlInit()
            count = pynvml.nvmlDeviceGetCount()
            self._handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        except pynvml.NVMLError_LibraryNotFound:
            return self._failed("no NVIDIA driver (libnvidia-ml.so not found)")
        except pynvml.NVMLError as exc:
            return self._failed(f"NVML unavailable: {exc}")
        self._nvml, self._reason, self._failed_at = pynvml, None, None
        return True

    def _failed(self, reason: str) -> bool:
        self._reason, self._failed_at = reason, self._clock()
        return False

    def _query(self, fn: Callable[..., Any], *args: Any, default: Any = None) -> Any:
        """Call one NVML function; any NVML (or decoding) error gives ``default``."""
        try:
            return fn(*args)
        except Exception as exc:  # NVMLError subclasses vary by driver; never let one escape
            log.debug("NVML %s failed: %s", getattr(fn, "__name__", fn), exc)
            return default

    def sample(self) -> GpuReport:
        """One report; ``available=False`` with a reason when NVML cannot be used."""
        host = host_snapshot()
        if not self._init():
            return GpuReport(False, self._reason, (), host, t=time.time())
        nv = self._nvml
        gpus = tuple(self._gpu(i, h) for i, h in enumerate(self._handles))
        driver = self._query(nv.nvmlSystemGetDriverVersion)
        if isinstance(driver, bytes):
            driver = driver.decode()
        return GpuReport(True, None, gpus, host, driver, t=time.time())

    def _gpu(self, index: int, handle: Any) -> GpuSnapshot:
        nv, q = self._nvml, self._query
        mem = q(nv.nvmlDeviceGetMemoryInfo, handle)
        util = q(nv.nvmlDeviceGetUtilizationRates, handle)
        power = q(nv.nvmlDeviceGetPowerUsage, handle)
        limit = q(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
        reasons = q(nv.nvmlDeviceGetCurrentClocksThrottleReasons, handle, default=0)
        procs = q(nv.nvmlDeviceGetComputeRunningProcesses, handle, default=[]) or []
        return GpuSnapshot(
            index=index,
            uuid=_text(q(nv.nvmlDeviceGetUUID, handle)),
            name=_text(q(nv.nvmlDeviceGetName, handle)),
            utilization=_num(getattr(util, "gpu", None)),
            memory_used=_num(getattr(mem, "used", None)),
            memory_total=_num(getattr(mem, "total", None)),
            temperature=_num(q(nv.nvmlDeviceGetTemperature, handle, nv.NVML_TEMPERATURE_GPU)),
            power_draw=power / 1000.0 if isinstance(power, int | float) else None,
            power_limit=limit / 1000.0 if isinstance(limit, int | float) else None,
            clock_sm=_num(q(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_SM)),
            clock_mem=_num(q(nv.nvmlDeviceGetClockInfo, handle, nv.NVML_CLOCK_MEM)),
            throttle_reasons=decode_throttle(nv, reasons if isinstance(reasons, int) else 0),
            processes=tuple(GpuProcess(int(p.pid), _num(getattr(p, "usedGpuMemory", None))) for p in procs),
        )


def decode_throttle(nv: Any, mask: int) -> tuple[str, ...]:
    """Names of the clock throttle reasons set in ``mask``."""
    out = []
    for suffix, name in _THROTTLE_NAMES:
        bit = getattr(nv, f"nvmlClocksThrottleReason{suffix}", None)
        if isinstance(bit, int) and mask & bit:
            out.append(name)
    return tuple(out)


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else None


def default_probe() -> GpuProbe:
    """The probe the app uses: NVML (which reports its own absence)."""
    return NvmlProbe()
