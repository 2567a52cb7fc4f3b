"""Validation results: one :class:`Finding` per problem, located by file, line, column and dotted key.

Why a flat record instead of raising: the TUI editor marks every problem at once next to its field,
the CLI prints them as ``file:line:col`` lines (jump-to-able in editors), and ``--json`` hands them to
scripts. A finding never carries a secret value (W&B keys are reported by key only).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from pathlib import Path


class Severity(StrEnum):
    """How bad a finding is: errors stop a launch, warnings and hints do not."""

    ERROR = "error"
    WARNING = "warning"
    HINT = "hint"


@dataclass(frozen=True)
class Finding:
    """One validation problem, located as precisely as the source allows."""

    severity: Severity
    file: Path | None
    line: int | None
    column: int | None
    key: str
    """Dotted key path, e.g. ``model.transformer_path`` or ``directory[0].path``; "" for the whole file."""
    message: str
    fix: str | None
    code: str
    """Stable rule code (e.g. ``unknown-key``), for tests, filters and documentation."""

    def to_json(self) -> dict[str, Any]:
        """Plain-JSON form (paths and enums as strings)."""
        data = asdict(self)
        data["severity"] = str(self.severity)
        data["file"] = None if self.file is None else str(self.file)
        return data

    def format(self) -> str:
        """``file:line:col: severity: key: message`` plus an indented fix line when there is one."""
        where = str(self.file) if self.file is not None else "<text>"
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        key = f"{self.key}: " if self.key else ""
        text = f"{where}: {self.severity}: {key}{self.message}"
        if self.fix:
            text += f"\n  fix: {self.fix}"
        return text


ConfigKind = Literal["main", "dataset"]


@dataclass
class ValidationReport:
    """The result of validating one file (and, for a main config, the files it names)."""

    path: Path | None
    kind: ConfigKind
    findings: list[Finding] = field(default_factory=list)
    config: Any = None
    """The parsed pydantic model (``MainConfig`` or the dataset model), or None when it did not parse."""
    dataset_path: Path | None = None
    """For a main config: the resolved dataset config path (exists or not)."""
    base_dir: Path | None = None
    """The directory relative paths were resolved against."""

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity is Severity.ERROR for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        """Only the errors."""
        return [f for f in self.findings if f.severity is Severity.ERROR]


class ProfileError(Exception):
    """A profile could not be loaded; ``findings`` says where and why."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings

    def __str__(self) -> str:
        lines = [super().__str__()]
        lines.extend(f.format() for f in self.findings if f.severity is Severity.ERROR)
        return "\n".join(lines)
