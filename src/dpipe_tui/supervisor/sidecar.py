"""Sources the monitor merges beside the console: TensorBoard scalars and GPU samples.

Why here: the console never prints eval loss, epoch loss or grad norm (spec §5.4), and peak VRAM is
only knowable while the run lives. The monitor is the one process alive for the whole run, so it
polls both on a slow clock (seconds, not per line), appends the scalars to ``metrics.jsonl`` beside
the console events (design.md: "TensorBoard events fill what the console never prints"), and keeps
the run's peak VRAM for ``run.json``. Neither source may ever take the monitor down: every failure
is logged and the source is retried on the next tick.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.gpu.attribution import PeakVram, attribute
from dpipe_tui.telemetry.tfevents import TfEventsReader

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dpipe_tui.gpu.probe import GpuProbe
    from dpipe_tui.telemetry.events import Event

log = logging.getLogger(__name__)

TB_INTERVAL_S = 2.0
GPU_INTERVAL_S = 5.0


class Sidecar:
    """Polls TensorBoard event files and NVML for one attempt of one run."""

    def __init__(
        self,
        run_id: str,
        gpus: Sequence[int],
        *,
        cpu: bool,
        run_folder: str | None = None,
        probe: GpuProbe | None = None,
        probe_factory: Callable[[], GpuProbe] | None = None,
        tb_interval: float = TB_INTERVAL_S,
        gpu_interval: float = GPU_INTERVAL_S,
        peak_vram: float | None = None,
    ) -> None:
        """Prepare polling.

        Args:
            run_id: the run the GPU usage is charged to.
            gpus: the GPU indices the run was given.
            cpu: the run trains on the CPU (no GPU sampling).
            run_folder: the engine's run folder when already known (a resumed attempt): event files
                already there were merged by an earlier attempt and are skipped.
            probe: a GPU probe to use (tests); by default one is made lazily on first use.
            probe_factory: how to make the default probe.
            tb_interval: seconds between event-file reads.
            gpu_interval: seconds between GPU samples.
            peak_vram: the peak recorded by earlier attempts (bytes), kept as a floor.
        """
        self.run_id = run_id
        self.gpus = tuple(gpus)
        self.cpu = cpu
        self.tb_interval = tb_interval
        self.gpu_interval = gpu_interval
        self._probe = probe
        self._probe_factory = probe_factory
        self._reader: TfEventsReader | None = None
        self._reader_folder: str | None = None
        self._last_tb = -1e18
        self._last_gpu = -1e18
        self._peak = PeakVram()
        if peak_vram is not None:
            self._peak.peaks[run_id] = peak_vram
        if run_folder is not None:
            self._reader_for(run_folder).read_new()  # skip what earlier attempts merged

    @property
    def peak_vram(self) -> float | None:
        """The highest VRAM charged to the run so far (bytes), or None when never measured."""
        return self._peak.peak(self.run_id)

    def poll(
        self, run_folder: str | None, root_pid: int | None, now: float | None = None, *, final: bool = False
    ) -> list[Event]:
        """Return new TensorBoard events (if due) and take a GPU sample (if due).

        Args:
            run_folder: the engine's run folder, once known.
            root_pid: the engine's process-group leader (for pid attribution).
            now: a monotonic time; defaults to ``time.monotonic()``.
            final: the engine has exited: read the event files regardless of the interval.
        """
        now = time.monotonic() if now is None else now
        events: list[Event] = []
        if run_folder is not None and (final or now - self._last_tb >= self.tb_interval):
            self._last_tb = now
            try:
                events = self._reader_for(run_folder).read_new()
            except Exception:
                log.exception("reading TensorBoard events in %s failed", run_folder)
        if not self.cpu and not final and now - self._last_gpu >= self.gpu_interval:
            self._last_gpu = now
            self._sample_gpus(root_pid)
        return events

    def _reader_for(self, run_folder: str) -> TfEventsReader:
        if self._reader is None or self._reader_folder != run_folder:
            self._reader = TfEventsReader(Path(run_folder))
            self._reader_folder = run_folder
        return self._reader

    def _sample_gpus(self, root_pid: int | None) -> None:
        try:
            if self._probe is None:
                if self._probe_factory is None:
                    from dpipe_tui.gpu.probe import default_probe

                    self._probe_factory = default_probe
                self._probe = self._probe_factory()
            report = self._probe.sample()
            if report.available:
                self._peak.feed(attribute(report, [(self.run_id, self.gpus, root_pid)]))
        except Exception:
            log.exception("GPU sample failed")
