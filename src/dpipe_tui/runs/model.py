"""The run record: what ``run.json`` holds, and the only legal ways a run's state may change.

Why a frozen dataclass and an explicit transition table: several processes write the same record
over a run's life (the client that submits it, the dispatcher, the per-run monitor, ``stop``), and
every one of them must agree on what may follow what. A frozen record is changed only through
:func:`transition` (state) or :func:`dataclasses.replace` (other fields), so an illegal edge, such as
``completed -> running``, is refused in one place instead of being hoped away in each writer
(Supervisor's ``change_state``). The JSON form tolerates unknown keys (newer writers) and missing
ones (older writers) so the registry never becomes unreadable across versions.
"""

from __future__ import annotations

import dataclasses
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

SCHEMA_VERSION = 1


class RunState(StrEnum):
    """Life-cycle state of a run (design.md, "The run registry")."""

    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"
    LOST = "lost"
    EXITING = "exiting"
    """A view, never stored: the engine is gone but its (slow or stopped) monitor, still alive, has
    not recorded the outcome yet. Readers show this instead of the stored ``running``."""

    @property
    def is_live(self) -> bool:
        """True while a process may exist for the run (starting, running, or exiting)."""
        return self in (RunState.STARTING, RunState.RUNNING, RunState.EXITING)

    @property
    def is_view_only(self) -> bool:
        """True for states that readers derive and that are never written to ``run.json``."""
        return self is RunState.EXITING

    @property
    def is_terminal(self) -> bool:
        """True once the attempt has ended (a resume may start a new attempt)."""
        return self in (RunState.COMPLETED, RunState.FAILED, RunState.STOPPED, RunState.LOST)


TRANSITIONS: Mapping[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.STARTING, RunState.STOPPED}),
    RunState.STARTING: frozenset({RunState.RUNNING, RunState.FAILED, RunState.STOPPED, RunState.LOST}),
    RunState.RUNNING: frozenset({RunState.COMPLETED, RunState.FAILED, RunState.STOPPED, RunState.LOST}),
    # A resume re-queues the same run as a new attempt.
    RunState.FAILED: frozenset({RunState.QUEUED}),
    RunState.STOPPED: frozenset({RunState.QUEUED}),
    # A monitor that was merely slow may still record the true outcome after a reader said "lost".
    RunState.LOST: frozenset({RunState.QUEUED, RunState.FAILED, RunState.STOPPED, RunState.COMPLETED}),
    RunState.COMPLETED: frozenset(),
    # A view (see RunState.EXITING): changes are made on the stored record, never on the view.
    RunState.EXITING: frozenset(),
}


class IllegalTransition(ValueError):
    """A state change the transition table does not allow."""


class RecordError(ValueError):
    """A ``run.json`` that cannot be read as a run record."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run, as stored in ``runs/<id>/run.json``. Times are unix seconds.

    Attributes mirror design.md; ``pid``/``pid_started`` identify the engine's process-group leader
    (the pid alone may be reused after it dies), ``monitor_pid``/``monitor_started`` the monitor.
    ``env`` holds only the overrides dpipe-tui adds, with secrets redacted; ``argv`` is redacted too.
    """

    id: str
    profile_path: str
    engine: str
    state: RunState = RunState.QUEUED
    phase: str | None = None
    created_at: float = 0.0
    queued_at: float = 0.0
    started_at: float | None = None
    ended_at: float | None = None
    config_path: str | None = None
    base_dir: str | None = None
    output_dir: str | None = None
    argv: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    launcher: str | None = None
    gpus: tuple[int, ...] = (0,)
    cpu: bool = False
    master_port: int | None = None
    extra_args: tuple[str, ...] = ()
    pid: int | None = None
    pid_started: float | None = None
    pgid: int | None = None
    monitor_pid: int | None = None
    monitor_started: float | None = None
    exit_code: int | None = None
    failure_class: str | None = None
    failure_message: str | None = None
    failure_hint: str | None = None
    engine_run_dir: str | None = None
    model_type: str | None = None
    """``[model] type`` of the frozen profile (``chroma``, ``flux``...), for listings."""
    attempt: int = 1
    resume_from: str | None = None
    resume_tag: str | None = None
    stop_requested: bool = False
    stop_now: bool = False
    """The stop skips save_quit (``stop --now``; a second request escalates a graceful stop)."""
    stop_timeout_s: float | None = None
    """How long the monitor waits for the save_quit checkpoint (None: the settings' stop_timeout_s)."""
    stop_signal_waits: tuple[float, ...] = ()
    """Seconds to wait after SIGINT, SIGTERM, SIGKILL (empty: the supervisor's defaults)."""
    stop_requested_at: float | None = None
    auto_resume: int = 0
    auto_resumes_used: int = 0
    last_step: int | None = None
    last_loss: float | None = None
    last_epoch: int | None = None
    total_steps: int | None = None
    steps_per_epoch: int | None = None
    checkpoint_tag: str | None = None
    peak_vram_bytes: float | None = None
    note: str | None = None
    schema: int = SCHEMA_VERSION

    @property
    def profile_stem(self) -> str:
        """The profile's file name without suffix."""
        return os.path.splitext(os.path.basename(self.profile_path))[0]

    def to_json_dict(self) -> dict[str, Any]:
        """Return the JSON-serialisable form written to ``run.json``."""
        data: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, RunState):
                value = value.value
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, float) and value != value:  # NaN is not valid JSON
                value = None
            data[f.name] = value
        return data

    @classmethod
    def from_json_dict(cls, data: Mapping[str, Any]) -> RunRecord:
        """Build a record from ``run.json`` content; unknown keys are ignored.

        Raises:
            RecordError: a required key is missing or a value has the wrong type.
        """
        known = {f.name: f for f in dataclasses.fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in known:
                continue
            kwargs[key] = value
        try:
            kwargs["state"] = RunState(kwargs.get("state", RunState.QUEUED))
            if kwargs["state"].is_view_only:
                raise ValueError(f"state {kwargs['state'].value!r} is a reader's view, never stored")
            for key in ("argv", "extra_args"):
                kwargs[key] = tuple(str(v) for v in _seq(kwargs.get(key, ())))
            kwargs["stop_signal_waits"] = tuple(float(v) for v in _seq(kwargs.get("stop_signal_waits", ())))
            kwargs["gpus"] = tuple(int(v) for v in _seq(kwargs.get("gpus", (0,))))
            env = kwargs.get("env", {})
            if not isinstance(env, Mapping):
                raise TypeError("env must be an object")
            kwargs["env"] = {str(k): str(v) for k, v in env.items()}
            if not isinstance(kwargs.get("id"), str) or not isinstance(kwargs.get("profile_path"), str):
                raise TypeError("id and profile_path must be strings")
            if not isinstance(kwargs.get("engine"), str):
                raise TypeError("engine must be a string")
            return cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise RecordError(f"invalid run record: {exc}") from exc


def _seq(value: Any) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    raise TypeError(f"expected a list, got {type(value).__name__}")


def transition(record: RunRecord, new: RunState, **changes: Any) -> RunRecord:
    """Return ``record`` in state ``new`` (plus ``changes``), refusing edges not in :data:`TRANSITIONS`.

    Raises:
        IllegalTransition: ``record.state -> new`` is not allowed.
    """
    if new not in TRANSITIONS[record.state]:
        raise IllegalTransition(f"run {record.id}: {record.state.value} -> {new.value} is not allowed")
    return dataclasses.replace(record, state=new, **changes)


_STEM_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def new_run_id(profile_stem: str, *, now: float | None = None) -> str:
    """Return a fresh id like ``20261122-1830-chroma-512-3f2a`` (local time, profile stem, 4 hex)."""
    stamp = time.strftime("%Y%m%d-%H%M", time.localtime(time.time() if now is None else now))
    stem = _STEM_SAFE.sub("-", profile_stem).strip("-")[:40] or "run"
    return f"{stamp}-{stem}-{os.urandom(2).hex()}"
