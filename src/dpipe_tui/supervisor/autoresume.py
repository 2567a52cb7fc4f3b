"""New attempts of a run: the shared "resume" record change, and the auto-resume policy.

Why a policy with brakes: resuming after a crash (a flaky NCCL timeout, a host OOM while caching the
next epoch) saves a night of training, but resuming after a config error or an OOM that recurs at the
same step loops forever. So the monitor auto-resumes only when the run has budget left
(``--auto-resume N``), the failure class is not one a restart cannot fix, a complete checkpoint
exists, and the checkpoint is newer than the one the failed attempt started from (progress was made).
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

from dpipe_tui.checkpoints.resume import NoCheckpoint, check_resumable, clear_signal_files
from dpipe_tui.runs.model import RunRecord, RunState, transition

# Failures a restart from the same config cannot fix.
NOT_RETRYABLE = frozenset(
    {
        "config_error",
        "missing_path",
        "no_checkpoint",
        "disk_full",
        "lots_of_resolutions",
        "cache_only",
        "launch_error",
        "save_quit",
        "user_stop",
        "incomplete",
    }
)


@dataclass(frozen=True, slots=True)
class ResumePlan:
    """Where an automatic resume continues from, and why it is allowed."""

    tag: str
    run_folder: str
    reason: str


def plan(record: RunRecord) -> ResumePlan | None:
    """Return the auto-resume to do after ``record``'s attempt ended, or None."""
    if record.state is not RunState.FAILED or record.stop_requested:
        return None
    if record.auto_resumes_used >= record.auto_resume:
        return None
    if record.failure_class in NOT_RETRYABLE or record.engine_run_dir is None:
        return None
    try:
        point = check_resumable(Path(record.engine_run_dir))
    except NoCheckpoint:
        return None
    if record.resume_tag == point.tag:
        return None  # no new checkpoint since the last resume: it would fail at the same place again
    used = record.auto_resumes_used + 1
    return ResumePlan(
        point.tag, record.engine_run_dir, f"{record.failure_class}; auto-resume {used}/{record.auto_resume}"
    )


def next_attempt(record: RunRecord, *, tag: str, run_folder: str, now: float | None = None) -> RunRecord:
    """Return ``record`` re-queued as attempt+1 resuming ``run_folder`` from checkpoint ``tag``."""
    clear_signal_files(Path(run_folder))
    return transition(
        record,
        RunState.QUEUED,
        attempt=record.attempt + 1,
        resume_from=os.path.basename(run_folder.rstrip("/")),
        resume_tag=tag,
        queued_at=time.time() if now is None else now,
        started_at=None,
        ended_at=None,
        exit_code=None,
        failure_class=None,
        failure_message=None,
        failure_hint=None,
        stop_requested=False,
        stop_now=False,
        stop_timeout_s=None,
        stop_signal_waits=(),
        stop_requested_at=None,
        pid=None,
        pid_started=None,
        pgid=None,
        phase=None,
        note=None,
    )


def apply(record: RunRecord, resume: ResumePlan) -> RunRecord:
    """The monitor's own re-launch: straight to ``starting`` (it still holds the run's GPUs)."""
    if record.state is not RunState.FAILED:
        return record
    queued = next_attempt(record, tag=resume.tag, run_folder=resume.run_folder)
    queued = dataclasses.replace(queued, auto_resumes_used=record.auto_resumes_used + 1)
    return transition(queued, RunState.STARTING, started_at=time.time())
