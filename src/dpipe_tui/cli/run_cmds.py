"""Run commands: ``run``, ``ls``, ``status``, ``logs``, ``stop``, ``save``, ``resume``, ``rm``.

Thin over the cockpit (:class:`dpipe_tui.services.cockpit.Cockpit`): parse options, call one use case,
render with :mod:`dpipe_tui.present`. A refusal's remedy becomes this command line's flags here (the
TUI turns the same remedy into an action). The foreground ``run`` is only a viewer over a
:class:`RunWatch`: Ctrl-C detaches it and the run goes on (its monitor is in another session).
"""

from __future__ import annotations

import json
import math
import signal
import sys
import textwrap
import time
from pathlib import Path  # noqa: TC003  # typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, NoReturn, TypeVar

import typer

from dpipe_tui import paths, present
from dpipe_tui.cli import common

T = TypeVar("T")

if TYPE_CHECKING:
    from collections.abc import Callable

    from rich.console import Console, ConsoleOptions, RenderResult

    from dpipe_tui.profiles import Finding
    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.services.errors import Refusal
    from dpipe_tui.services.runs import RunStatus, SavedModel
    from dpipe_tui.services.watch import ProgressSnapshot

RunArg = Annotated[str, typer.Argument(metavar="RUN", help="Run id or a unique prefix of it.")]


def _home(home: str | None) -> Path:
    common.apply_home(home)
    return paths.home()


def _say(message: str) -> None:
    print(f"dpipe-tui: {message}", file=sys.stderr)


def _cockpit(home: str | None) -> Cockpit:
    from dpipe_tui.services.cockpit import Cockpit

    return Cockpit(_home(home))


def remedy_text(refusal: Refusal) -> str:
    """The refusal's way out, in this command line's words ("add --queue to wait")."""
    from dpipe_tui.services.errors import RemedyAction

    remedy = refusal.remedy
    if remedy is None:
        return ""
    run = remedy.run_id or "RUN"
    return {
        RemedyAction.QUEUE: "add --queue to wait",
        RemedyAction.FORCE: "add --force to do it anyway",
        RemedyAction.STOP_FIRST: f"stop it first (dpipe-tui stop {run})",
        RemedyAction.FIX_PROFILE: "fix them first (dpipe-tui validate)",
        RemedyAction.FIX_SETTINGS: "",
        RemedyAction.RETRY_LATER: "try later",
        RemedyAction.PICK_CHECKPOINT: "pick another with --from global_stepN",
    }.get(remedy.action, "")


def _refused(refusal: Refusal) -> NoReturn:
    """One line on stderr (the message and the remedy as flags) and the exit code of its kind."""
    from dpipe_tui.services.errors import RefusalCode

    remedy = remedy_text(refusal)
    message = refusal.message + (f"; {remedy}" if remedy else "")
    code = {
        RefusalCode.NOT_FOUND: common.ExitCode.NOT_FOUND,
        RefusalCode.AMBIGUOUS: common.ExitCode.USAGE,
    }.get(refusal.code, common.ExitCode.FAILED)
    common.fail(message, code)


def _service(call: Callable[[], T]) -> T:
    """Run a cockpit call, turning a refusal into a one-line diagnostic and its exit code."""
    from dpipe_tui.services.errors import Refusal

    try:
        return call()
    except Refusal as exc:
        _refused(exc)


def _parse_gpus(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        gpus = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        common.fail(
            f"--gpus must be a comma-separated list of ids, e.g. 0,1 (got {text!r})", common.ExitCode.USAGE
        )
    if not gpus:
        why = "it names no GPU"
    elif min(gpus) < 0:
        why = "GPU ids are 0 or more"
    elif len(set(gpus)) != len(gpus):
        why = f"GPU {next(g for g in gpus if gpus.count(g) > 1)} is listed twice"
    else:
        return gpus
    common.fail(f"--gpus {text!r}: {why} (e.g. --gpus 0,1)", common.ExitCode.USAGE)


def _check_engine(engine: str | None) -> None:
    """``--engine`` is a usage error when it names no engine (exit 2, like every bad flag)."""
    from dpipe_tui.settings import ENGINES

    if engine is not None and engine not in ENGINES:
        common.fail(f"--engine {engine!r}: choose {' or '.join(ENGINES)}", common.ExitCode.USAGE)


# -- rendering --------------------------------------------------------------------------------------
def _age(t: float | None) -> str:
    return present.age(t)


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
            (
                r.id,
                _state_text(s),
                present.phase_text(r.state, r.phase),
                _step_text(r),
                loss,
                gpus,
                r.engine,
                _age(r.created_at),
            )
        )
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


def _dur(sec: float | None) -> str:
    return present.duration(sec)


def _epoch_step(r: RunRecord, p: ProgressSnapshot | None) -> tuple[str, str]:
    """("epoch 2/10", "step 130/500") from the progress snapshot, else from the record."""
    step = p.step if p is not None and p.step is not None else r.last_step
    total = p.total_steps if p is not None and p.total_steps else r.total_steps
    epoch = p.epoch if p is not None and p.epoch is not None else r.last_epoch
    epochs = p.epochs if p is not None else None
    step_text = "-" if step is None else (f"{step}/{total}" if total else str(step))
    if step is not None and total:
        step_text += f" ({100 * min(step / total, 1.0):.0f}%)"
    epoch_text = "-" if epoch is None else (f"{epoch}/{epochs}" if epochs else str(epoch))
    return epoch_text, step_text


def _rate(p: ProgressSnapshot | None) -> str:
    return present.rate_text(p)


def _progress_fields(r: RunRecord, p: ProgressSnapshot | None) -> list[tuple[str, str]]:
    """Rows of ``status``: epoch, step of total, speed, ETA, next save/checkpoint, checkpoint age."""
    epoch, step = _epoch_step(r, p)
    rows = [("epoch", epoch), ("step", step)]
    if p is None:
        return [*rows, ("checkpoint", r.checkpoint_tag or "-")]
    live = r.state.value in ("starting", "running")  # not `exiting`: its engine is gone
    next_save = "-"
    if live and p.next_save_step is not None:
        next_save = f"step {p.next_save_step} (in {_dur(p.next_save_in_sec)})"
    ckpt = r.checkpoint_tag or (
        f"global_step{p.last_checkpoint_step}" if p.last_checkpoint_step is not None else "-"
    )
    if p.last_checkpoint_age_sec is not None:
        ckpt += f" ({_dur(p.last_checkpoint_age_sec)} ago)"
    rows += [
        ("speed", _rate(p) if live else "-"),
        ("eta", present.eta_text(p) if live else "-"),
        ("next save", next_save),
        (
            "next ckpt",
            f"in {_dur(p.next_checkpoint_in_sec)}" if live and p.next_checkpoint_in_sec is not None else "-",
        ),
        ("checkpoint", ckpt),
    ]
    return rows


def _print_status(s: RunStatus) -> None:
    r, p = s.record, s.progress
    fields = [
        ("run", r.id),
        ("state", _state_text(s)),
        ("phase", present.phase_text(r.state, r.phase)),
        ("loss", f"{r.last_loss:.4f}" if r.last_loss is not None else "-"),
        *_progress_fields(r, p),
        ("engine", f"{r.engine} (attempt {r.attempt})"),
        ("gpus", ("cpu slots " if r.cpu else "") + ",".join(map(str, r.gpus))),
        ("profile", r.profile_path),
        ("run folder", r.engine_run_dir or "-"),
        ("last save", _saved_text(s.saved_model)),
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
    if r.note:
        fields.append(("note", r.note))
    if r.resume_tag:
        fields.append(("resumed from", f"{r.resume_from}/{r.resume_tag}"))
    if p is not None and r.state.is_live:
        fields += [("warning", w) for w in p.warnings]
    for key, value in fields:
        print(f"{key:>12}: {value}")


# -- commands ---------------------------------------------------------------------------------------
def run(
    profile: Annotated[Path, typer.Argument(metavar="PROFILE", help="Main profile TOML.")],
    engine: Annotated[
        str | None, typer.Option("--engine", metavar="ENGINE", help="builtin or diffusion-pipe.")
    ] = None,
    gpus: Annotated[
        str | None, typer.Option("--gpus", metavar="IDS", help="GPU ids, e.g. 0,1 (CPU slots without GPU).")
    ] = None,
    queue: Annotated[bool, typer.Option("--queue", help="Wait in the queue when the GPUs are busy.")] = False,
    detach: Annotated[bool, typer.Option("--detach", help="Return at once; the run goes on.")] = False,
    auto_resume: Annotated[
        int, typer.Option("--auto-resume", min=0, metavar="N", help="Resume up to N times after a crash.")
    ] = 0,
    trust_cache: Annotated[
        bool, typer.Option("--trust-cache", help="Pass --trust_cache to train.py.")
    ] = False,
    tui: Annotated[
        bool, typer.Option("--tui", help="Follow the run in the TUI's run view (on a terminal).")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """Launch a run (detached monitor) and follow it; Ctrl-C detaches the viewer, the run goes on.

    With --tui the run is followed in the TUI (quit it any time: the run goes on); without a
    terminal --tui falls back to the plain progress lines.

    Exit codes: 0 completed, or stopped cleanly by `dpipe-tui stop` (or detached/queued with --detach),
    1 failed or refused, 2 usage, 130 Ctrl-C.
    """
    from dpipe_tui.services.errors import Refusal
    from dpipe_tui.services.runs import LaunchRequest

    _check_engine(engine)
    cockpit = _cockpit(home)
    request = LaunchRequest(
        profile=profile,
        engine=engine,
        gpus=_parse_gpus(gpus),
        queue=queue,
        auto_resume=auto_resume,
        extra_args=("--trust_cache",) if trust_cache else (),
    )
    try:
        result = cockpit.launch(request)
    except Refusal as exc:
        _report(exc.findings, exc.info.warnings)
        _refused(exc)
    _report(result.findings, result.warnings)
    record = result.record
    assert record is not None
    print(
        f"run {record.id}: {record.state.value} ({record.engine}, gpus {','.join(map(str, record.gpus))})",
        file=sys.stderr,
    )
    if detach:
        print(record.id)
        raise typer.Exit(0)
    if tui and sys.stdin.isatty() and sys.stdout.isatty():
        from dpipe_tui.cli.tui_cmds import open_tui

        open_tui(open_run=record.id)
        final = cockpit.status(record.id).record
        print(f"run {record.id}: {final.state.value} (dpipe-tui status {record.id})", file=sys.stderr)
        raise typer.Exit(0)
    raise typer.Exit(_follow(cockpit, record.id))


def _report(findings: list[Finding], warnings: list[str]) -> None:
    for finding in findings:
        print(finding.format(), file=sys.stderr)
    for warning in warnings:
        print(f"dpipe-tui: warning: {warning}", file=sys.stderr)


def _follow(cockpit: Cockpit, run_id: str) -> int:
    from dpipe_tui.runs.model import RunState

    watch = _service(lambda: cockpit.watch(run_id))
    view = _TtyView() if sys.stdout.isatty() else _PlainView()
    # Ctrl-C sets a flag the loop checks, rather than raising wherever the main thread happens to be:
    # a KeyboardInterrupt raised inside a finaliser is swallowed, and CI once saw a follower carry on
    # for 20 s after SIGINT. The flag cannot be lost; the loop notices it within one sleep.
    # (A plain flag, not a threading.Event: the handler runs in the main thread, which may be holding
    # the Event's own lock inside wait().)
    interrupted: list[bool] = []
    previous = signal.signal(signal.SIGINT, lambda _signum, _frame: interrupted.append(True))
    try:
        while not interrupted:
            update = watch.poll()
            view.show(update.record, update.progress)
            if update.ended:
                break
            time.sleep(0.5)
    finally:
        signal.signal(signal.SIGINT, previous)
    if interrupted:
        view.close()
        print(
            f"\ndetached; run {run_id} goes on. Follow again: dpipe-tui follow {run_id}   "
            f"Stop: dpipe-tui stop {run_id}",
            file=sys.stderr,
        )
        return int(common.ExitCode.INTERRUPTED)
    view.close()
    r = watch.record
    print(
        f"run {run_id}: {r.state.value}"
        + (f" — {r.failure_class}: {r.failure_message}" if r.failure_class else "")
        + (f"\nhint: {r.failure_hint}" if r.failure_hint and r.state is not RunState.COMPLETED else "")
        + (f"\n{r.note}" if r.note and not r.state.is_live else "")
    )
    saved = cockpit.last_save(r)
    if saved is not None:
        print(f"saved: {_saved_text(saved)}")
    if r.state is RunState.COMPLETED or (r.state is RunState.STOPPED and not r.failure_class):
        return int(common.ExitCode.OK)
    return int(common.ExitCode.FAILED)


def _saved_text(model: SavedModel | None) -> str:
    """``/out/<run>/epoch50/adapter_model.safetensors (12.3 MiB, epoch50)``: where the result is."""
    return "-" if model is None else f"{model.path} ({present.size(model.size)}, {model.name})"


class _Warnings:
    """Each progress warning once (printed below the bar / as a line)."""

    def __init__(self) -> None:
        self.warned: set[str] = set()

    def new_warnings(self, snap: ProgressSnapshot) -> list[str]:
        """Each progress warning once (printed below the bar / as a line)."""
        fresh = [w for w in snap.warnings if w not in self.warned]
        self.warned.update(fresh)
        return fresh


def _progress_info(r: RunRecord, p: ProgressSnapshot) -> str:
    """One compact line: epoch, loss, it/s, ETA, next save, next checkpoint, checkpoint age."""
    epoch, _ = _epoch_step(r, p)
    loss = f"{r.last_loss:.4f}" if r.last_loss is not None and math.isfinite(r.last_loss) else "-"
    parts = [f"epoch {epoch}", f"loss {loss}"]
    if p.measuring:
        parts.append("measuring it/s and eta")
    if p.steps_per_sec:
        parts.append(f"{p.steps_per_sec:.2f} it/s")
    if p.eta_sec is not None:
        parts.append(f"eta {_dur(p.eta_sec)}")
    if p.next_save_in_sec is not None:
        parts.append(f"save in {_dur(p.next_save_in_sec)}")
    if p.next_checkpoint_in_sec is not None:
        parts.append(f"ckpt in {_dur(p.next_checkpoint_in_sec)}")
    if p.last_checkpoint_age_sec is not None:
        parts.append(f"last ckpt {_dur(p.last_checkpoint_age_sec)} ago")
    elif p.step:
        parts.append("no ckpt yet")
    return "  ".join(parts)


class _PlainView:
    """One line per phase change and at most one progress line per second (logs, pipes, cron)."""

    def __init__(self) -> None:
        self.progress = _Warnings()
        self.phase: str | None = None
        self.last_print = 0.0
        self.last_step: int | None = None

    def show(self, r: RunRecord, snap: ProgressSnapshot) -> None:
        if r.phase != self.phase:
            self.phase = r.phase
            print(f"[{r.state.value}] phase: {r.phase or '-'}", flush=True)
        now = time.monotonic()
        if r.last_step is not None and r.last_step != self.last_step and now - self.last_print >= 1.0:
            self.last_step, self.last_print = r.last_step, now
            _, step = _epoch_step(r, snap)
            print(f"step {step}  {_progress_info(r, snap)}", flush=True)
        for warning in self.progress.new_warnings(snap):
            print(f"warning: {warning}", flush=True)

    def close(self) -> None:
        sys.stdout.flush()


def line_facts(r: RunRecord, p: ProgressSnapshot, now: float) -> present.LineFacts:
    """The progress line's facts from a record and its progress snapshot, at time ``now``."""
    step = p.step if p.step is not None else r.last_step
    epoch = p.epoch if p.epoch is not None else r.last_epoch
    started = r.started_at
    elapsed = None if started is None else (r.ended_at or now) - started
    ended = r.state.is_terminal  # its phase is its outcome (the state), and nothing is left to wait for
    return present.LineFacts(
        state=r.state.value,
        phase=None if ended else r.phase,
        step=step,
        total=p.total_steps or r.total_steps,
        elapsed_sec=elapsed,
        eta="-" if ended else present.eta_text(p),
        rate=present.rate_text(p),
        loss=r.last_loss,
        epoch=present.epoch_text(epoch, p.epochs),
        save_in_sec=None if ended else p.next_save_in_sec,
        checkpoint_in_sec=None if ended else p.next_checkpoint_in_sec,
        checkpoint_age_sec=None if ended else p.last_checkpoint_age_sec,
    )


_LINE_STYLES = {"bar": "green", "bar.empty": "grey37", "step": "bold", "eta": "cyan", "dim": "dim"}


class _Line:
    """The live progress line, laid out for the terminal's width each time it is drawn."""

    def __init__(self) -> None:
        self.facts: tuple[RunRecord, ProgressSnapshot] | None = None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        from rich.text import Text

        if self.facts is None:
            yield Text("starting")
            return
        r, snap = self.facts
        text = Text(no_wrap=True, overflow="crop")
        ascii_only = not console.encoding.lower().startswith("utf")
        for piece, style in present.progress_segments(
            line_facts(r, snap, time.time()), options.max_width, ascii_only=ascii_only
        ):
            name = present.state_style(r.state.value) if style in ("state", "phase") else style
            text.append(piece, _LINE_STYLES.get(name, name))
        yield text


class _TtyView:
    """One live line (see :func:`dpipe_tui.present.progress_segments`); warnings print above it,
    wrapped at words with a hanging indent."""

    def __init__(self) -> None:
        from rich.live import Live

        self.model = _Warnings()
        self.line = _Line()
        self.live = Live(self.line, refresh_per_second=2, transient=False, redirect_stdout=False)
        self.live.start()

    def show(self, r: RunRecord, snap: ProgressSnapshot) -> None:
        console = self.live.console
        for warning in self.model.new_warnings(snap):
            wrapped = textwrap.fill(
                warning, width=max(console.width, 30), initial_indent="warning: ", subsequent_indent=" " * 9
            )
            console.print(wrapped, style="yellow", highlight=False, markup=False, soft_wrap=True)
        self.line.facts = (r, snap)
        self.live.refresh()

    def close(self) -> None:
        self.live.stop()


def ls(
    as_json: common.JsonOption = False,
    show_all: Annotated[
        bool, typer.Option("--all", help="Include every ended run (default: the last 10).")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """List runs, reconciled with the OS (a read: it never starts a queued run)."""
    listing = _service(lambda: _cockpit(home).runs())
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
    cockpit = _cockpit(home)
    s = _service(lambda: cockpit.status(run_ref))
    if as_json:
        print(json.dumps(s.to_json_dict(), indent=2))
    else:
        _print_status(s)


def logs(
    run_ref: RunArg,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="Keep printing new lines until the run ends.")
    ] = False,
    lines: Annotated[
        int, typer.Option("-n", "--lines", min=0, metavar="N", help="How many last lines to show.")
    ] = 50,
    home: common.HomeOption = None,
) -> None:
    """Print the run's console output (stdout+stderr of every attempt)."""
    cockpit = _cockpit(home)
    if not follow:
        for line in _service(lambda: cockpit.log_tail(run_ref, lines))[0]:
            print(line)
        return
    watch = _service(lambda: cockpit.watch(run_ref, console=True, tail_lines=lines))
    try:
        while True:
            update = watch.poll()
            for line in update.lines:
                print(line, flush=True)
            if update.ended:
                for line in watch.poll().lines:
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
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0, metavar="SECONDS", help="Seconds to wait for save_quit."),
    ] = None,
    home: common.HomeOption = None,
) -> None:
    """Stop a run: checkpoint and quit (save_quit), then SIGINT/SIGTERM/SIGKILL to its group.

    The run's monitor carries the stop; this command follows it until the run has ended. Ctrl-C (or
    killing this command) leaves the stop going. --now during a graceful stop escalates at once.
    """
    cockpit = _cockpit(home)
    try:
        result = _service(lambda: cockpit.stop(run_ref, now=now, timeout=timeout, on_progress=_say))
    except KeyboardInterrupt:
        _say(f"stopped following; the stop of {run_ref} goes on (dpipe-tui status {run_ref})")
        raise typer.Exit(int(common.ExitCode.INTERRUPTED)) from None
    state = result.record.state.value
    detail = result.message.removeprefix(f"{state}; ")  # "stopped (checkpoint saved …)", said once
    print(f"run {result.record.id}: {state} ({detail})")
    if result.leftovers:
        raise typer.Exit(int(common.ExitCode.FAILED))


def save(run_ref: RunArg, home: common.HomeOption = None) -> None:
    """Ask the engine for a checkpoint at the end of the current step (the save file)."""
    cockpit = _cockpit(home)
    path = _service(lambda: cockpit.save(run_ref))
    print(f"requested a checkpoint: {path}")


def resume(
    run_ref: RunArg,
    from_tag: Annotated[
        str | None, typer.Option("--from", metavar="TAG", help="Checkpoint tag, e.g. global_step500.")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Resume even if the model/adapter changed.")] = False,
    auto_resume: Annotated[
        int | None, typer.Option("--auto-resume", min=0, metavar="N", help="New auto-resume budget.")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Return at once; the run goes on.")] = False,
    home: common.HomeOption = None,
) -> None:
    """Resume an ended run from its checkpoint as a new attempt (same run id)."""
    cockpit = _cockpit(home)
    result = _service(
        lambda: cockpit.resume(run_ref, from_tag=from_tag, force=force, auto_resume=auto_resume)
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
    raise typer.Exit(_follow(cockpit, r.id))


def follow(
    run_ref: RunArg,
    tui: Annotated[bool, typer.Option("--tui", help="Follow in the TUI's run view (on a terminal).")] = False,
    home: common.HomeOption = None,
) -> None:
    """Follow a run's progress again (as `run` does), e.g. after Ctrl-C detached `run`.

    Exit codes: 0 completed or stopped cleanly, 1 failed, 3 not found, 130 Ctrl-C (the run goes on).
    """
    cockpit = _cockpit(home)
    run_id = _service(lambda: cockpit.resolve(run_ref))
    if tui and sys.stdin.isatty() and sys.stdout.isatty():
        from dpipe_tui.cli.tui_cmds import open_tui

        open_tui(open_run=run_id)
        raise typer.Exit(0)
    raise typer.Exit(_follow(cockpit, run_id))


def rm(run_ref: RunArg, home: common.HomeOption = None) -> None:
    """Delete a run's registry folder (not the engine's output); refuses on a live or queued run."""
    cockpit = _cockpit(home)
    run_id = _service(lambda: cockpit.remove(run_ref))
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
        ("follow", follow),
        ("rm", rm),
    ):
        app.command(name)(fn)
