"""Run commands: ``run``, ``ls``, ``status``, ``logs``, ``stop``, ``save``, ``resume``, ``rm``.

Thin over :mod:`dpipe_tui.services.runs`: parse options, call one service, render. The foreground
``run`` is only a viewer: Ctrl-C detaches it and the run goes on (its monitor is in another session).
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path  # noqa: TC003  # typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from dpipe_tui import paths
from dpipe_tui.cli import common

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.services.runs import RunStatus
    from dpipe_tui.telemetry.events import Event

RunArg = Annotated[str, typer.Argument(help="Run id or a unique prefix of it.")]


def _home(home: str | None) -> Path:
    common.apply_home(home)
    return paths.home()


def _say(message: str) -> None:
    print(f"dpipe-tui: {message}", file=sys.stderr)


def _lookup_error(exc: Exception) -> NoReturn:
    from dpipe_tui.runs.registry import AmbiguousRun

    if isinstance(exc, AmbiguousRun):
        common.fail(str(exc), common.ExitCode.USAGE)
    common.fail(str(exc).strip("'\""), common.ExitCode.NOT_FOUND)


def _service(call: Callable[[], T]) -> T:
    """Run a service call, turning lookup and refusal errors into one-line diagnostics and exit codes."""
    from dpipe_tui.runs.registry import RecordError
    from dpipe_tui.services.runs import ServiceError
    from dpipe_tui.services.settings import SettingsError

    try:
        return call()
    except LookupError as exc:
        _lookup_error(exc)
    except (ServiceError, RecordError, SettingsError) as exc:
        common.fail(str(exc))


def _parse_gpus(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        gpus = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        common.fail(
            f"--gpus must be a comma-separated list of ids, e.g. 0,1 (got {text!r})", common.ExitCode.USAGE
        )
    if not gpus or len(set(gpus)) != len(gpus) or min(gpus) < 0:
        common.fail(f"--gpus: invalid GPU list {text!r}", common.ExitCode.USAGE)
    return gpus


# -- rendering --------------------------------------------------------------------------------------
def _age(t: float | None) -> str:
    if not t:
        return "-"
    s = max(0, int(time.time() - t))
    return (
        f"{s}s"
        if s < 120
        else (f"{s // 60}m" if s < 7200 else (f"{s // 3600}h" if s < 172800 else f"{s // 86400}d"))
    )


def _step_text(r: RunRecord) -> str:
    if r.last_step is None:
        return "-"
    return f"{r.last_step}/{r.total_steps}" if r.total_steps else str(r.last_step)


def _state_text(s: RunStatus) -> str:
    r = s.record
    text = r.state.value
    if r.state.is_live and not s.monitor_alive and s.engine_alive:
        text += " (unmonitored)"
    if s.queue_position is not None:
        text += f" #{s.queue_position}"
    return text


def _print_table(rows: list[RunStatus]) -> None:
    header = ("ID", "STATE", "PHASE", "STEP", "LOSS", "GPUS", "ENGINE", "AGE")
    table = [header]
    for s in rows:
        r = s.record
        loss = f"{r.last_loss:.4f}" if r.last_loss is not None else "-"
        gpus = ("cpu:" if r.cpu else "") + ",".join(map(str, r.gpus))
        table.append(
            (r.id, _state_text(s), r.phase or "-", _step_text(r), loss, gpus, r.engine, _age(r.created_at))
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _print_status(s: RunStatus) -> None:
    r = s.record
    fields = [
        ("run", r.id),
        ("state", _state_text(s)),
        ("phase", r.phase or "-"),
        ("step", _step_text(r)),
        ("loss", f"{r.last_loss:.4f}" if r.last_loss is not None else "-"),
        ("epoch", str(r.last_epoch) if r.last_epoch is not None else "-"),
        ("engine", f"{r.engine} (attempt {r.attempt})"),
        ("gpus", ("cpu slots " if r.cpu else "") + ",".join(map(str, r.gpus))),
        ("profile", r.profile_path),
        ("run folder", r.engine_run_dir or "-"),
        ("checkpoint", r.checkpoint_tag or "-"),
        ("peak VRAM", f"{r.peak_vram_bytes / 2**30:.1f} GiB" if r.peak_vram_bytes else "-"),
        (
            "pid",
            f"{r.pid} (engine {'alive' if s.engine_alive else 'gone'}, monitor "
            f"{'alive' if s.monitor_alive else 'gone'})"
            if r.pid
            else "-",
        ),
        ("exit code", str(r.exit_code) if r.exit_code is not None else "-"),
    ]
    if r.failure_class:
        fields += [
            ("failure", f"{r.failure_class}: {r.failure_message or ''}"),
            ("hint", r.failure_hint or "-"),
        ]
    if r.resume_tag:
        fields.append(("resumed from", f"{r.resume_from}/{r.resume_tag}"))
    for key, value in fields:
        print(f"{key:>12}: {value}")


# -- commands ---------------------------------------------------------------------------------------
def run(
    profile: Annotated[Path, typer.Argument(help="Main profile TOML.")],
    engine: Annotated[str | None, typer.Option("--engine", help="builtin or diffusion-pipe.")] = None,
    gpus: Annotated[
        str | None, typer.Option("--gpus", help="GPU ids, e.g. 0,1 (CPU slots without GPU).")
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Wait in the queue when the GPUs are busy.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Return at once; the run goes on.")] = False,
    auto_resume: Annotated[
        int, typer.Option("--auto-resume", min=0, help="Resume up to N times after a crash.")
    ] = 0,
    trust_cache: Annotated[
        bool, typer.Option("--trust-cache", help="Pass --trust_cache to train.py.")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """Launch a run (detached monitor) and follow it; Ctrl-C detaches the viewer, the run goes on.

    Exit codes: 0 completed (or detached/queued with --detach), 1 failed or refused, 2 usage, 130 Ctrl-C.
    """
    from dpipe_tui.services.runs import LaunchRequest, launch

    root = _home(home)
    request = LaunchRequest(
        profile=profile,
        engine=engine,
        gpus=_parse_gpus(gpus),
        queue=queue,
        auto_resume=auto_resume,
        extra_args=("--trust_cache",) if trust_cache else (),
    )
    result = _service(lambda: launch(root, request))
    for finding in result.findings:
        print(finding.format(), file=sys.stderr)
    for warning in result.warnings:
        print(f"dpipe-tui: warning: {warning}", file=sys.stderr)
    if result.record is None:
        common.fail(result.error or "launch refused")
    record = result.record
    print(
        f"run {record.id}: {record.state.value} ({record.engine}, gpus {','.join(map(str, record.gpus))})",
        file=sys.stderr,
    )
    if detach:
        print(record.id)
        raise typer.Exit(0)
    raise typer.Exit(_follow(root, record.id))


def _follow(home: Path, run_id: str) -> int:
    from dpipe_tui.runs.model import RunState
    from dpipe_tui.runs.registry import Registry
    from dpipe_tui.services.runs import RunFollower

    follower = RunFollower(Registry(home), run_id)
    view = _TtyView() if sys.stdout.isatty() else _PlainView()
    try:
        while True:
            update = follower.poll()
            view.show(update.record, update.events)
            if update.record.state.is_terminal:
                break
            time.sleep(0.5)
    except KeyboardInterrupt:
        view.close()
        print(
            f"\ndetached; run {run_id} goes on. Follow: dpipe-tui logs -f {run_id}   "
            f"Status: dpipe-tui status {run_id}   Stop: dpipe-tui stop {run_id}",
            file=sys.stderr,
        )
        return int(common.ExitCode.INTERRUPTED)
    view.close()
    r = follower.record
    print(
        f"run {run_id}: {r.state.value}"
        + (f" — {r.failure_class}: {r.failure_message}" if r.failure_class else "")
        + (f"\nhint: {r.failure_hint}" if r.failure_hint and r.state is not RunState.COMPLETED else "")
    )
    if r.state is RunState.COMPLETED or (r.state is RunState.STOPPED and not r.failure_class):
        return int(common.ExitCode.OK)
    return int(common.ExitCode.FAILED)


class _Progress:
    """Speed and ETA from the telemetry progress model (EMA of DeepSpeed's iter time)."""

    def __init__(self) -> None:
        from dpipe_tui.telemetry.progress import ProgressModel, ProgressPlan

        self._plan_type = ProgressPlan
        self.model = ProgressModel()
        self._total: int | None = None

    def add(self, record: RunRecord, events: list[Event]) -> tuple[float | None, str]:
        if record.total_steps != self._total:
            self._total = record.total_steps
            self.model.plan = self._plan_type(total_steps=record.total_steps)
        self.model.feed(events)
        snap = self.model.snapshot()
        eta = snap.eta_sec
        if eta is None:
            text = "-"
        else:
            text = time.strftime("%H:%M:%S", time.gmtime(eta)) if eta < 86400 else f"{eta / 86400:.1f}d"
        return snap.steps_per_sec, text


class _PlainView:
    """One line per phase change and at most one progress line per second (logs, pipes, cron)."""

    def __init__(self) -> None:
        self.progress = _Progress()
        self.phase: str | None = None
        self.last_print = 0.0
        self.last_step: int | None = None

    def show(self, r: RunRecord, events: list[Event]) -> None:
        rate, eta = self.progress.add(r, events)
        if r.phase != self.phase:
            self.phase = r.phase
            print(f"[{r.state.value}] phase: {r.phase or '-'}", flush=True)
        now = time.monotonic()
        if r.last_step is not None and r.last_step != self.last_step and now - self.last_print >= 1.0:
            self.last_step, self.last_print = r.last_step, now
            loss = f"{r.last_loss:.4f}" if r.last_loss is not None and math.isfinite(r.last_loss) else "-"
            its = f"{rate:.2f} it/s" if rate else "- it/s"
            print(f"step {_step_text(r)}  loss {loss}  {its}  eta {eta}", flush=True)

    def close(self) -> None:
        sys.stdout.flush()


class _TtyView:
    """A rich progress bar: phase, step/total, loss, it/s, ETA."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.model = _Progress()
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
            transient=False,
        )
        self.task = self.progress.add_task("starting", total=None, info="")
        self.progress.start()

    def show(self, r: RunRecord, events: list[Event]) -> None:
        rate, eta = self.model.add(r, events)
        loss = f"{r.last_loss:.4f}" if r.last_loss is not None and math.isfinite(r.last_loss) else "-"
        info = f"loss {loss}  {rate:.2f} it/s  eta {eta}" if rate else f"loss {loss}"
        self.progress.update(
            self.task,
            description=f"{r.state.value}/{r.phase or '-'}",
            total=r.total_steps,
            completed=r.last_step or 0,
            info=info,
        )

    def close(self) -> None:
        self.progress.stop()


def ls(
    as_json: common.JsonOption = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include every ended run (default: the last 10).")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """List runs (reconciled with the OS; dispatches the queue)."""
    from dpipe_tui.services.runs import list_runs

    listing = list_runs(_home(home))
    rows = listing.runs
    if not show_all:
        ended = [s for s in rows if s.record.state.is_terminal]
        keep = {s.record.id for s in ended[-10:]}
        rows = [s for s in rows if not s.record.state.is_terminal or s.record.id in keep]
    if as_json:
        print(
            json.dumps(
                {
                    "runs": [s.to_json_dict() for s in rows],
                    "problems": [
                        {"id": p.run_id, "path": str(p.path), "message": p.message} for p in listing.problems
                    ],
                },
                indent=2,
            )
        )
        return
    if rows:
        _print_table(rows)
    else:
        print("no runs", file=sys.stderr)
    for p in listing.problems:
        print(f"dpipe-tui: unreadable run {p.run_id}: {p.message}", file=sys.stderr)


def status(run_ref: RunArg, as_json: common.JsonOption = False, home: common.HomeOption = None) -> None:
    """Show one run, as the OS confirms it."""
    from dpipe_tui.services import runs

    root = _home(home)
    s = _service(lambda: runs.status(root, run_ref))
    if as_json:
        print(json.dumps(s.to_json_dict(), indent=2))
    else:
        _print_status(s)


def logs(
    run_ref: RunArg,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines until the run ends.")
    ] = False,
    lines: Annotated[int, typer.Option("-n", "--lines", min=0, help="How many last lines to show.")] = 50,
    home: common.HomeOption = None,
) -> None:
    """Print the run's console output (stdout+stderr of every attempt)."""
    from dpipe_tui.runs.registry import Registry
    from dpipe_tui.services import runs

    root = _home(home)
    run_id = _service(lambda: runs.resolve(root, run_ref))
    tail, offset = runs.read_log(root, run_id, lines)
    for line in tail:
        print(line)
    if not follow:
        return
    follower = runs.RunFollower(Registry(root), run_id, from_start=False, console=True, console_offset=offset)
    try:
        while True:
            update = follower.poll()
            for line in update.lines:
                print(line, flush=True)
            if update.record.state.is_terminal:
                for line in follower.poll().lines:
                    print(line)
                return
            time.sleep(0.3)
    except KeyboardInterrupt:
        raise typer.Exit(int(common.ExitCode.INTERRUPTED)) from None


def stop(
    run_ref: RunArg,
    now: Annotated[
        bool, typer.Option("--now", help="Skip save_quit; signal the process group at once.")
    ] = False,
    timeout: Annotated[float | None, typer.Option("--timeout", help="Seconds to wait for save_quit.")] = None,
    home: common.HomeOption = None,
) -> None:
    """Stop a run: checkpoint and quit (save_quit), then SIGINT/SIGTERM/SIGKILL to its group."""
    from dpipe_tui.services import runs

    root = _home(home)
    result = _service(lambda: runs.stop_run(root, run_ref, now=now, timeout=timeout, on_progress=_say))
    print(f"run {result.record.id}: {result.record.state.value} ({result.message})")
    if result.leftovers:
        raise typer.Exit(int(common.ExitCode.FAILED))


def save(run_ref: RunArg, home: common.HomeOption = None) -> None:
    """Ask the engine for a checkpoint at the end of the current step (the save file)."""
    from dpipe_tui.services import runs

    root = _home(home)
    path = _service(lambda: runs.save_run(root, run_ref))
    print(f"requested a checkpoint: {path}")


def resume(
    run_ref: RunArg,
    from_tag: Annotated[
        str | None, typer.Option("--from", help="Checkpoint tag, e.g. global_step500.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Resume even if the model/adapter changed.")] = False,
    auto_resume: Annotated[
        int | None, typer.Option("--auto-resume", min=0, help="New auto-resume budget.")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Return at once; the run goes on.")] = False,
    home: common.HomeOption = None,
) -> None:
    """Resume an ended run from its checkpoint as a new attempt (same run id)."""
    from dpipe_tui.services import runs

    root = _home(home)
    result = _service(
        lambda: runs.resume_run(root, run_ref, from_tag=from_tag, force=force, auto_resume=auto_resume)
    )
    for warning in result.warnings:
        print(f"dpipe-tui: warning: {warning}", file=sys.stderr)
    r = result.record
    print(
        f"run {r.id}: attempt {r.attempt} from {r.resume_from}/{result.tag}: {r.state.value}", file=sys.stderr
    )
    if detach:
        print(r.id)
        return
    raise typer.Exit(_follow(root, r.id))


def rm(run_ref: RunArg, home: common.HomeOption = None) -> None:
    """Delete a run's registry folder (not the engine's output); refuses on a live or queued run."""
    from dpipe_tui.services import runs

    root = _home(home)
    run_id = _service(lambda: runs.remove_run(root, run_ref))
    print(f"removed {run_id}")


def register(app: typer.Typer) -> None:
    """Add the run commands to the app."""
    for name, fn in (
        ("run", run),
        ("ls", ls),
        ("status", status),
        ("logs", logs),
        ("stop", stop),
        ("save", save),
        ("resume", resume),
        ("rm", rm),
    ):
        app.command(name)(fn)
