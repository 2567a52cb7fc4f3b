"""One stop, carried out step by step: save_quit, a wait, then SIGINT → SIGTERM → SIGKILL to the group.

Why a non-blocking state machine: the run's monitor carries every stop (it is alive when no client
is, so closing the client mid-stop never leaves a run half-stopped), and it must keep copying the
engine's output while it waits for the checkpoint. So each :meth:`Escalation.tick` does at most one
step and returns; the monitor ticks it from its output loop. When no monitor is alive (it was killed
while the engine runs on), the client drives the very same object in a blocking loop
(:func:`run_to_end`): one escalation, two drivers, no second copy of the logic.

Why this order (spec §4.6, §5.5): diffusion-pipe has no signal handler, so a signal loses everything
since the last checkpoint, while the ``save_quit`` file makes it checkpoint and exit cleanly at the
end of the current step. Signals go to the **whole process group** (the DeepSpeed runner alone would
orphan the ranks), and the end is proven by an empty group, not by the leader's exit.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dpipe_tui import fsutil
from dpipe_tui.supervisor import procs

if TYPE_CHECKING:
    from pathlib import Path

SIGNAL_STEPS: tuple[tuple[int, float], ...] = (
    (signal.SIGINT, 10.0),
    (signal.SIGTERM, 10.0),
    (signal.SIGKILL, 5.0),
)
"""Each signal and how long to wait for the group to empty before the next."""
GRACEFUL_TIMEOUT_S = 600.0

Report = Callable[[str, dict[str, Any]], None]
"""Called with (action, data) at each step: the monitor writes a ``stop`` event and a console note."""


def create_signal_file(run_folder: Path, name: str) -> Path:
    """Create ``save``/``save_quit`` atomically (temp + rename: each rank polls on its own, spec §5.5)."""
    path = run_folder / name
    fsutil.atomic_write_text(path, "", mode=0o644)
    return path


@dataclass(slots=True)
class Escalation:
    """The stop of one engine process group.

    Args:
        pgid: the engine's process group.
        pid: the group leader (the launcher), with ``pid_started`` to guard against pid reuse.
        run_folder: the engine's run folder, where ``save_quit`` goes (None: not created yet).
        now: skip save_quit and signal at once.
        graceful_timeout: how long to wait for the save_quit checkpoint.
        signal_steps: each signal and its wait.
        report: told of each step (action, data).
        clock: monotonic time (injected in tests).
    """

    pgid: int | None
    pid: int | None
    pid_started: float | None
    run_folder: Path | None
    now: bool = False
    graceful_timeout: float = GRACEFUL_TIMEOUT_S
    signal_steps: tuple[tuple[int, float], ...] = SIGNAL_STEPS
    report: Report = field(default=lambda action, data: None)
    clock: Callable[[], float] = time.monotonic
    state: str = "start"
    """``start`` → ``graceful`` (save_quit written, waiting) → ``signals`` → ``done``."""
    signals: list[str] = field(default_factory=list)
    quit_file: Path | None = None
    leftovers: tuple[int, ...] = ()
    _deadline: float = 0.0
    _next_signal: int = 0

    @property
    def done(self) -> bool:
        """True once the group is empty (or every signal was sent and waited for)."""
        return self.state == "done"

    @property
    def graceful(self) -> bool:
        """True when the engine left through save_quit (its checkpoint saved), with no signal."""
        return self.done and self.quit_file is not None and not self.signals

    def escalate_now(self) -> None:
        """A second, hard request (``stop --now``): stop waiting for the checkpoint."""
        self.now = True
        if self.state == "graceful":
            self.state = "signals"
            self._deadline = 0.0

    def tick(self) -> bool:
        """Do the next step if it is due; return :attr:`done`."""
        if self.state == "done":
            return True
        if not procs.group_members(self.pgid):
            return self._finish()
        now = self.clock()
        if self.state == "start":
            self._begin(now)
        elif self.state == "graceful" and now >= self._deadline:
            self.report("timeout", {"message": f"no checkpoint after {self.graceful_timeout:.0f}s"})
            self.state = "signals"
            self._deadline = 0.0
        if self.state == "signals" and now >= self._deadline:
            if self._next_signal >= len(self.signal_steps):
                self.leftovers = tuple(procs.group_members(self.pgid))
                return self._finish()
            sig, wait = self.signal_steps[self._next_signal]
            self._next_signal += 1
            name = signal.Signals(sig).name
            self.signals.append(name)
            self.report(name, {"wait": wait, "message": f"sending {name} to process group {self.pgid}"})
            procs.signal_group(self.pgid, sig)
            self._deadline = now + wait
        return False

    def _begin(self, now: float) -> None:
        alive = procs.is_alive(self.pid, self.pid_started)
        folder = self.run_folder
        if not self.now and alive and folder is not None and folder.is_dir():
            self.quit_file = create_signal_file(folder, "save_quit")
            self.report(
                "save_quit",
                {
                    "wait": self.graceful_timeout,
                    "message": f"asked the engine to checkpoint and quit (save_quit); waiting up to "
                    f"{self.graceful_timeout:.0f}s",
                },
            )
            self.state = "graceful"
            self._deadline = now + self.graceful_timeout
            return
        if not self.now and not alive:
            why = "the engine has already exited; making sure its process group is empty"
        elif not self.now:
            why = "no run folder yet (still loading): stopping with signals"
        else:
            why = "stopping now: signals to the process group"
        self.report("signals", {"message": why})
        self.state = "signals"
        self._deadline = 0.0

    def _finish(self) -> bool:
        self.state = "done"
        if self.quit_file is not None and self.signals:
            self.quit_file.unlink(missing_ok=True)  # a stale save_quit would end the next resume at once
        self.report(
            "done",
            {
                "graceful": self.graceful,
                "signals": list(self.signals),
                "leftovers": list(self.leftovers),
                "message": describe(self.graceful, self.signals, self.leftovers),
            },
        )
        return True


def describe(graceful: bool, signals: Sequence[str], leftovers: Sequence[int]) -> str:
    """The one-line summary of a stop, e.g. ``stopped; checkpoint saved (save_quit)``."""
    how = (
        "checkpoint saved (save_quit)"
        if graceful
        else ("signals: " + ", ".join(signals) if signals else "already gone")
    )
    tail = f"; {len(leftovers)} process(es) still alive: {tuple(leftovers)}" if leftovers else ""
    return f"stopped; {how}{tail}"


def run_to_end(
    escalation: Escalation, *, interval: float = 0.1, sleep: Callable[[float], None] = time.sleep
) -> None:
    """Drive ``escalation`` until it is done (the client's fallback when no monitor is alive)."""
    while not escalation.tick():
        sleep(interval)
