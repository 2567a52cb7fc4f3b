"""Profile use cases shared by the CLI and the TUI: validate (with the dataset plan), list, create.

Why a service: ``dpipe-tui validate`` and the editor's live validation must say the same thing,
including the dataset summary (steps per epoch, dropped items) that needs the datasets package.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpipe_tui.profiles import Finding, Severity, ValidationReport, detect_kind, validate_file
from dpipe_tui.profiles.library import (
    LibraryError,
    NewProfile,
    ProfileSummary,
    Recipe,
    default_profiles_dir,
    list_profiles,
    list_recipes,
    new_profile,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "FileValidation",
    "LibraryError",
    "NewProfile",
    "ProfileSummary",
    "Recipe",
    "ValidationRun",
    "default_profiles_dir",
    "list_profiles",
    "list_recipes",
    "new_profile",
    "validate_files",
]


@dataclass
class FileValidation:
    """One validated file plus, for a main config with paths checked, its dataset plan summary."""

    path: Path
    report: ValidationReport
    dataset_summary: list[str] = field(default_factory=list)
    summary_error: str | None = None


@dataclass
class ValidationRun:
    """Every file of one ``validate`` call."""

    files: list[FileValidation]

    @property
    def findings(self) -> list[Finding]:
        """All findings of all files, in order."""
        return [f for fv in self.files for f in fv.report.findings]

    @property
    def ok(self) -> bool:
        """True when no file has an error."""
        return all(fv.report.ok for fv in self.files)

    def counts(self) -> dict[str, int]:
        """Number of findings per severity name ("error", "warning", "hint")."""
        out = {str(s): 0 for s in Severity}
        for f in self.findings:
            out[str(f.severity)] += 1
        return out


def _summary(path: Path, report: ValidationReport, gpu_count: int | None) -> tuple[list[str], str | None]:
    try:
        from dpipe_tui.datasets import DatasetConfigError, PlanError, plan_for_profile, summary_lines
    except ImportError:  # datasets package not installed in this build
        return [], "dataset summary unavailable (dpipe_tui.datasets not importable)"
    if report.base_dir is None or report.dataset_path is None or not report.dataset_path.is_file():
        return [], None
    try:
        plan = plan_for_profile(path, base_dir=report.base_dir, world_size=gpu_count or 1)
    except (PlanError, DatasetConfigError, OSError, ValueError) as exc:
        return [], f"no dataset plan: {exc}"
    return summary_lines(plan), None


def _run_base_dir(path: Path, home: Path) -> Path | None:
    """Where ``run`` would resolve this main profile's relative paths (None: not a readable main profile)."""
    from dpipe_tui.services.engines import EngineError, choose_engine
    from dpipe_tui.services.settings import SettingsError, load_settings

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        if detect_kind(data) != "main":
            return None
        table = data.get("dpipe_tui")
        return choose_engine(
            load_settings(home), home, path.resolve(), table if isinstance(table, dict) else {}
        ).base_dir
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, SettingsError, EngineError):
        return None  # the validator reports unreadable files; an unusable engine is run's error


def validate_files(
    paths: list[Path], *, check_paths: bool = True, gpu_count: int | None = None, home: Path | None = None
) -> ValidationRun:
    """Validate each file (main or dataset config, detected); add dataset summaries for main configs.

    Args:
        paths: the files.
        check_paths: probe the filesystem; False also skips the dataset scan.
        gpu_count: GPUs of the planned run (parallelism rules and the plan's world size).
        home: the dpipe-tui home; when given, a main profile's relative paths resolve exactly as
            ``run`` would resolve them (same engine choice and settings).
    """
    out: list[FileValidation] = []
    for path in paths:
        base_dir = _run_base_dir(path, home) if home is not None else None
        report = validate_file(path, check_paths=check_paths, gpu_count=gpu_count, base_dir=base_dir)
        fv = FileValidation(path, report)
        if check_paths and report.kind == "main" and report.config is not None:
            fv.dataset_summary, fv.summary_error = _summary(path, report, gpu_count)
        out.append(fv)
    return ValidationRun(out)
