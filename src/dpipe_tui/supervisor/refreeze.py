"""Preparing a new attempt's profile: re-freeze the user's current profile and vet the changes.

Why: diffusion-pipe resumes with the config on the command line (spec §5.6), so a resume uses the
profile as the user has it now, frozen again; but a change of model/adapter/pipeline_stages makes the
checkpoint unloadable, so such a resume is refused unless forced, and dataloader-moving changes come
back as warnings (see :mod:`dpipe_tui.supervisor.profile_diff`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from dpipe_tui.runs.registry import MONITOR_PID, Registry
from dpipe_tui.supervisor.profile_diff import compare
from dpipe_tui.supervisor.submit import freeze

if TYPE_CHECKING:
    from dpipe_tui.runs.model import RunRecord


class ResumeRefused(RuntimeError):
    """The new attempt cannot use the current profile."""


def refreeze_for_resume(registry: Registry, record: RunRecord, *, force: bool) -> list[str]:
    """Freeze the user's current profile for a new attempt; return warnings about resume-relevant changes.

    Raises:
        ResumeRefused: the profile cannot be frozen, or it changed in a way that breaks loading
            (unless ``force``).
    """
    profile, run_dir = Path(record.profile_path), registry.run_dir(record.id)
    if not profile.is_file() or record.config_path is None or record.base_dir is None:
        return [f"{profile} is gone; resuming with the frozen copy"] if not profile.is_file() else []
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".refreeze-") as tmp:
        try:
            fresh = freeze(profile, Path(tmp), Path(record.base_dir))
        except Exception as exc:  # ProfileError and I/O errors alike: refuse with the reason
            raise ResumeRefused(f"cannot use the current profile {profile}: {exc}") from exc
        changes = compare(Path(record.config_path), fresh)
        fatal = [c for c in changes if c.breaks_loading]
        if fatal and not force:
            raise ResumeRefused("; ".join(c.message for c in fatal) + " (use --force to resume anyway)")
        differs = bool(changes) or _differs(Path(record.config_path), fresh)
    if differs:  # freeze again in place: the copy's `dataset` key must name the run folder's dataset.toml
        freeze(profile, run_dir, Path(record.base_dir))
    return [c.message for c in changes]


def _differs(a: Path, b: Path) -> bool:
    try:
        old = a.read_text(encoding="utf-8").replace(str(a.parent), "")
        new = b.read_text(encoding="utf-8").replace(str(b.parent), "")
    except OSError:
        return True
    return old != new


def monitor_running(registry: Registry, run_id: str) -> bool:
    """True when the pid in ``monitor.pid`` is a live monitor of this run (for unreadable records)."""
    try:
        pid = int((registry.run_dir(run_id) / MONITOR_PID).read_text().strip())
        cmdline = psutil.Process(pid).cmdline()
    except (OSError, ValueError, psutil.Error):
        return False
    return "dpipe_tui.supervisor.monitor" in cmdline and str(registry.run_dir(run_id)) in cmdline
