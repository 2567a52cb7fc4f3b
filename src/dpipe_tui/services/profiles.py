"""Profile use cases shared by the CLI and the TUI: validate (with the dataset plan), list, create.

Why a service: ``dpipe-tui validate`` and the editor's live validation must say the same thing,
including the dataset summary (steps per epoch, dropped items) that needs the datasets package.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from dpipe_tui.profiles import Finding, Severity, ValidationReport, validate_file
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


def validate_files(
    paths: list[Path], *, check_paths: bool = True, gpu_count: int | None = None
) -> ValidationRun:
    """Validate each file (main or dataset config, detected); add dataset summaries for main configs.

    Args:
        paths: the files.
        check_paths: probe the filesystem; False also skips the dataset scan.
        gpu_count: GPUs of the planned run (parallelism rules and the plan's world size).
    """
    out: list[FileValidation] = []
    for path in paths:
        report = validate_file(path, check_paths=check_paths, gpu_count=gpu_count)
        fv = FileValidation(path, report)
        if check_paths and report.kind == "main" and report.config is not None:
            fv.dataset_summary, fv.summary_error = _summary(path, report, gpu_count)
        out.append(fv)
    return ValidationRun(out)
