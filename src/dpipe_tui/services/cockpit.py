"""The cockpit: the one facade every front end holds (the CLI for one call, the TUI for days).

Why a facade bound to a home: a long-lived client must not rebuild its world on every poll, and the
two front ends must not each learn which supervisor, registry, telemetry and GPU modules to combine.
The cockpit owns the home, its registry, the settings (re-read when ``settings.toml`` changes), the
GPU probe, the clock and the process spawner (all injectable, so a test passes a temp home, a fake
probe or a recording spawner). Every use case is a method returning a typed result; every refusal is
one :class:`~dpipe_tui.services.errors.Refusal` with a code, a message and a remedy.

Reads are reads: :meth:`runs`, :meth:`status`, :meth:`watch`, :meth:`log_tail` and :meth:`gpus`
never start a process and never write. Writers (:meth:`launch`, :meth:`resume`, :meth:`stop`,
:meth:`remove`) dispatch the queue, and :meth:`dispatch_queue` does it on request; a monitor started
from a client is double-forked, so no client is ever its parent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui import paths
from dpipe_tui.checkpoints.saved import last_saved_model
from dpipe_tui.runs.model import RecordError, RunRecord, RunState
from dpipe_tui.runs.registry import CONSOLE_LOG, METRICS, MONITOR_LOG, AmbiguousRun, Registry, RunNotFound
from dpipe_tui.services import checkpoints as ckpt_svc
from dpipe_tui.services import runs as run_svc
from dpipe_tui.services.errors import Refusal, RefusalCode, Remedy, RemedyAction
from dpipe_tui.services.progress import ProgressTracker
from dpipe_tui.services.watch import RunWatch, WatchUpdate
from dpipe_tui.settings import Settings, SettingsError, load_settings
from dpipe_tui.supervisor import queue

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterator

    from dpipe_tui.checkpoints.resume import ResumePoint
    from dpipe_tui.checkpoints.saved import SavedModel
    from dpipe_tui.datasets.plan import StepPlan
    from dpipe_tui.gpu.probe import GpuProbe, GpuReport
    from dpipe_tui.profiles import Finding, ValidationReport
    from dpipe_tui.services import profiles as profile_svc
    from dpipe_tui.services.datasets import DatasetPlanResult
    from dpipe_tui.services.editor import EditSession
    from dpipe_tui.services.wakeup import Wakeup

__all__ = ["Cockpit", "RunRecord", "RunState", "RunWatch", "WatchUpdate"]


class Cockpit:
    """Every use case of dpipe-tui, bound to one home.

    Args:
        home: the dpipe-tui home (registry in ``HOME/runs``); default: :func:`dpipe_tui.paths.home`.
        probe: the GPU probe (default: NVML, which degrades to "no driver" without one).
        clock: current unix time (progress, ETA, ages).
        spawn: starts a run's detached monitor (default: the double-forking spawner).
        profile_dirs: where the profile library lives (default: the profiles folder and the
            profiles shipped with the package).
    """

    def __init__(
        self,
        home: Path | None = None,
        *,
        probe: GpuProbe | None = None,
        clock: Callable[[], float] = time.time,
        spawn: queue.SpawnMonitor = queue.spawn_monitor,
        profile_dirs: list[Path] | None = None,
    ) -> None:
        """Bind to ``home``; nothing is read or created until a method needs it."""
        self.home = (home or paths.home()).expanduser().resolve()
        self.registry = Registry(self.home)
        self.clock = clock
        self._spawn = spawn
        self._probe = probe
        self.profile_dirs = profile_dirs
        self._settings: Settings | None = None
        self._settings_key: tuple[int, int] | None = None
        self._trackers: dict[str, ProgressTracker] = {}

    # -- settings ---------------------------------------------------------------------------------
    @property
    def settings_path(self) -> Path:
        """Where the user's settings live (``HOME/settings.toml``)."""
        return paths.settings_file(self.home)

    def settings(self) -> Settings:
        """The effective settings, re-read when the file changed since the last call.

        Raises:
            Refusal: ``SETTINGS`` — the file is bad (the message names the file and key).
        """
        try:
            st = self.settings_path.stat()
            key: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            key = None
        if self._settings is None or key != self._settings_key:
            with _refusals():
                self._settings = load_settings(self.home)
            self._settings_key = key
        return self._settings

    # -- profiles ---------------------------------------------------------------------------------
    def validate(
        self, files: list[Path], *, check_paths: bool = True, gpu_count: int | None = None
    ) -> profile_svc.ValidationRun:
        """Validate main/dataset configs as ``dpipe-tui validate`` does (dataset plan included)."""
        from dpipe_tui.services import profiles as profile_svc

        return profile_svc.validate_files(files, check_paths=check_paths, gpu_count=gpu_count, home=self.home)

    def validate_buffer(self, text: str, path: Path, *, gpu_count: int | None = None) -> ValidationReport:
        """Validate an unsaved buffer as if saved at ``path`` (the editor, as you type); no dataset scan."""
        from dpipe_tui.services import profiles as profile_svc

        return profile_svc.validate_buffer(text, path, home=self.home, gpu_count=gpu_count)

    def plan_dataset(
        self,
        profile: Path,
        *,
        gpu_count: int = 1,
        progress: Callable[[int, int], None] | None = None,
        cancel: threading.Event | None = None,
        isolated: bool = False,
    ) -> DatasetPlanResult:
        """The dataset plan of a saved main profile: progress, cancel (:class:`PlanCancelled`), cached;
        ``isolated``: scanned in a child process (a TUI keeps its interpreter to itself)."""
        from dpipe_tui.services import profiles as profile_svc
        from dpipe_tui.services.datasets import plan_dataset

        base_dir = profile_svc.run_base_dir(profile, self.home) or profile.resolve().parent
        return plan_dataset(
            profile,
            base_dir=base_dir,
            gpu_count=gpu_count,
            progress=progress,
            cancel=cancel,
            isolated=isolated,
        )

    @staticmethod
    def plan_findings(report: ValidationReport, plan: StepPlan) -> list[Finding]:
        """A dataset plan's problems as findings of ``report``'s dataset config (what ``validate`` adds
        after its scan; the editor adds them when its dataset panel has scanned)."""
        from dpipe_tui.services import profiles as profile_svc

        return profile_svc.plan_findings(report, plan)

    def profiles(self, folders: list[Path] | None = None) -> list[profile_svc.ProfileSummary]:
        """The profile library (``folders``, else the cockpit's profile folders)."""
        from dpipe_tui.services import profiles as profile_svc

        return profile_svc.list_profiles(folders if folders is not None else self.profile_dirs)

    @staticmethod
    def is_profile(path: str | Path) -> bool:
        """Whether ``path`` is still a file (a recent run's profile may have been moved or deleted)."""
        return Path(path).is_file()

    def recipes(self) -> list[profile_svc.Recipe]:
        """The recipes a new profile can start from."""
        from dpipe_tui.services import profiles as profile_svc

        return profile_svc.list_recipes()

    def new_profile(self, recipe: str, name: str, directory: Path | None = None) -> profile_svc.NewProfile:
        """Create ``NAME.toml`` + ``NAME.dataset.toml`` from a recipe (never overwrites).

        Raises:
            Refusal: ``NOT_FOUND`` (unknown recipe), ``UNREADABLE`` (bad name) or ``IO`` (exists,
                unwritable).
        """
        from dpipe_tui.services import profiles as profile_svc

        try:
            return profile_svc.new_profile(recipe, name, directory)
        except profile_svc.LibraryError as exc:
            code = RefusalCode.NOT_FOUND if exc.usage else RefusalCode.IO
            raise Refusal(code, str(exc)) from exc

    @staticmethod
    def open_profile(path: Path, *, read_only: bool = False) -> EditSession:
        """Open a main or dataset TOML for the editor (a missing file opens empty; saving creates it).

        Raises:
            Refusal: ``UNREADABLE`` for a directory, FIFO, binary or huge file.
        """
        from dpipe_tui.services.editor import EditSession

        return EditSession.open(path, read_only=read_only)

    # -- runs: reads ------------------------------------------------------------------------------
    def runs(self, *, progress: bool = False) -> run_svc.RunListing:
        """Every run, reconciled with the OS. Starts nothing; writes nothing but the truth of lost runs.

        Args:
            progress: also fold each live run's progress — rate, ETA, smoothed loss —
                from its ``metrics.jsonl``. A long-lived cockpit keeps one incremental tracker per
                run, so each poll reads only what was appended since the last one.
        """
        listing = run_svc.list_runs(self.home, dispatch=False)
        if not progress:
            return listing
        seen: set[str] = set()
        out: list[run_svc.RunStatus] = []
        for found in listing.runs:
            record = found.record
            if not record.state.is_live:  # ended runs show their record; only live ones move
                out.append(found)
                continue
            seen.add(record.id)
            tracker = self._trackers.get(record.id)
            if tracker is None:
                tracker = ProgressTracker(record, self.registry.metrics(record.id), self.clock)
                self._trackers[record.id] = tracker
            out.append(dataclasses.replace(found, progress=tracker.refresh(record)))
        for gone in set(self._trackers) - seen:
            del self._trackers[gone]
        return run_svc.RunListing(out, listing.problems)

    def wakeup(self, run_id: str | None = None) -> Wakeup:
        """A watch that wakes a polling client when a run's record changes or a run appears or goes
        (the registry), or when anything of one run changes (``run_id``: its console and metrics too);
        ``close()`` it when done. Where watching is impossible its ``watching`` is False."""
        from dpipe_tui.services.wakeup import Wakeup

        if run_id is None:
            return Wakeup([self.registry.root], ignore=frozenset({CONSOLE_LOG, METRICS, MONITOR_LOG}))
        return Wakeup([self.registry.run_dir(run_id)])

    def resolve(self, ref: str) -> str:
        """The full run id of an id or unique prefix.

        Raises:
            Refusal: ``NOT_FOUND`` or ``AMBIGUOUS``.
        """
        with _refusals():
            return self.registry.resolve(ref)

    def status(self, ref: str) -> run_svc.RunStatus:
        """One run, reconciled with the OS, with its progress (rate and ETA from the wall clock)."""
        with _refusals():
            return run_svc.status(self.home, ref)

    def watch(
        self, ref: str, *, console: bool = False, tail_lines: int = 0, series: bool = False
    ) -> RunWatch:
        """An incremental view of a run (see :class:`RunWatch`); poll it as often as you redraw."""
        run_id = self.resolve(ref)
        with _refusals():
            return RunWatch(
                self.registry, run_id, console=console, tail_lines=tail_lines, series=series, clock=self.clock
            )

    def log_tail(self, ref: str, lines: int = 50) -> tuple[list[str], int]:
        """The last ``lines`` console lines and the byte offset after them."""
        with _refusals():
            return run_svc.read_log(self.home, ref, lines)

    @staticmethod
    def last_save(record: RunRecord) -> SavedModel | None:
        """The newest LoRA/model ``record``'s run folder holds (names and sizes only)."""
        return last_saved_model(record.engine_run_dir)

    def resume_points(self, ref: str) -> list[ResumePoint]:
        """The run's training states (``global_stepN``), newest first; complete ones can be resumed."""
        from dpipe_tui.checkpoints.resume import resume_points

        with _refusals():
            record = self.registry.load(self.registry.resolve(ref))
        if not record.engine_run_dir:
            return []
        points = resume_points(Path(record.engine_run_dir))
        return sorted(points, key=lambda p: p.step, reverse=True)

    # -- checkpoints --------------------------------------------------------------------------------
    def checkpoints(self, ref: str) -> ckpt_svc.CheckpointListing:
        """Saves and training states of a run, an engine run folder or an ``output_dir``."""
        with _refusals():
            return ckpt_svc.listing(self.home, ref)

    def pin(self, ref: str, item: str, *, pinned: bool = True) -> tuple[Path, bool]:
        """Pin (or unpin) a save or state of ``ref`` so that no prune removes it."""
        with _refusals():
            return ckpt_svc.pin(self.home, ref, item, pinned=pinned)

    def prune(
        self,
        ref: str,
        policy: ckpt_svc.Policy,
        *,
        dry_run: bool = False,
        before_delete: Callable[[Path, int], None] | None = None,
    ) -> list[ckpt_svc.PruneOutcome]:
        """Remove what ``policy`` does not keep (never pinned items, ``latest``, a live run's newest)."""
        with _refusals():
            return ckpt_svc.prune(self.home, ref, policy, dry_run=dry_run, before_delete=before_delete)

    def export(
        self,
        ref: str,
        save: str,
        to: Path,
        *,
        name: str | None = None,
        trigger: str | None = None,
        force: bool = False,
    ) -> ckpt_svc.ExportResult:
        """Copy a saved LoRA under a readable name, training metadata in its header; tensors verified."""
        with _refusals():
            return ckpt_svc.export(self.home, ref, save, to, name=name, trigger=trigger, force=force)

    def frozen_profile(self, ref: str) -> tuple[Path, str]:
        """The profile a run trains from (its frozen copy) and its text, for a read-only view.

        Raises:
            Refusal: ``NOT_FOUND`` when the run or its frozen copy is gone.
        """
        with _refusals():
            record = self.registry.load(self.registry.resolve(ref))
        path = Path(record.config_path) if record.config_path else None
        if path is None:
            raise Refusal(RefusalCode.NOT_FOUND, f"run {record.id} has no frozen profile")
        try:
            return path, path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise Refusal(RefusalCode.NOT_FOUND, f"cannot read {path}: {exc.strerror}") from exc

    def gpus(self) -> GpuReport:
        """One sample of every GPU (and the host's CPU and RAM); never raises without a driver."""
        if self._probe is None:
            from dpipe_tui.gpu.probe import default_probe

            self._probe = default_probe()
        return self._probe.sample()

    def free_gpus(self, report: GpuReport | None = None) -> list[int] | None:
        """GPUs that no live run of the registry holds (the queue's own view, so a launch on them is not
        refused as busy) and that nothing else fills (under
        :data:`BUSY_MEMORY` of their memory in use); None on a machine without NVIDIA GPUs."""
        report = report if report is not None else self.gpus()
        if not report.available:
            return None
        held, _ports = queue.busy_slots([s.record for s in self.runs().runs])  # as the queue sees them
        free = []
        for gpu in report.gpus:
            used, total = gpu.memory_used, gpu.memory_total
            if gpu.index not in held and not (used is not None and total and used / total > BUSY_MEMORY):
                free.append(gpu.index)
        return free

    # -- runs: writes -----------------------------------------------------------------------------
    def launch(self, request: run_svc.LaunchRequest) -> run_svc.LaunchResult:
        """Pre-flight, create and start (or queue) a run.

        Raises:
            Refusal: pre-flight said no (``PROFILE_INVALID`` carries the findings).
        """
        with _refusals():
            result = run_svc.launch(self.home, request, spawn=self._spawn)
        if result.refusal is not None:
            refusal = result.refusal
            if not refusal.findings:
                refusal.info.findings = list(result.findings)
            refusal.info.warnings = list(result.warnings)
            raise refusal
        return result

    def stop(
        self,
        ref: str,
        *,
        now: bool = False,
        timeout: float | None = None,
        on_progress: Callable[[str], None] | None = None,
    ) -> Any:
        """Stop (or dequeue) a run and follow it until it ended."""
        with _refusals():
            return run_svc.stop_run(self.home, ref, now=now, timeout=timeout, on_progress=on_progress)

    def request_stop(self, ref: str, *, now: bool = False, timeout: float | None = None) -> None:
        """Ask for a stop (``now``: signals at once) and return at once; the run's monitor carries it
        out and :meth:`watch` shows it happen (``stop`` events, then the state)."""
        with _refusals():
            run_svc.stop_run(self.home, ref, now=now, timeout=timeout, wait=False)

    def save(self, ref: str) -> Path:
        """Ask a running engine for a checkpoint at the end of its current step."""
        with _refusals():
            return run_svc.save_run(self.home, ref)

    def resume(
        self, ref: str, *, from_tag: str | None = None, force: bool = False, auto_resume: int | None = None
    ) -> run_svc.ResumeResult:
        """Start a new attempt of an ended run from its checkpoint."""
        with _refusals():
            return run_svc.resume_run(
                self.home, ref, from_tag=from_tag, force=force, auto_resume=auto_resume, spawn=self._spawn
            )

    def remove(self, ref: str) -> str:
        """Delete a run's registry folder (never the engine's output); refuses on a live run."""
        with _refusals():
            return run_svc.remove_run(self.home, ref)

    def dispatch_queue(self) -> list[str]:
        """Start every queued run whose GPUs are free (monitors double-spawned); the ids started."""
        return run_svc.dispatch_queue(self.home, spawn=self._spawn)


BUSY_MEMORY = 0.1
"""A GPU with more than this share of its memory in use is not offered as free (another user's job)."""


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """Turn the domain's lookup and refusal errors into :class:`Refusal`."""
    try:
        yield
    except Refusal:
        raise
    except AmbiguousRun as exc:
        raise Refusal(RefusalCode.AMBIGUOUS, str(exc)) from exc
    except RunNotFound as exc:
        raise Refusal(RefusalCode.NOT_FOUND, str(exc.args[0]) if exc.args else str(exc)) from exc
    except RecordError as exc:
        raise Refusal(RefusalCode.UNREADABLE, str(exc)) from exc
    except SettingsError as exc:
        raise Refusal(RefusalCode.SETTINGS, str(exc), remedy=Remedy(RemedyAction.FIX_SETTINGS)) from exc
    except run_svc.ServiceError as exc:
        raise Refusal(RefusalCode.WRONG_STATE, str(exc)) from exc
