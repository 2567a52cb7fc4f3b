"""Preparing a new attempt's profile: re-freeze the user's current profile and vet the changes.

Why: diffusion-pipe resumes with the config on the command line (spec §5.6), so a resume uses the
profile as the user has it now, frozen again; but a change of model/adapter shape/pipeline_stages
makes the checkpoint unloadable, so such a resume is refused unless forced, and other changes come
back as warnings (see :mod:`dpipe_tui.supervisor.profile_diff`).

The baseline is the configuration the *checkpoint* was trained with, not whatever ``profile.toml``
holds now (a resume re-freezes it in place). So before re-freezing, the ending attempt's configs
are kept as ``attempts/<n>.json`` in the registry's run folder, and a checkpoint is compared with the
last attempt that started before it was written.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from dpipe_tui import fsutil, paths
from dpipe_tui.runs.registry import MONITOR_PID, Registry
from dpipe_tui.supervisor.profile_diff import ConfigSnapshot, compare_snapshots
from dpipe_tui.supervisor.submit import freeze

if TYPE_CHECKING:
    from dpipe_tui.checkpoints.resume import ResumePoint
    from dpipe_tui.runs.model import RunRecord

ATTEMPTS_DIR = "attempts"


class ResumeRefused(RuntimeError):
    """The new attempt cannot use the current profile."""


def refreeze_for_resume(
    registry: Registry, record: RunRecord, *, force: bool, checkpoint: ResumePoint | None = None
) -> list[str]:
    """Freeze the user's current profile for a new attempt; return warnings about resume-relevant changes.

    Args:
        registry: the registry holding the run.
        record: the ended run (its current attempt is archived as a baseline first).
        force: resume even when a change breaks loading.
        checkpoint: the checkpoint the new attempt loads (picks the baseline; default: the ending
            attempt's configs).

    Raises:
        ResumeRefused: the profile cannot be frozen, or it changed in a way that breaks loading
            (unless ``force``).
    """
    profile, run_dir = Path(record.profile_path), registry.run_dir(record.id)
    archive_attempt(run_dir, record)
    if not profile.is_file() or record.config_path is None or record.base_dir is None:
        return [f"{profile} is gone; resuming with the frozen copy"] if not profile.is_file() else []
    baseline = baseline_for(run_dir, record, checkpoint)
    with tempfile.TemporaryDirectory(dir=run_dir, prefix=".refreeze-") as tmp:
        try:
            fresh = freeze(profile, Path(tmp), Path(record.base_dir))
        except Exception as exc:  # ProfileError and I/O errors alike: refuse with the reason
            raise ResumeRefused(f"cannot use the current profile {profile}: {exc}") from exc
        changes = compare_snapshots(baseline, ConfigSnapshot.of(fresh, len(record.gpus)))
        fatal = [c for c in changes if c.breaks_loading]
        if fatal and not force:
            raise ResumeRefused("; ".join(c.message for c in fatal) + " (use --force to resume anyway)")
        differs = bool(changes) or _differs(Path(record.config_path), fresh)
    if differs:  # freeze again in place: the copy's `dataset` key must name the run folder's dataset.toml
        freeze(profile, run_dir, Path(record.base_dir))
    return [c.message for c in changes]


def archive_attempt(run_dir: Path, record: RunRecord) -> Path | None:
    """Keep the configs ``record``'s attempt ran with (once per attempt; an existing copy stands)."""
    if record.config_path is None:
        return None
    folder = paths.ensure_private_dir(run_dir / ATTEMPTS_DIR)
    path = folder / f"{record.attempt}.json"
    if path.is_file():
        return path
    snap = ConfigSnapshot.of(Path(record.config_path), len(record.gpus))
    data = {
        "attempt": record.attempt,
        "started_at": record.started_at,
        "gpus": snap.gpus,
        "main": snap.main,
        "dataset": snap.dataset,
    }
    fsutil.atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    return path


def _archived(run_dir: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in (run_dir / ATTEMPTS_DIR).glob("*.json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("attempt"), int):
            out.append(data)
    return sorted(out, key=lambda d: int(d["attempt"]))


def baseline_for(run_dir: Path, record: RunRecord, checkpoint: ResumePoint | None) -> ConfigSnapshot:
    """The configs ``checkpoint`` was trained with: the last archived attempt started before it was
    written (auto-resumed attempts reuse their predecessor's configs, so they need no copy)."""
    archived = _archived(run_dir)
    if not archived:
        return ConfigSnapshot.of(Path(record.config_path or ""), len(record.gpus))
    # An attempt that never started (queued, then cancelled or refused) trained nothing.
    attempts = [a for a in archived if a.get("started_at") is not None] or archived
    chosen = attempts[-1]
    if checkpoint is not None:
        try:
            written = max(p.stat().st_mtime for p in checkpoint.path.iterdir())
        except (OSError, ValueError):
            written = None
        if written is not None:
            before = [a for a in attempts if (a.get("started_at") or 0.0) <= written]
            chosen = before[-1] if before else attempts[0]
    gpus = chosen.get("gpus")
    return ConfigSnapshot(
        dict(chosen.get("main") or {}),
        dict(chosen.get("dataset") or {}),
        gpus if isinstance(gpus, int) else None,
    )


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
