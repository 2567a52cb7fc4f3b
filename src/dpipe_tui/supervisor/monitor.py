"""The per-run monitor: ``python -m dpipe_tui.supervisor.monitor <run_dir>``.

Why a separate, detached process: training must outlive the TUI, the CLI and the SSH session
(design.md). The dispatcher starts this monitor in its own session; the monitor is the engine's
parent, so it alone sees the engine's output and exit status. It starts the engine as a new process
group, writes ``console.log`` and ``metrics.jsonl``, keeps ``run.json`` current (throttled: once a
second at most, not once a line), records the outcome (``completed`` only after ``TRAINING
COMPLETE!``, spec §4.5), learns the engine's run folder by diffing ``output_dir`` (never writing
there, spec §5.6), optionally auto-resumes after a crash, and finally dispatches the queue.
It ignores SIGHUP/SIGINT/SIGTERM: it ends when its engine ends (``dpipe-tui stop`` ends the engine).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections import deque
from pathlib import Path
from typing import Any, Protocol

from dpipe_tui.checkpoints.prune import Policy
from dpipe_tui.runs import redact
from dpipe_tui.runs.model import RecordError, RunRecord, RunState, transition
from dpipe_tui.runs.registry import CONSOLE_LOG, METRICS, MONITOR_PID, Registry, RunNotFound
from dpipe_tui.settings import Settings, SettingsError, load_settings
from dpipe_tui.supervisor import autoresume, procs
from dpipe_tui.supervisor.console import ConsoleWriter
from dpipe_tui.supervisor.escalation import GRACEFUL_TIMEOUT_S, SIGNAL_STEPS, Escalation, describe
from dpipe_tui.supervisor.launch import build_command
from dpipe_tui.supervisor.notify import Notifier, build_event
from dpipe_tui.supervisor.outcome import decide
from dpipe_tui.supervisor.progress import RunSummary, discover_run_folder, snapshot_entries
from dpipe_tui.supervisor.sidecar import Sidecar
from dpipe_tui.supervisor.telemetry_link import FailureInfo, classify, make_parser
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import FOLDED_KINDS, RECENT_STEPS
from dpipe_tui.telemetry.store import MetricsAppender

log = logging.getLogger("dpipe_tui.monitor")

RECORD_INTERVAL_S = 1.0
EXIT_DRAIN_S = 1.0
DISK_CHECK_S = 30.0
"""How often the monitor looks at the free disk where output_dir lives (low-disk notification)."""
STOP_CHECK_S = 0.5
"""How often the monitor looks for a stop request in ``run.json`` (and ticks a stop under way)."""
READ_BATCH_S = 0.25
"""While the engine prints, the monitor reads its pipe at most this often (everything there at once)."""
GATHER_BELOW = 16 << 10
"""A read shorter than this is followed by a ``READ_BATCH_S`` pause; a longer one (a burst that could
fill the 64 KiB pipe and block the engine's prints) by the next read at once."""
WRITE_BATCH_S = 1.0
"""Events are appended to ``metrics.jsonl`` at most this often, except :data:`URGENT_KINDS`."""
URGENT_KINDS = frozenset(
    {EventKind.PHASE, EventKind.ERROR, EventKind.EXIT, EventKind.COMPLETE, EventKind.QUIT, EventKind.STOP}
)
"""Kinds written at once: a follower sees a phase change, a failure or a stop step without delay."""


class EngineSpawner(Protocol):
    """Starts the engine: a new process group whose stdout+stderr come back on one pipe."""

    def __call__(
        self, argv: list[str], cwd: str, env: dict[str, str]
    ) -> subprocess.Popen[bytes]:  # pragma: no cover - a protocol
        """Start ``argv``."""
        ...


def popen_engine(argv: list[str], cwd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The real spawner: a new session (its own process group), output on a pipe, no stdin."""
    return subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        close_fds=True,
    )


class Monitor:
    """Supervises one run (all its attempts) from the monitor process."""

    def __init__(
        self,
        registry: Registry,
        run_id: str,
        *,
        record_interval: float = RECORD_INTERVAL_S,
        spawn: EngineSpawner = popen_engine,
    ) -> None:
        """Attach to run ``run_id`` of ``registry``; ``spawn`` starts the engine (a seam for tests)."""
        self.registry = registry
        self.run_id = run_id
        self.run_dir = registry.run_dir(run_id)
        self.record_interval = record_interval
        self.spawn = spawn
        self._escalation: Escalation | None = None
        self._stop_events: list[Event] = []
        self._stop_checked = 0.0
        self._console: ConsoleWriter | None = None
        self._settings = Settings()
        self._disk_warned = False
        self._disk_checked = 0.0
        self._disk_stopping = False
        self._disk_reason: str | None = None
        self._retention: Policy | None = None
        self._retention_due = False
        self._notifier: Notifier | None = None

    def run(self) -> None:
        """Claim the run, run attempts until one does not auto-resume, notify, then dispatch the queue."""
        if not self._claim():
            return
        self._settings = self._load_settings()
        notifier = Notifier(self._settings.notify)
        try:
            while True:
                record = self._attempt()
                if record is None:
                    break
                if self._auto_resume(record):
                    again = self.registry.load(self.run_id)
                    notifier.send(
                        build_event("auto_resumed", again, tag=again.resume_tag, after=record.failure_class)
                    )
                    continue
                if record.state.value in ("completed", "failed", "stopped", "lost"):
                    notifier.send(build_event(record.state.value, record))
                break
        finally:
            notifier.wait()  # bounded by notify.timeout_s: a dead endpoint never holds the run's end
            from dpipe_tui.supervisor.queue import dispatch

            try:
                dispatch(self.registry)
            except Exception:
                log.exception("dispatching the queue failed")

    def _load_settings(self) -> Settings:
        try:
            return load_settings(self.registry.home)
        except SettingsError as exc:  # a bad settings file must never break supervision
            log.warning("settings unreadable, using defaults (no notifications): %s", exc)
            return Settings()

    def _check_disk(
        self, output_dir: Path | None, notifier_event: list[dict[str, Any]], run_folder: str | None = None
    ) -> None:
        """Free disk where output_dir lives: notify below 2 x min_free_gib (once until it recovers);
        once training has a run folder, ask for save_quit below the stop floor (:meth:`_stop_floor`)
        so the last checkpoint is written whole instead of the engine dying mid-write."""
        if output_dir is None:
            return
        probe = output_dir
        while not probe.exists() and probe.parent != probe:
            probe = probe.parent
        try:
            free = shutil.disk_usage(probe).free / 2**30
        except OSError:
            return
        floor = self._stop_floor(run_folder)
        if run_folder is not None and free < floor and not self._disk_stopping:
            self._disk_stopping = True
            reason = (
                f"low disk: {free:.2f} GiB free where output_dir lives ({probe}), under {floor:.2f} GiB; "
                "checkpointing and stopping (save_quit) before the disk fills mid-write. Free space, then "
                "resume"
            )
            self._stop_for(reason)
            record = self.registry.load(self.run_id)
            notifier_event.append(
                build_event("low_disk", record, free_gib=free, path=str(probe), stopping=True)
            )
            return
        low = free < 2 * self._settings.min_free_gib
        if low and not self._disk_warned:
            self._disk_warned = True
            record = self.registry.load(self.run_id)
            notifier_event.append(build_event("low_disk", record, free_gib=free, path=str(probe)))
        elif not low:
            self._disk_warned = False  # recovered: warn again if it drops

    def _stop_floor(self, run_folder: str | None) -> float:
        """GiB under which a run is stopped: ``stop_below_gib``, or 1.5x its newest state if larger
        (the save_quit checkpoint itself needs that room)."""
        floor = self._settings.stop_below_gib
        if run_folder is None:
            return floor
        from dpipe_tui.checkpoints.inventory import newest_state_size

        return max(floor, 1.5 * newest_state_size(Path(run_folder)) / 2**30)

    def _stop_for(self, reason: str) -> None:
        """Ask for a graceful stop (the stop machinery carries it out), saying why everywhere."""
        self._disk_reason = reason
        self._stop_step("low_disk", {"message": reason})

        def ask(current: RunRecord) -> RunRecord:
            return dataclasses.replace(current, stop_requested=True, note=reason)

        try:
            self.registry.update(self.run_id, ask)
        except (RecordError, RunNotFound) as exc:
            log.warning("could not record the stop: %s", exc)

    def _retention_policy(self, record: RunRecord) -> Policy | None:
        """The profile's [dpipe_tui] keep_* keys, else the settings' [retention]; None keeps all."""
        keys = ("keep_last_saves", "keep_every", "keep_states")
        values: dict[str, Any] = dict(zip(keys, self._settings.retention, strict=True))
        try:
            table = tomllib.loads(Path(record.config_path or "").read_text(encoding="utf-8")).get(
                "dpipe_tui", {}
            )
        except (OSError, ValueError):
            table = {}
        if isinstance(table, dict) and any(table.get(k) is not None for k in keys):
            values = {k: table.get(k) for k in keys}
        policy = Policy(
            keep_last=values["keep_last_saves"], keep_every=values["keep_every"], states=values["keep_states"]
        )
        return None if policy.empty else policy

    def _apply_retention(self, run_folder: str | None, *, live: bool) -> list[Event]:
        """Prune the run folder by the retention policy; an ``info`` event per removal."""
        self._retention_due = False
        if self._retention is None or run_folder is None:
            return []
        from dpipe_tui.checkpoints.inventory import scan_run_folder
        from dpipe_tui.checkpoints.pins import Pins
        from dpipe_tui.checkpoints.prune import execute, plan_prune

        try:
            inv = scan_run_folder(Path(run_folder))
            plan = plan_prune(inv, self._retention, pinned=Pins(self.registry.home).load(), live=live)
            removed = execute(plan)
        except OSError as exc:
            log.warning("retention in %s failed: %s", run_folder, exc)
            return []
        out: list[Event] = []
        for r in removed:
            message = f"retention removed {r.name} ({r.size / 2**20:.1f} MiB): {r.why}"
            if self._console is not None:
                self._console.write_note(f"dpipe-tui: {message}")
            out.append(
                Event(EventKind.INFO, time.time(), {"code": "retention", "value": r.name, "message": message})
            )
        return out

    def _claim(self) -> bool:
        me, started = os.getpid(), procs.start_time(os.getpid())
        (self.run_dir / MONITOR_PID).write_text(f"{me}\n", encoding="utf-8")
        os.chmod(self.run_dir / MONITOR_PID, 0o600)

        def claim(current: RunRecord) -> RunRecord:
            return dataclasses.replace(current, monitor_pid=me, monitor_started=started)

        record = self.registry.update(self.run_id, claim)
        if record.state is not RunState.STARTING:
            log.warning("run %s is %s, not starting; nothing to do", self.run_id, record.state.value)
            return False
        return True

    # -- one attempt ------------------------------------------------------------------------------
    def _attempt(self) -> RunRecord | None:
        record = self.registry.load(self.run_id)
        if record.state is not RunState.STARTING:
            return None
        if record.stop_requested:
            return self._finish(record, exit_code=None, summary=RunSummary(), failure=None, stopped=True)
        assert record.master_port is not None
        command = build_command(record, record.master_port)
        env = dict(os.environ)
        env.update({k: v for k, v in command.env.items() if v != "***"})
        output_dir = Path(record.output_dir) if record.output_dir else None
        before = snapshot_entries(output_dir)
        with (
            open(self.run_dir / CONSOLE_LOG, "ab") as console_fh,
            MetricsAppender(
                self.run_dir / METRICS, kinds=FOLDED_KINDS, recent_kind="step", recent=RECENT_STEPS
            ) as metrics,
        ):
            os.chmod(self.run_dir / CONSOLE_LOG, 0o600)
            console = self._console = ConsoleWriter(console_fh)
            self._retention = self._retention_policy(record)
            if record.attempt > 1 or console_fh.tell() > 0:
                resume = f" (resume from {record.resume_tag})" if record.resume_tag else ""
                stamp = time.strftime("%Y-%m-%d %H:%M:%S")
                console.write_note(f"==== dpipe-tui: attempt {record.attempt}{resume}, {stamp} ====")
            self._escalation, self._stop_events, self._console = None, [], console
            try:
                proc = self.spawn(list(command.argv), str(command.cwd), env)
            except OSError as exc:
                console.write_note(f"dpipe-tui: cannot start {command.argv[0]}: {exc}")
                launch_failure = FailureInfo(
                    "launch_error",
                    f"cannot start {command.argv[0]}: {exc}",
                    "Check the engine settings (diffusion-pipe path, deepspeed executable).",
                )
                return self._finish(record, exit_code=None, summary=RunSummary(), failure=launch_failure)
            pid_started = procs.start_time(proc.pid)
            record = self.registry.update(
                self.run_id,
                lambda cur: transition(
                    cur,
                    RunState.RUNNING,
                    pid=proc.pid,
                    pid_started=pid_started,
                    pgid=proc.pid,
                    phase="launching",
                    argv=tuple(redact.redact_argv(command.argv)),
                    env=redact.redact_env(command.env),
                ),
            )
            if record.stop_requested:
                procs.terminate_group(proc.pid)
            summary = RunSummary(run_folder=record.engine_run_dir)
            sidecar = Sidecar(
                record.id,
                record.gpus,
                cpu=record.cpu,
                run_folder=record.engine_run_dir,
                peak_vram=record.peak_vram_bytes,
            )
            events = self._pump(proc, console, metrics, summary, output_dir, before, sidecar)
            exit_code = proc.wait()
            if summary.run_folder is None and output_dir is not None:
                summary.run_folder = discover_run_folder(output_dir, before)
            # the last scalars (epoch loss, final eval) land at exit; tensorboardX flushes on close
            tail = sidecar.poll(summary.run_folder, None, final=True)
            metrics.write(tail)
            leftovers = procs.group_members(proc.pid)
            if leftovers:
                console.write_note(f"dpipe-tui: engine exited; ending {len(leftovers)} leftover process(es)")
                procs.terminate_group(proc.pid, steps=((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)))
            if self._escalation is not None and not self._escalation.done:
                self._escalation.tick()  # the group is empty now: the stop's last step
            metrics.write(self._apply_retention(summary.run_folder, live=False))
            metrics.write(self._stop_events)
            self._stop_events = []
            console.write_note(f"==== dpipe-tui: engine exited with code {exit_code} ====")
        failure = classify(exit_code, list(events), list(console.tail), config_path=record.config_path)
        return self._finish(record, exit_code=exit_code, summary=summary, failure=failure)

    def _pump(
        self,
        proc: subprocess.Popen[bytes],
        console: ConsoleWriter,
        metrics: MetricsAppender,
        summary: RunSummary,
        output_dir: Path | None,
        before: set[str],
        sidecar: Sidecar,
    ) -> deque[Event]:
        """Copy output to the log and the parser until EOF (or shortly after the leader exits).

        Batched: while output flows it is read at most every ``READ_BATCH_S`` (all that is there,
        in one go), and events are appended to ``metrics.jsonl`` at most every ``WRITE_BATCH_S``,
        except the ones a follower must see at once (:data:`URGENT_KINDS`). When the engine is
        quiet the monitor sleeps in ``select`` on the pipe until the next timed job is due.
        """
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        parser = make_parser()
        kept: deque[Event] = deque(maxlen=5000)
        pending: list[Event] = []
        last_record = last_write = 0.0
        exited_at: float | None = None
        eof = False
        while not eof:
            now = time.monotonic()
            ready, _, _ = select.select([fd], [], [], self._idle_timeout(now, exited_at))
            gather = False
            if ready:
                data = _read_available(fd)
                if data:
                    gather = len(data) < GATHER_BELOW  # a burst is read again at once, never throttled
                    console.feed(data)
                    fresh = parser.feed(data)
                    pending += fresh
                    if any(e.kind in _SAVED for e in fresh):  # disk use jumps at saves: look now
                        self._disk_checked = 0.0
                        self._retention_due = self._retention is not None
                    if summary.run_folder is None and any(e.kind in _FOLDER_DUE for e in fresh):
                        summary.folder_checked = 0.0  # the folder exists once training starts: look now
                else:
                    eof = True
            now = time.monotonic()
            if exited_at is None and proc.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at > EXIT_DRAIN_S:
                break  # orphans may hold the pipe open; the monitor ends them after the loop
            if eof:
                console.flush()
                pending += parser.flush()
            pending += self._timed_jobs(now, proc, summary, output_dir, before, sidecar)
            if pending and (eof or now - last_write >= WRITE_BATCH_S or _urgent(pending)):
                last_write = now
                metrics.write(pending)
                kept.extend(pending)
                summary.absorb(pending)
                pending = []
            if summary.run_folder is None and output_dir is not None and now - summary.folder_checked >= 1.0:
                summary.folder_checked = now
                summary.run_folder = discover_run_folder(output_dir, before)
                summary.dirty = summary.dirty or summary.run_folder is not None
            if summary.dirty and now - last_record >= self.record_interval:
                last_record = now
                self._record_progress(summary)
            if gather and not eof:
                time.sleep(READ_BATCH_S)  # let the pipe gather the next batch (64 KiB is ~10 s of logs)
        console.flush()
        if pending:
            metrics.write(pending)
            kept.extend(pending)
            summary.absorb(pending)
        return kept

    def _idle_timeout(self, now: float, exited_at: float | None) -> float:
        """How long ``select`` may sleep on a quiet pipe: until the next stop check (or drain end)."""
        due = self._stop_checked + STOP_CHECK_S - now
        if exited_at is not None:
            due = min(due, exited_at + EXIT_DRAIN_S - now)
        return min(max(due, 0.01), STOP_CHECK_S)

    def _timed_jobs(
        self,
        now: float,
        proc: subprocess.Popen[bytes],
        summary: RunSummary,
        output_dir: Path | None,
        before: set[str],
        sidecar: Sidecar,
    ) -> list[Event]:
        """The disk check, the stop check and the sidecar's poll, each when due; their events."""
        new: list[Event] = []
        if now - self._disk_checked >= DISK_CHECK_S:
            self._disk_checked = now
            low: list[dict[str, Any]] = []
            self._check_disk(output_dir, low, summary.run_folder)
            for event in low:
                Notifier(self._settings.notify).send(event)
        if now - self._stop_checked >= STOP_CHECK_S:
            self._stop_checked = now
            self._watch_stop(proc, summary, output_dir, before)
            new += self._stop_events
            self._stop_events = []
        if self._retention_due:
            new += self._apply_retention(summary.run_folder, live=True)
        new += sidecar.poll(summary.run_folder, proc.pid, now)
        if sidecar.peak_vram is not None and sidecar.peak_vram != summary.peak_vram:
            summary.peak_vram = sidecar.peak_vram
            summary.dirty = True
        return new

    # -- stop ---------------------------------------------------------------------------------------
    def _watch_stop(
        self, proc: subprocess.Popen[bytes], summary: RunSummary, output_dir: Path | None, before: set[str]
    ) -> None:
        """Start the stop the registry asks for, escalate it on a second (hard) request, tick it."""
        try:
            record = self.registry.load(self.run_id)
        except (RecordError, RunNotFound):
            return
        if not record.stop_requested:
            return
        if self._escalation is None:
            if summary.run_folder is None and output_dir is not None:  # look now, not at the next poll
                summary.folder_checked = time.monotonic()
                summary.run_folder = discover_run_folder(output_dir, before)
            self._escalation = self._escalation_for(record, proc, summary)
        elif record.stop_now and not self._escalation.now:
            self._escalation.escalate_now()
        if not self._escalation.done:
            self._escalation.tick()

    def _escalation_for(
        self, record: RunRecord, proc: subprocess.Popen[bytes], summary: RunSummary
    ) -> Escalation:
        steps = SIGNAL_STEPS
        if record.stop_signal_waits:
            steps = tuple(
                (sig, wait) for (sig, _), wait in zip(SIGNAL_STEPS, record.stop_signal_waits, strict=False)
            )
        timeout = record.stop_timeout_s
        if timeout is None:
            try:
                timeout = load_settings(self.registry.home).stop_timeout_s
            except SettingsError as exc:  # a bad settings file must not break a stop
                log.warning("settings unreadable (%s); waiting the default %.0fs", exc, GRACEFUL_TIMEOUT_S)
                timeout = GRACEFUL_TIMEOUT_S
        folder = summary.run_folder or record.engine_run_dir
        return Escalation(
            pgid=proc.pid,
            pid=proc.pid,
            pid_started=record.pid_started,
            run_folder=Path(folder) if folder else None,
            now=record.stop_now,
            graceful_timeout=timeout,
            signal_steps=steps,
            report=self._stop_step,
        )

    def _stop_step(self, action: str, data: dict[str, Any]) -> None:
        """One step of the stop: a ``stop`` event for followers and a note in the console."""
        self._stop_events.append(Event(EventKind.STOP, time.time(), {"action": action, **data}))
        if self._console is not None and data.get("message"):
            self._console.write_note(f"dpipe-tui: stop: {data['message']}")
        log.info("stop %s: %s", action, data.get("message", ""))

    def _record_progress(self, summary: RunSummary) -> None:
        summary.dirty = False
        self.registry.update(self.run_id, summary.apply)

    def _finish(
        self,
        record: RunRecord,
        *,
        exit_code: int | None,
        summary: RunSummary,
        failure: FailureInfo | None,
        stopped: bool = False,
    ) -> RunRecord:
        def finish(current: RunRecord) -> RunRecord:
            current = summary.apply(current)
            if current.state is RunState.STARTING and stopped:
                return transition(current, RunState.STOPPED, ended_at=time.time(), phase=None)
            if not current.state.is_live and current.state is not RunState.LOST:
                return current
            fields: dict[str, object]
            state = decide(exit_code, failure.cls if failure else None, current.stop_requested)
            if state is RunState.COMPLETED:
                fields = {"phase": "done"}
            elif state is RunState.STOPPED:
                fields = {"failure_class": None, "failure_message": None}
                if self._escalation is not None and self._escalation.done:
                    esc = self._escalation
                    fields["note"] = describe(esc.graceful, esc.signals, esc.leftovers)
                if self._disk_reason is not None:  # why it stopped comes first
                    fields["note"] = f"{self._disk_reason} ({fields.get('note') or 'stopped'})"
            else:
                found = failure or FailureInfo(
                    "exit_code", f"the engine exited with code {exit_code}", "See the console log."
                )
                fields = {
                    "failure_class": found.cls,
                    "failure_message": found.message,
                    "failure_hint": found.hint,
                }
            if current.state is RunState.STARTING and state is not RunState.STOPPED:
                current = transition(current, RunState.RUNNING)
            return transition(current, state, exit_code=exit_code, ended_at=time.time(), **fields)

        return self.registry.update(self.run_id, finish)

    def _auto_resume(self, record: RunRecord) -> bool:
        with self.registry.attempt_locked(self.run_id):
            current = self.registry.load(self.run_id)
            if current.attempt != record.attempt or not current.state.is_terminal:
                return False  # a client resumed the run meanwhile; its attempt has its own monitor
            plan = autoresume.plan(current)
            if plan is None:
                return False
            log.info("auto-resuming %s from %s (%s)", record.id, plan.tag, plan.reason)
            self.registry.update(self.run_id, lambda cur: autoresume.apply(cur, plan))
        return True


_FOLDER_DUE = frozenset({EventKind.PHASE, EventKind.STEP})
_SAVED = frozenset({EventKind.SAVE, EventKind.CHECKPOINT})


def _urgent(events: list[Event]) -> bool:
    return any(e.kind in URGENT_KINDS for e in events)


def _read_available(fd: int, limit: int = 1 << 20) -> bytes:
    """Everything the pipe holds now, up to ``limit`` bytes (b"" at EOF); blocks only for the first read."""
    data = os.read(fd, 1 << 16)
    chunks = [data]
    total = len(data)
    while len(data) == 1 << 16 and total < limit and select.select([fd], [], [], 0)[0]:
        data = os.read(fd, 1 << 16)
        if not data:
            break  # EOF after data: the next select reports it again
        chunks.append(data)
        total += len(data)
    return b"".join(chunks)


def _ignore(signum: int, frame: object) -> None:
    log.info("ignoring signal %d (the monitor ends when its engine ends)", signum)


def main(argv: list[str] | None = None) -> int:
    """Entry point; ``argv`` is ``[run_dir]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m dpipe_tui.supervisor.monitor RUN_DIR", file=sys.stderr)
        return 2
    # A Python-level no-op handler, not SIG_IGN: ignored dispositions survive exec and would make the
    # engine deaf to the SIGINT/SIGTERM that ``stop`` sends; handlers are reset to default on exec.
    for sig in (signal.SIGHUP, signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _ignore)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s monitor[%(process)d] %(levelname)s %(message)s"
    )
    run_dir = Path(args[0]).resolve()
    registry = Registry(run_dir.parent.parent)
    try:
        Monitor(registry, run_dir.name).run()
    except Exception:
        log.exception("monitor of %s failed", run_dir.name)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
