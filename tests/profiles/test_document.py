"""ProfileDocument round trip: identical bytes, one-line edits, keys added in the right table, safe saves."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.profiles import ProfileChangedError, ProfileDocument, validate_text
from tests.profiles.conftest import DATA, REPO

if TYPE_CHECKING:
    from pathlib import Path

SHIPPED = sorted([*REPO.glob("recipes/**/*.toml"), *REPO.glob("profiles/*.toml"), *DATA.glob("*.toml")])


def _changed_lines(a: str, b: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(a.splitlines(), b.splitlines(), lineterm="", n=0)
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_round_trip_is_byte_identical(path: Path, tmp_path: Path) -> None:
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    doc = ProfileDocument.load(copy)
    assert not doc.changed
    doc.save()
    assert copy.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: str(p.relative_to(REPO)))
def test_editing_one_value_changes_one_line(path: Path) -> None:
    doc = ProfileDocument.load(path)
    key = "epochs" if doc.get("epochs") is not None else "directory[0].path"
    doc.set(key, 77 if key == "epochs" else "/elsewhere")
    diff = _changed_lines(doc.original_text, doc.text)
    assert [d[0] for d in diff] == ["-", "+"], diff


def test_string_edit_keeps_quote_style_and_comment() -> None:
    doc = ProfileDocument.from_text("a = 'x'  # keep me\nb = \"y\"\n")
    doc.set("a", "z")
    doc.set("b", "w")
    assert doc.text == "a = 'z'  # keep me\nb = \"w\"\n"


ADD_CASES = {
    "into its table, before the next table's comment": (
        "epochs = 1\n\n[model]\ntype = 'chroma'\n\n# about the optimizer\n[optimizer]\nlr = 1\n",
        {"model.dtype": "bfloat16", "save_every_n_epochs": 1},
        "epochs = 1\nsave_every_n_epochs = 1\n\n[model]\ntype = 'chroma'\ndtype = 'bfloat16'\n\n"
        "# about the optimizer\n[optimizer]\nlr = 1\n",
    ),
    "into the last table and an indented table": (
        "epochs = 1\n\n[model]\n  type = 'chroma'  # indented\n  dtype = 'bfloat16'\n\n[optimizer]\nlr = 1\n",
        {"model.transformer_dtype": "float8", "optimizer.weight_decay": 0.01},
        "epochs = 1\n\n[model]\n  type = 'chroma'  # indented\n  dtype = 'bfloat16'\n"
        "  transformer_dtype = 'float8'\n\n[optimizer]\nlr = 1\nweight_decay = 0.01\n",
    ),
}


@pytest.mark.parametrize("case", ADD_CASES)
def test_an_added_key_goes_after_its_tables_last_key(case: str) -> None:
    text, values, expected = ADD_CASES[case]
    doc = ProfileDocument.from_text(text)
    for key, value in values.items():
        doc.set(key, value)
    assert doc.text == expected
    assert validate_text(doc.text).kind == "main"


def test_add_missing_table_and_nested_values() -> None:
    doc = ProfileDocument.from_text("epochs = 1\n[[directory]]\npath = 'a'\n[[directory]]\npath = 'b'\n")
    doc.set("directory[1].num_repeats", 2)
    doc.set(("monitoring", "enable_wandb"), False)
    data = doc.data()
    assert data["directory"][1] == {"path": "b", "num_repeats": 2}
    assert data["monitoring"] == {"enable_wandb": False}
    assert doc.delete("epochs")
    assert not doc.delete("nope")


def test_refuses_to_save_over_a_file_changed_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("epochs = 1\n")
    doc = ProfileDocument.load(path)
    doc.set("epochs", 2)
    path.write_text("epochs = 1\n# someone else's edit\n")
    with pytest.raises(ProfileChangedError, match="changed on disk"):
        doc.save()
    assert path.read_text() == "epochs = 1\n# someone else's edit\n"


def test_refuses_to_overwrite_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text("x = 1\n")
    doc = ProfileDocument.from_text("epochs = 1\n")
    with pytest.raises(ProfileChangedError, match="already exists"):
        doc.save(other)
    assert other.read_text() == "x = 1\n"
    doc.save(other, overwrite=True)
    assert other.read_text() == "epochs = 1\n"


def test_save_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    doc = ProfileDocument.from_text("epochs = 1\n")
    doc.save(path)
    doc.set("epochs", 3)
    doc.save()
    assert path.read_text() == "epochs = 3\n"
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["p.toml"]
