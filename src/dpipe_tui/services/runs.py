"""Run use cases shared by the CLI and the TUI: launch (with pre-flight), list, status, stop, save,
resume, remove, logs, follow.

Why here: both front ends must give the same answer to "can I launch this?" and "what is running?",
so the whole decision lives in one place and returns typed results; nothing here prints. Reads are
reads: listing and status reconcile with the OS but never start a process (a TUI polling every
second must not become the parent of monitors). Writers dispatch the queue: launch, resume, stop, rm,
and a run's monitor at its end; :func:`dispatch_queue` does it on request.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui import paths
from dpipe_tui.checkpoints.resume import (
    LATEST_HISTORY,
    NoCheckpoint,
    check_resumable,
    find_point,
    resume_points,
    set_latest,
)
from dpipe_tui.checkpoints.saved import SavedModel as SavedModel  # re-exported for the front ends
from dpipe_tui.checkpoints.saved import last_saved_model
from dpipe_tui.runs.model import IllegalTransition, RunRecord, RunState
from dpipe_tui.runs.registry import (
    AmbiguousRun,
    RecordError,
    Registry,
    RegistryProblem,
    RunNotFound,
)
from dpipe_tui.services.engines import EngineError, choose_engine
from dpipe_tui.services.errors import Refusal, RefusalCode, Remedy, RemedyAction
from dpipe_tui.settings import Settings, load_settings
from dpipe_tui.supervisor import control, preflight, queue
from dpipe_tui.supervisor.autoresume import next_attempt
from dpipe_tui.supervisor.follow import RunFollower, last_lines
from dpipe_tui.supervisor.launch import DIFFUSION_PIPE
from dpipe_tui.supervisor.reconcile import liveness, reconcile
from dpipe_tui.supervisor.refreeze import ResumeRefused, monitor_running, refreeze_for_resume
from dpipe_tui.supervisor.submit import SubmitSpec, freeze, output_dir_in, submit

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.profiles import Finding
    from dpipe_tui.telemetry.progress import ProgressSnapshot

log = logging.getLogger(__name__)

__all__ = [
    "AmbiguousRun",
    "LaunchRequest",
    "LaunchResult",
    "RunFollower",
    "RunListing",
    "RunNotFound",
    "RunStatus",
    "ServiceError",
    "launch",
    "list_runs",
    "read_log",
    "remove_run",
    "resume_run",
    "save_run",
    "status",
    "stop_run",
]


class ServiceError(Refusal):
    """A run use case refused (a :class:`Refusal`; ``WRONG_STATE`` unless a code is given)."""

    def __init__(
        self, message: str, code: RefusalCode = RefusalCode.WRONG_STATE, remedy: Remedy | None = None
    ) -> None:
        """A refusal with ``message`` (no front-end vocabulary), ``code`` and ``remedy``."""
        super().__init__(code, message, remedy=remedy)


@dataclass(frozen=True, slots=True)
class LaunchRequest:
    """A launch as the user asked for it (unset fields come from the profile and settings)."""

    profile: Path
    engine: str | None = None
    gpus: tuple[int, ...] | None = None
    queue: bool = False
    auto_resume: int = 0
    extra_args: tuple[str, ...] = ()


@dataclass(slots=True)
class LaunchResult:
    """Outcome of a launch: ``record`` is None when pre-flight refused (``refusal`` says why)."""

    record: RunRecord | None
    findings: list[Finding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    refusal: Refusal | None = None

    @property
    def error(self) -> str | None:
        """The refusal's message (plain words; its remedy is separate), or None."""
        return self.refusal.message if self.refusal is not None else None

    @property
    def ok(self) -> bool:
        """True when the run was created."""
        return self.record is not None


@dataclass(frozen=True, slots=True)
class RunStatus:
    """A record plus what the OS says right now."""

    record: RunRecord
    engine_alive: bool
    monitor_alive: bool
    queue_position: int | None = None
    progress: ProgressSnapshot | None = None
    """Epoch/step, speed, ETA, next save/checkpoint (only :func:`status` fills it; listings don't)."""
    saved_model: SavedModel | None = None
    """The newest saved LoRA/model of the run (only :func:`status` fills it)."""

    def to_json_dict(self) -> dict[str, Any]:
        """The record's JSON plus liveness (for ``--json``) and progress when known."""
        data = self.record.to_json_dict()
        data.update(
            engine_alive=self.engine_alive,
            monitor_alive=self.monitor_alive,
            queue_position=self.queue_position,
        )
        if self.progress is not None:
            from dpipe_tui.services.progress import progress_to_dict

            data["progress"] = progress_to_dict(self.progress)
        if self.saved_model is not None:
            m = self.saved_model
            data["saved_model"] = {"name": m.name, "path": str(m.path), "size": m.size}
        return data


@dataclass(slots=True)
class RunListing:
    """Every run (reconciled) and the folders that could not be read."""

    runs: list[RunStatus]
    problems: list[RegistryProblem]


def _refused(code: RefusalCode, message: str, remedy: Remedy | None = None) -> LaunchResult:
    return LaunchResult(None, refusal=Refusal(code, message, remedy=remedy))


# -- launch ---------------------------------------------------------------------------------------
def launch(
    home: Path,
    request: LaunchRequest,
    *,
    spawn: queue.SpawnMonitor = queue.spawn_monitor,
    before_freeze: Callable[[], None] | None = None,
) -> LaunchResult:
    """Pre-flight a profile, create the run and start it (or queue it).

    Pre-flight: the ``[dpipe_tui] prepare = "demo"`` step, profile validation (errors block), GPUs
    exist (CPU slots without NVIDIA GPUs, builtin engine), GPUs free of live runs (unless queueing),
    free disk where ``output_dir`` lives. Each profile file (main, dataset, eval datasets) is read
    once: the table, the validation, the dataset plan and the frozen copies all use those bytes, so a
    save in between never freezes what was not validated. ``before_freeze`` is a test seam, called
    between validation and freezing.
    """
    from functools import partial

    from dpipe_tui.profiles.snapshot import SourceSnapshot

    settings = load_settings(home)
    profile = request.profile.expanduser().resolve()
    if not profile.exists():
        return _refused(RefusalCode.NOT_FOUND, f"{profile}: no such profile")
    snapshot = SourceSnapshot()
    try:
        table = preflight.profile_table(profile, snapshot.read)
    except preflight.PreflightError as exc:
        return _refused(RefusalCode.UNREADABLE, str(exc))
    try:
        choice = choose_engine(settings, home, profile, table, request.engine)
    except EngineError as exc:
        return _refused(RefusalCode.ENGINE, str(exc), Remedy(RemedyAction.FIX_SETTINGS))
    engine, base_dir, cwd, launcher = choice.engine, choice.base_dir, choice.cwd, choice.launcher
    result = LaunchResult(None)
    if table.get("prepare") == "demo" and (err := preflight.prepare_demo(profile)):
        return _refused(RefusalCode.PREPARE_FAILED, err)
    gpus = request.gpus or tuple(int(g) for g in table.get("gpus", ()) or (0,))
    has_gpu, indices, reason = preflight.gpus_available()
    cpu = not has_gpu
    if has_gpu and (missing := [g for g in gpus if g not in indices]):
        return _refused(
            RefusalCode.GPUS_MISSING, f"GPU {missing} not found (this machine has {list(indices)})"
        )
    if cpu:
        slots = os.cpu_count() or 1
        if max(gpus) >= slots or len(gpus) > slots:
            return _refused(
                RefusalCode.GPUS_MISSING, f"no NVIDIA GPU ({reason}); CPU slots 0..{slots - 1} only"
            )
        if engine == DIFFUSION_PIPE:
            result.warnings.append(
                f"no NVIDIA GPU ({reason}): diffusion-pipe needs CUDA; launching with "
                "DS_ACCELERATOR=cpu anyway"
            )
    from dpipe_tui.profiles import Severity
    from dpipe_tui.services.profiles import validate_one

    validation = validate_one(profile, base_dir=base_dir, gpu_count=len(gpus), read=snapshot.read)
    report = validation.report
    result.findings = list(report.findings)
    errors = [f for f in report.findings if f.severity is Severity.ERROR]
    if report.kind != "main":
        result.refusal = Refusal(RefusalCode.NOT_MAIN, f"{profile} is a dataset config, not a main profile")
        return result
    if errors:
        result.refusal = Refusal(
            RefusalCode.PROFILE_INVALID,
            f"{profile}: {len(errors)} error(s) in the profile",
            remedy=Remedy(RemedyAction.FIX_PROFILE),
            findings=list(report.findings),
        )
        return result
    registry = Registry(home)
    records = [reconcile(registry, r) for r in registry.scan()[0]]
    busy = {g: r.id for r in records if r.state.is_live for g in r.gpus}
    clash = sorted({busy[g] for g in gpus if g in busy})
    if clash and not request.queue:
        result.refusal = Refusal(
            RefusalCode.GPUS_BUSY,
            f"GPU(s) {sorted(set(gpus) & set(busy))} in use by {', '.join(clash)}",
            remedy=Remedy(RemedyAction.QUEUE, clash[0]),
        )
        return result
    out = output_dir_in(tomllib.loads(snapshot.read(profile)), base_dir)  # the bytes validated above
    if out is not None:
        free = preflight.free_gib(out)
        if free < settings.min_free_gib:
            result.refusal = Refusal(
                RefusalCode.DISK_LOW,
                f"only {free:.1f} GiB free where output_dir lives ({out}); need {settings.min_free_gib} "
                f"GiB (min_free_gib in {paths.settings_file(home)})",
            )
            return result
        if free < 2 * settings.min_free_gib:
            result.warnings.append(f"low disk space: {free:.1f} GiB free in {out}")
        if warning := _disk_forecast_warning(snapshot.read(profile), profile, records, free, settings):
            result.warnings.append(warning)
    spec = SubmitSpec(
        profile=profile,
        engine=engine,
        base_dir=base_dir,
        cwd=cwd,
        launcher=launcher,
        gpus=gpus,
        cpu=cpu,
        extra_args=request.extra_args,
        auto_resume=request.auto_resume,
        total_steps=validation.total_steps,  # from the scan validation made: one scan a launch
        steps_per_epoch=validation.steps_per_epoch,
    )
    if before_freeze is not None:
        before_freeze()
    result.record = submit(registry, spec, spawn=spawn, freezer=partial(freeze, read=snapshot.read))
    return result


# -- reading ----------------------------------------------------------------------------------------
def _status(registry: Registry, record: RunRecord, records: list[RunRecord] | None = None) -> RunStatus:
    alive = liveness(record)
    position = queue.queue_position(records or [record], record.id)
    return RunStatus(record, alive.engine, alive.monitor, position)


def list_runs(home: Path, *, dispatch: bool = False) -> RunListing:
    """Every run, reconciled with the OS. A read: it starts nothing (``dispatch`` asks it to start
    queued runs whose GPUs are free first, as :func:`dispatch_queue` does)."""
    registry = Registry(home)
    if dispatch:
        queue.dispatch(registry)
    records, problems = registry.scan()
    records = [reconcile(registry, r) for r in records]
    return RunListing([_status(registry, r, records) for r in records], problems)


def dispatch_queue(home: Path, *, spawn: queue.SpawnMonitor = queue.spawn_monitor) -> list[str]:
    """Start every queued run whose GPUs are free (the monitors are never this process's children)."""
    return queue.dispatch(Registry(home), spawn=spawn)


def resolve(home: Path, ref: str) -> str:
    """The run id for a unique id prefix (raises RunNotFound / AmbiguousRun)."""
    return Registry(home).resolve(ref)


def status(home: Path, ref: str) -> RunStatus:
    """One run, reconciled with the OS, with its progress replayed from ``metrics.jsonl``."""
    from dpipe_tui.services.progress import run_progress

    registry = Registry(home)
    record = reconcile(registry, registry.load(registry.resolve(ref)))
    found = _status(registry, record, registry.scan()[0])
    progress = run_progress(record, registry.metrics(record.id))
    saved = last_saved_model(record.engine_run_dir)
    return dataclasses.replace(found, progress=progress, saved_model=saved)


def read_log(home: Path, ref: str, lines: int = 50) -> tuple[list[str], int]:
    """The last ``lines`` lines of the run's console and the offset to follow from."""
    registry = Registry(home)
    return last_lines(registry.console_log(registry.resolve(ref)), lines)


# -- controls ---------------------------------------------------------------------------------------
def stop_run(
    home: Path,
    ref: str,
    *,
    now: bool = False,
    timeout: float | None = None,
    on_progress: Callable[[str], None] | None = None,
    wait: bool = True,
) -> control.StopResult:
    """Stop (or dequeue) a run: the request returns at once, the run's monitor carries it out;
    with ``wait`` follow the registry until the run has ended (see :func:`control.stop`).

    ``timeout``: how long to wait for the save_quit checkpoint (default: ``stop_timeout_s`` of the
    settings, which the monitor reads).
    """
    registry = Registry(home)
    record = registry.load(registry.resolve(ref))
    try:
        return control.stop(
            registry, record, now=now, on_progress=on_progress, graceful_timeout=timeout, wait=wait
        )
    except control.ControlError as exc:
        raise ServiceError(str(exc)) from exc
    finally:
        queue.dispatch(registry)


def save_run(home: Path, ref: str) -> Path:
    """Ask a running engine for a checkpoint (the ``save`` file)."""
    registry = Registry(home)
    try:
        return control.save(registry, registry.load(registry.resolve(ref)))
    except control.NotReady as exc:
        raise ServiceError(str(exc), RefusalCode.NOT_READY, Remedy(RemedyAction.RETRY_LATER)) from exc
    except control.ControlError as exc:
        raise ServiceError(str(exc)) from exc


@dataclass(slots=True)
class ResumeResult:
    """A resumed run: its record (queued or starting), the checkpoint tag and warnings."""

    record: RunRecord
    tag: str
    warnings: list[str] = field(default_factory=list)


def resume_run(
    home: Path,
    ref: str,
    *,
    from_tag: str | None = None,
    force: bool = False,
    auto_resume: int | None = None,
    spawn: queue.SpawnMonitor = queue.spawn_monitor,
) -> ResumeResult:
    """Start a new attempt of an ended run from its checkpoint (``--resume_from_checkpoint <folder>``).

    The user's current profile is re-frozen for the new attempt (diffusion-pipe uses the config on
    the command line, spec §5.6); changes that break loading refuse the resume unless ``force``.

    Raises:
        ServiceError: the run is live/completed, has no complete checkpoint, or the profile changed
            in a way that breaks loading.
    """
    registry = Registry(home)
    run_id = registry.resolve(ref)
    with registry.attempt_locked(run_id):  # one new attempt at a time (another client, auto-resume)
        result = _resume_locked(registry, run_id, from_tag, force, auto_resume)
    queue.dispatch(registry, spawn=spawn)
    return dataclasses.replace(result, record=registry.load(run_id))


def _resume_locked(
    registry: Registry, run_id: str, from_tag: str | None, force: bool, auto_resume: int | None
) -> ResumeResult:
    record = reconcile(registry, registry.load(run_id))
    if not record.state.is_terminal or record.state is RunState.COMPLETED:
        raise ServiceError(f"run {run_id} is {record.state.value}; only failed, stopped or lost runs resume")
    if not record.engine_run_dir:
        raise ServiceError(
            f"run {run_id} has no engine run folder (it never got past loading); nothing to resume"
        )
    folder = Path(record.engine_run_dir)
    abandons: list[str] = []
    try:  # every check first: a refused resume must leave `latest` as it was
        if from_tag:
            from_tag = complete_tag(folder, from_tag)
        point = find_point(folder, from_tag) if from_tag else check_resumable(folder)
        warnings = refreeze_for_resume(registry, record, force=force, checkpoint=point)
        _check_stages(registry.load(run_id), point.path)
        if from_tag:
            abandons = _abandons(folder, from_tag, registry.metrics(run_id))
        if from_tag:  # last: rewrite `latest`, its old value appended to the history first
            change = set_latest(folder, from_tag, registry.run_dir(run_id) / LATEST_HISTORY)
            if change.previous is not None:
                warnings.append(
                    f"{folder}/latest now names {from_tag} (it named {change.previous}); every earlier "
                    f"value is kept in {change.history}"
                )
    except NoCheckpoint as exc:
        raise ServiceError(f"cannot resume {run_id}: {exc}", RefusalCode.NO_CHECKPOINT) from exc
    except StagesMismatch as exc:
        raise ServiceError(f"cannot resume {run_id}: {exc}", RefusalCode.RESUME_CHANGED) from exc
    except ResumeRefused as exc:
        raise ServiceError(str(exc), RefusalCode.RESUME_CHANGED, Remedy(RemedyAction.FORCE)) from exc
    except OSError as exc:  # an unwritable run folder or registry: say where, no traceback
        raise ServiceError(f"cannot resume {run_id}: {exc}", RefusalCode.IO) from exc
    try:
        new = registry.update(run_id, lambda cur: _requeue(cur, point.tag, str(folder), auto_resume))
    except IllegalTransition as exc:
        raise ServiceError(f"cannot resume {run_id}: its state changed meanwhile ({exc})") from exc
    return ResumeResult(new, point.tag, warnings + abandons)


def _disk_forecast_warning(
    text: str, profile: Path, records: list[RunRecord], free_gib: float, settings: Settings
) -> str | None:
    """A warning when the saves and states this run will write (sized from an earlier run of the
    same profile) do not fit in the free space above ``min_free_gib``; None when they do or when
    no earlier run says how big they are."""
    from dpipe_tui.checkpoints.forecast import forecast

    try:
        config = tomllib.loads(text)
    except ValueError:
        return None
    table = config.get("dpipe_tui") if isinstance(config.get("dpipe_tui"), dict) else {}
    assert isinstance(table, dict)
    keep_saves = table.get("keep_last_saves", settings.retention[0])
    keep_states = table.get("keep_states", settings.retention[2])
    same = [
        Path(r.engine_run_dir)
        for r in sorted(records, key=lambda r: r.created_at, reverse=True)
        if r.engine_run_dir and Path(r.profile_path) == profile.resolve()
    ]
    found = forecast(config, same, keep_saves=keep_saves, keep_states=keep_states)
    if found is None:
        return None
    need = found.total / 2**30
    room = free_gib - settings.min_free_gib
    if need <= room:
        return None
    return (
        f"disk: this run will write about {need:.1f} GiB ({found.saves} save(s) of "
        f"{found.save_bytes / 2**20:.0f} MiB and {found.states} training state(s) of "
        f"{found.state_bytes / 2**30:.2f} GiB, sized from {found.source}) but only {room:.1f} GiB are free "
        f"above min_free_gib; set [dpipe_tui] keep_states / keep_last_saves, or free space. The monitor "
        "stops the run with save_quit before the disk is full"
    )


class StagesMismatch(Exception):
    """The state was saved with another number of pipeline stages than the profile trains with."""


def complete_tag(folder: Path, text: str) -> str:
    """A resume point from what was typed: ``global_step150``, ``150`` or ``step150``, or a unique
    prefix of a tag (``global_step15`` when only ``global_step150`` starts so); as typed otherwise."""
    tags = [p.tag for p in resume_points(folder)]
    if text in tags:
        return text
    digits = text.removeprefix("global_").removeprefix("step")
    if digits.isdigit() and f"global_step{int(digits)}" in tags:
        return f"global_step{int(digits)}"
    starts = [t for t in tags if t.startswith(text)]
    return starts[0] if len(starts) == 1 else text


def _check_stages(record: RunRecord, state: Path) -> None:
    from dpipe_tui.checkpoints.inventory import state_stages

    saved = state_stages(state)
    try:
        data = tomllib.loads(Path(record.config_path or "").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    want = data.get("pipeline_stages", 1)
    if saved and isinstance(want, int) and saved != want:
        raise StagesMismatch(
            f"{state.name} was saved with {saved} pipeline stage(s) and the profile has pipeline_stages = "
            f"{want}; DeepSpeed cannot load it. Set pipeline_stages = {saved}, or resume from a state saved "
            "with the profile's value"
        )


def _abandons(folder: Path, tag: str, metrics: Path) -> list[str]:
    """What a resume from ``tag`` leaves behind: the items written after it, in one warning."""
    from dpipe_tui.checkpoints.inventory import scan_run_folder
    from dpipe_tui.services.checkpoints import save_telemetry

    saves, states = scan_run_folder(folder, telemetry=save_telemetry(metrics)).later_than(tag)
    if not saves and not states:
        return []
    names = [s.name for s in sorted(saves, key=lambda s: s.mtime)] + [
        s.tag for s in sorted(states, key=lambda s: s.step)
    ]
    shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
    return [
        f"resuming from {tag} abandons {len(saves)} later save(s) and {len(states)} later state(s) "
        f"({shown}): they stay on disk, marked abandoned in `dpipe-tui checkpoints`; "
        "`dpipe-tui prune RUN --abandoned` removes them"
    ]


def _requeue(current: RunRecord, tag: str, folder: str, auto_resume: int | None) -> RunRecord:
    new = next_attempt(current, tag=tag, run_folder=folder)
    if auto_resume is not None:
        new = dataclasses.replace(new, auto_resume=auto_resume, auto_resumes_used=0)
    return new


def remove_run(home: Path, ref: str) -> str:
    """Delete a run's registry folder (never the engine's output). Refuses on a live or queued run."""
    registry = Registry(home)
    run_id = registry.resolve(ref)
    try:
        record = reconcile(registry, registry.load(run_id))
    except (RecordError, RunNotFound):  # an unreadable record: removable unless its monitor still runs
        if monitor_running(registry, run_id):
            raise ServiceError(
                f"run {run_id} has an unreadable run.json but its monitor is running"
            ) from None
        registry.delete(run_id)
        return run_id
    if record.state.is_live or record.state is RunState.QUEUED:
        raise ServiceError(
            f"run {run_id} is {record.state.value}", remedy=Remedy(RemedyAction.STOP_FIRST, run_id)
        )
    registry.delete(run_id)
    queue.dispatch(registry)  # a writer: what waited behind it may start
    return run_id


def settings(home: Path) -> Settings:
    """The effective settings (for front ends that show them)."""
    return load_settings(home)
