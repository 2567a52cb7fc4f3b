"""Round-trip editing of a profile file: comments, order, quoting and unknown keys survive.

Why tomlkit and a guarded save: the profile is the user's text. Loading and saving without an edit
gives the same bytes; an edit changes the one value (a new key goes after the last key of its table,
not after the next table's leading comment); and a save refuses to overwrite a file that changed on
disk since it was loaded (another editor, a ``git pull``), so no user text is ever lost. Saves are
atomic (temp file + rename).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.container import Container
from tomlkit.items import AoT, Array, InlineTable, Item, String, Table

from dpipe_tui.fsutil import atomic_write_text
from dpipe_tui.profiles.findings import Finding, ProfileError, Severity
from dpipe_tui.profiles.positions import format_key

KeyPathLike = str | Sequence[str | int]


class ProfileChangedError(ProfileError):
    """The file changed on disk since it was loaded; saving would overwrite someone's text."""


@dataclass(frozen=True)
class _Stamp:
    mtime_ns: int
    sha256: str


def _stamp(path: Path) -> _Stamp | None:
    try:
        data = path.read_bytes()
        return _Stamp(path.stat().st_mtime_ns, hashlib.sha256(data).hexdigest())
    except FileNotFoundError:
        return None


def parse_key_path(key: KeyPathLike) -> tuple[str | int, ...]:
    """``"directory[0].path"`` or ``("directory", 0, "path")`` -> a key path tuple."""
    if not isinstance(key, str):
        return tuple(key)
    out: list[str | int] = []
    for part in key.split("."):
        name, _, rest = part.partition("[")
        if name:
            out.append(name)
        while rest:
            index, _, rest = rest.partition("]")
            out.append(int(index))
            rest = rest.lstrip("[")
    return tuple(out)


class ProfileDocument:
    """A TOML file loaded for editing. Create with :meth:`load` or :meth:`from_text`."""

    def __init__(self, text: str, path: Path | None = None, *, _stamp_: _Stamp | None = None) -> None:
        self.path = path
        self.original_text = text
        self.doc = tomlkit.parse(text)
        self._stamp = _stamp_

    @classmethod
    def load(cls, path: Path | str) -> ProfileDocument:
        """Read ``path``; raises ``tomlkit`` ParseError on bad TOML and OSError when unreadable."""
        path = Path(path)
        raw = path.read_bytes()
        stamp = _Stamp(path.stat().st_mtime_ns, hashlib.sha256(raw).hexdigest())
        return cls(raw.decode("utf-8"), path, _stamp_=stamp)

    @classmethod
    def from_text(cls, text: str, path: Path | None = None) -> ProfileDocument:
        """A document not (yet) backed by a file."""
        return cls(text, path)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def text(self) -> str:
        """The current text (identical to the loaded text when nothing was edited)."""
        return self.doc.as_string()

    @property
    def changed(self) -> bool:
        """True when the text differs from what was loaded."""
        return self.text != self.original_text

    def data(self) -> dict[str, Any]:
        """Plain Python data of the current document."""
        return self.doc.unwrap()

    def get(self, key: KeyPathLike, default: Any = None) -> Any:
        """The plain value at ``key`` or ``default``."""
        node: Any = self.doc
        for part in parse_key_path(key):
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return default
        return node.unwrap() if isinstance(node, Item | Container) else node

    # -- editing ---------------------------------------------------------------------------------

    def set(self, key: KeyPathLike, value: Any) -> None:
        """Set ``key`` to ``value``: in place when it exists, else appended to its table (created if needed).

        String values keep the quote style of the value they replace.
        """
        path = parse_key_path(key)
        if not path or not isinstance(path[-1], str):
            raise KeyError(f"cannot set {format_key(path)!r}: the last part must be a key")
        parent = self._container(path[:-1], create=True)
        name = path[-1]
        if name in parent:
            parent[name] = _like(parent[name], value)
        elif isinstance(parent, Table | tomlkit.TOMLDocument):
            _append_key(parent, name, value)
        else:
            parent[name] = value

    def delete(self, key: KeyPathLike) -> bool:
        """Remove ``key``; returns False when it was not there."""
        path = parse_key_path(key)
        try:
            parent = self._container(path[:-1], create=False)
            del parent[path[-1]]
        except (KeyError, IndexError, TypeError):
            return False
        return True

    def _container(self, path: tuple[str | int, ...], *, create: bool) -> Any:
        node: Any = self.doc
        for part in path:
            if isinstance(part, int):
                node = node[part]
                continue
            if part not in node:
                if not create:
                    raise KeyError(part)
                node[part] = tomlkit.table()
            node = node[part]
            if not isinstance(node, Table | InlineTable | AoT | Array | list | dict):
                raise KeyError(f"{format_key(path)}: {part} is not a table")
        return node

    # -- saving ----------------------------------------------------------------------------------

    def save(self, path: Path | str | None = None, *, overwrite: bool = False) -> Path:
        """Write the document atomically.

        Args:
            path: destination; default the file it was loaded from.
            overwrite: allow writing over an existing file this document was not loaded from.

        Raises:
            ProfileChangedError: the file changed on disk since it was loaded, or exists and was not ours.
        """
        dest = Path(path) if path is not None else self.path
        if dest is None:
            raise ValueError("no path to save to")
        current = _stamp(dest)
        ours = self.path is not None and dest.resolve() == self.path.resolve()
        if ours and self._stamp is not None and current is not None and current.sha256 != self._stamp.sha256:
            raise _refusal(
                dest,
                "changed on disk since it was loaded",
                "reload it (your edits are still in the editor) and apply them again",
                "changed-on-disk",
            )
        # a file of ours deleted meanwhile is written back (nothing is lost); another existing file is not
        if not ours and current is not None and not overwrite:
            raise _refusal(dest, "already exists", "choose another name", "exists")
        text = self.text
        try:
            mode = dest.stat().st_mode & 0o777  # keep the user's permissions on an existing file
        except FileNotFoundError:
            mode = 0o600
        atomic_write_text(dest, text, mode=mode)
        self.path, self.original_text, self._stamp = dest, text, _stamp(dest)
        return dest


def _like(old: Any, value: Any) -> Any:
    """``value`` as a tomlkit item styled like ``old`` (literal strings stay literal)."""
    if isinstance(old, String) and isinstance(value, str):
        literal = old.as_string().startswith("'") and "'" not in value and "\n" not in value
        return tomlkit.string(value, literal=literal)
    return value


def _append_key(table: Any, name: str, value: Any) -> None:
    """Add ``name`` after the last key of ``table`` (before trailing blank lines and comments)."""
    container: Container = table if isinstance(table, Container) else table.value
    last: str | None = None
    for key, item in container.body:
        if key is not None and not isinstance(item, Table | AoT):
            last = key.key
    if isinstance(value, str):
        value = tomlkit.string(value, literal="'" not in value and "\n" not in value)
    if last is None:
        first_table = next(
            (k.key for k, it in container.body if k is not None and isinstance(it, Table | AoT)), None
        )
        if first_table is None or isinstance(value, dict):
            container.append(name, value)
        else:
            container._insert_at(0, name, value)  # tomlkit has no public "insert before"
        return
    # tomlkit has no public "insert after" (and 0.15 dropped the private one): insert at
    # the body index after the last plain key, appending when that is the end.
    idx = 1 + max(i for i, (k, _) in enumerate(container.body) if k is not None and k.key == last)
    if idx >= len(container.body):
        container.append(name, value)
        return
    previous = container.body[idx - 1][1]
    container._insert_at(idx, name, value)
    inserted = container.body[idx][1]
    if not inserted.trivia.indent and previous.trivia.indent.strip(" \t") == "":
        inserted.trivia.indent = previous.trivia.indent


def _refusal(dest: Path, what: str, fix: str, code: str) -> ProfileChangedError:
    """The error for a save that would overwrite text the user did not hand to this document."""
    finding = Finding(Severity.ERROR, dest, None, None, "", f"the file {what}", fix, code)
    return ProfileChangedError(f"{dest} {what}; not overwriting it", [finding])
