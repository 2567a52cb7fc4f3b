"""The collector every check writes into, and the mapping of pydantic errors to located findings.

Why here: every rule, whatever produced it (pydantic, a cross-field check, a filesystem probe), must
come out as a :class:`Finding` with a file and a line, so the position lookup and the "did you mean"
suggestion live in one place. Checks may *claim* a key path so that a more specific finding (e.g.
HiDream's ``'nf4'``) replaces pydantic's generic one for the same key.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from dpipe_tui.profiles.findings import Finding, Severity
from dpipe_tui.profiles.positions import KeyPath, PositionIndex, format_key

if TYPE_CHECKING:
    from pathlib import Path

SECRET_KEYS = frozenset({"wandb_api_key"})
"""Keys whose values are never echoed in a message."""


@dataclass
class Context:
    """Findings of one file, with what is needed to locate them."""

    file: Path | None
    index: PositionIndex
    findings: list[Finding] = field(default_factory=list)
    claimed: set[KeyPath] = field(default_factory=set)

    def add(
        self,
        severity: Severity,
        path: Sequence[str | int],
        message: str,
        *,
        code: str,
        fix: str | None = None,
        claim: bool = False,
    ) -> None:
        """Record a finding at ``path`` (or at the nearest table that holds it; line 1 at worst)."""
        key = tuple(path)
        line, col = self.index.nearest(key) or (1, 1)
        self.findings.append(Finding(severity, self.file, line, col, format_key(key), message, fix, code))
        if claim:
            self.claimed.add(key)

    def error(self, path: Sequence[str | int], message: str, *, code: str, fix: str | None = None) -> None:
        """Shorthand for an error finding."""
        self.add(Severity.ERROR, path, message, code=code, fix=fix)

    def warning(self, path: Sequence[str | int], message: str, *, code: str, fix: str | None = None) -> None:
        """Shorthand for a warning finding."""
        self.add(Severity.WARNING, path, message, code=code, fix=fix)


def _child(cur: object, part: str | int) -> tuple[bool, object]:
    if isinstance(cur, Mapping) and part in cur:
        return True, cur[part]
    if isinstance(cur, list) and isinstance(part, int) and 0 <= part < len(cur):
        return True, cur[part]
    return False, None


def resolve_loc(loc: Sequence[str | int], data: object) -> KeyPath:
    """Turn a pydantic ``loc`` into a key path of ``data``, dropping union/tag branch names."""
    out: list[str | int] = []
    cur: object = data
    for i, part in enumerate(loc):
        found, child = _child(cur, part)
        if found:
            out.append(part)
            cur = child
        elif i == len(loc) - 1 and isinstance(cur, Mapping) and isinstance(part, str):
            out.append(part)  # a missing key
    return tuple(out)


def _message(err: Mapping[str, Any], path: KeyPath) -> str:
    msg = str(err["msg"])
    secret = any(isinstance(p, str) and p in SECRET_KEYS for p in path)
    if err["type"] not in ("missing",) and not secret and not isinstance(err.get("input"), dict | list):
        text = repr(err.get("input"))
        msg += f" (got {text if len(text) <= 60 else text[:57] + '...'})"
    return msg


def add_pydantic_errors(ctx: Context, exc: ValidationError, data: Mapping[str, Any]) -> None:
    """Add one finding per key path from a pydantic error (union branches merged into one message)."""
    grouped: dict[KeyPath, list[Mapping[str, Any]]] = {}
    for err in exc.errors():
        path = resolve_loc(err["loc"], data)
        grouped.setdefault(path, []).append(err)
    for path, errs in grouped.items():
        if path in ctx.claimed:
            continue
        if any(e["type"] == "missing" for e in errs):
            ctx.error(
                path,
                "required key is missing",
                code="missing-key",
                fix=f"add {path[-1]} = ... to {_table_name(path)}",
            )
            continue
        messages = list(dict.fromkeys(_message(e, path) for e in errs))
        code = (
            "bad-dtype"
            if any("'bfloat16'" in str(e.get("ctx", {}).get("expected", "")) for e in errs)
            else "type"
        )
        text = messages[0] if len(messages) == 1 else "expected one of: " + "; ".join(messages)
        ctx.error(path, text, code=code)


def _table_name(path: KeyPath) -> str:
    parent = format_key(path[:-1])
    return f"[{parent}]" if parent else "the top level"


def did_you_mean(key: str, candidates: Iterable[str]) -> str | None:
    """A close known key, for "did you mean" hints."""
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return match[0] if match else None


def section_classes(annotation: object) -> list[type[BaseModel]]:
    """The BaseModel classes inside an annotation (``X | None``, ``list[X]``, ...)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        out.extend(section_classes(arg))
    return out
