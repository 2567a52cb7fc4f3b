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
from dpipe_tui.profiles.positions import PositionIndex, format_key
from dpipe_tui.profiles.snapshot import read_profile_text

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.datasets.plan import StepPlan
    from dpipe_tui.profiles.validate import ReadText

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
    total_steps: int | None = None
    """The dataset plan's total steps (None: no plan), so a launch needs no second scan."""
    steps_per_epoch: int | None = None
    """The dataset plan's steps per epoch (None: no plan)."""


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


_PATH_CODES = frozenset({"path-missing", "path-kind", "path-demo"})
"""Findings of the path checks; a scan problem at the same key says the same thing again."""

_SEVERITY = {"error": Severity.ERROR, "warning": Severity.WARNING, "hint": Severity.HINT}


def _summary(fv: FileValidation, gpu_count: int | None, read: ReadText | None = None) -> None:
    """Fill ``fv``'s dataset summary and add the plan's problems to its findings."""
    from dpipe_tui.datasets import DatasetConfigError, PlanError, plan_for_profile, summary_lines

    report = fv.report
    if report.base_dir is None or report.dataset_path is None or not report.dataset_path.is_file():
        return
    if any(f.code == "path-demo" and f.file == report.dataset_path for f in report.findings):
        fv.summary_error = "no dataset plan yet: the demo makes its images on the first run"
        return  # a plan of folders still to be made would only list errors that will not happen
    try:
        plan = plan_for_profile(fv.path, base_dir=report.base_dir, world_size=gpu_count or 1, read=read)
    except (PlanError, DatasetConfigError, OSError, ValueError) as exc:
        fv.summary_error = f"no dataset plan: {exc}"
        return
    fv.dataset_summary = summary_lines(plan)
    fv.total_steps = int(plan.total_steps) if plan.total_steps else None
    fv.steps_per_epoch = int(plan.steps_per_epoch) if plan.steps_per_epoch else None
    report.findings.extend(plan_findings(report, plan, read))


def plan_findings(report: ValidationReport, plan: StepPlan, read: ReadText | None = None) -> list[Finding]:
    """The dataset plan's problems as findings located in the dataset config (those the path checks
    and the dataset rules of ``report`` already said are left out): what ``validate`` adds to its
    findings once it has scanned, and what the editor adds when its dataset panel has."""
    from dpipe_tui.datasets import plan_problems

    dataset = report.dataset_path
    if dataset is None:
        return []
    try:
        index = PositionIndex((read or read_profile_text)(dataset))
    except (OSError, UnicodeDecodeError):
        index = PositionIndex("")
    mine = [f for f in report.findings if f.file == dataset]
    covered = {f.key for f in mine if f.code in _PATH_CODES}
    has_errors = any(f.severity is Severity.ERROR for f in mine)
    out: list[Finding] = []
    for p in plan_problems(plan):
        key = format_key(p.key)
        if key in covered or (p.code == "dataset-settings" and has_errors):
            continue  # already reported by the path checks or the dataset rules
        line, col = index.nearest(p.key) or (1, 1)
        out.append(Finding(_SEVERITY[p.severity], dataset, line, col, key, p.message, p.fix, p.code))
    return out


def _main_table(path: Path) -> dict[str, object] | None:
    """The parsed main profile, or None when it is unreadable or not a main config."""
    try:
        data = tomllib.loads(read_profile_text(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None  # the validator reports unreadable files
    return data if detect_kind(data) == "main" else None


def _run_base_dir(path: Path, data: dict[str, object], home: Path) -> Path | None:
    """Where ``run`` would resolve this main profile's relative paths (None: no usable engine)."""
    from dpipe_tui.services.engines import EngineError, choose_engine
    from dpipe_tui.settings import SettingsError, load_settings

    table = data.get("dpipe_tui")
    try:
        return choose_engine(
            load_settings(home), home, path.resolve(), table if isinstance(table, dict) else {}
        ).base_dir
    except (SettingsError, EngineError):
        return None  # an unusable engine is run's error


def _profile_gpu_count(data: dict[str, object]) -> int | None:
    """``len([dpipe_tui] gpus)``: the GPUs ``run`` uses when none are given (None when unset)."""
    table = data.get("dpipe_tui")
    gpus = table.get("gpus") if isinstance(table, dict) else None
    if isinstance(gpus, list) and gpus and all(type(g) is int and g >= 0 for g in gpus):
        return len(gpus)
    return None  # unset, or wrong (the schema reports that)


def validate_files(
    paths: list[Path], *, check_paths: bool = True, gpu_count: int | None = None, home: Path | None = None
) -> ValidationRun:
    """Validate each file (main or dataset config, detected); add dataset summaries for main configs.

    Args:
        paths: the files.
        check_paths: probe the filesystem; False also skips the dataset scan.
        gpu_count: GPUs of the planned run (parallelism rules and the plan's world size); when None,
            a main profile's ``[dpipe_tui] gpus`` list gives it, as it does for ``run``.
        home: the dpipe-tui home; when given, a main profile's relative paths resolve exactly as
            ``run`` would resolve them (same engine choice and settings).
    """
    out: list[FileValidation] = []
    for path in paths:
        data = _main_table(path)
        base_dir = _run_base_dir(path, data, home) if home is not None and data is not None else None
        gpus = gpu_count if gpu_count is not None or data is None else _profile_gpu_count(data)
        out.append(validate_one(path, check_paths=check_paths, gpu_count=gpus, base_dir=base_dir))
    return ValidationRun(out)


def validate_one(
    path: Path,
    *,
    check_paths: bool = True,
    gpu_count: int | None = None,
    base_dir: Path | None = None,
    read: ReadText | None = None,
) -> FileValidation:
    """Validate one file exactly as ``validate`` does, dataset plan problems included.

    ``run``'s pre-flight calls this too, so a dataset diffusion-pipe would reject (empty after
    bucketing, a directory without media...) blocks the launch as it fails ``validate``.

    Args:
        path: the file (main or dataset config, detected).
        check_paths: probe the filesystem; False also skips the dataset scan.
        gpu_count: GPUs of the planned run.
        base_dir: where relative paths resolve (None: the validator's default).
        read: where the texts come from (a launch's snapshot; the disk by default).
    """
    report = validate_file(
        path,
        check_paths=check_paths,
        gpu_count=gpu_count,
        base_dir=base_dir,
        read=read or read_profile_text,
    )
    fv = FileValidation(path, report)
    if check_paths and report.kind == "main" and report.config is not None:
        _summary(fv, gpu_count, read)
    return fv


def validate_buffer(
    text: str, path: Path, *, home: Path | None = None, gpu_count: int | None = None
) -> ValidationReport:
    """Validate an unsaved editor buffer as if it were saved at ``path`` — no dataset scan.

    Relative paths resolve as ``run`` would resolve them for the file's engine (``home`` given), the
    dataset configs a main profile names are validated too, and the findings and exit semantics
    (``report.ok``) are those of ``dpipe-tui validate``. The dataset plan is
    :func:`dpipe_tui.services.datasets.plan_dataset` (a separate, cancellable, cached call).
    """
    from dpipe_tui.profiles.validate import parse_toml
    from dpipe_tui.profiles.validate import validate_buffer as validate

    data, _ = parse_toml(text, path)
    base_dir = None
    if home is not None and data is not None and detect_kind(data) == "main":
        base_dir = _run_base_dir(path, data, home)
    if gpu_count is None and data is not None:
        gpu_count = _profile_gpu_count(data)
    return validate(text, path, base_dir=base_dir, gpu_count=gpu_count)


def run_base_dir(path: Path, home: Path) -> Path | None:
    """Where ``run`` would resolve a saved main profile's relative paths (None: unreadable, no engine)."""
    data = _main_table(path)
    return _run_base_dir(path, data, home) if data is not None else None
