"""Open → change one field through the form's path (the edit session) → save: exactly that line changes.

For every shipped profile, every recipe and its dataset template, and the fixtures shaped like
diffusion-pipe's example configs: every scalar field the form shows with a value in the file gets a
new value of its kind; the saved file differs from the original in that key's line only, and reads
back with the new value and every other value as it was.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import pytest

from dpipe_tui.services.editor import EditSession, FieldSpec
from tests.profiles.test_document import SHIPPED

if TYPE_CHECKING:
    from pathlib import Path


def _new_value(spec: FieldSpec, value: Any) -> Any:
    if spec.kind == "bool" or isinstance(value, bool):
        return not value
    if spec.kind == "enum":
        return next(c for c in spec.choices if c != value) if len(spec.choices) > 1 else None
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 2 + 0.5
    if isinstance(value, str):
        return value + "-x"
    return None  # lists, tables: the form edits them as TOML text (not a one-line scalar edit)


@pytest.mark.parametrize("path", SHIPPED, ids=[p.name for p in SHIPPED])
def test_one_form_edit_changes_one_line(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    original = copy.read_text()
    session = EditSession.open(copy)
    parsed = session.parse(original)
    assert parsed.ok, parsed.error
    edited = 0
    for section in session.sections(parsed):
        for spec in section.fields:
            value = EditSession.value(parsed, spec.key)
            new = None if value is None or spec.secret else _new_value(spec, value)
            if new is None:
                continue
            text = session.set_value(original, spec, new)
            diff = [
                line
                for line in difflib.unified_diff(original.splitlines(), text.splitlines(), lineterm="", n=0)
                if line[:1] in "+-" and not line.startswith(("+++", "---"))
            ]
            assert len(diff) == 2, (spec.dotted, diff)  # one line out, one line in
            assert spec.name in diff[0], (spec.dotted, diff)
            after = session.parse(text)
            assert EditSession.value(after, spec.key) == new
            edited += 1
    assert edited > 0, f"{path.name}: no scalar field to edit"
    spec, value = _first_scalar(session, parsed)
    session.save(session.set_value(original, spec, _new_value(spec, value)))  # and it saves that way
    saved = copy.read_text().splitlines()
    assert sum(a != b for a, b in zip(original.splitlines(), saved, strict=True)) == 1


def _first_scalar(session: EditSession, parsed: Any) -> tuple[FieldSpec, Any]:
    for section in session.sections(parsed):
        for spec in section.fields:
            value = EditSession.value(parsed, spec.key)
            if value is not None and not spec.secret and _new_value(spec, value) is not None:
                return spec, value
    raise AssertionError("no scalar field")
