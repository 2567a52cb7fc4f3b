"""Where each key of a TOML text sits: ``key path -> (line, column)``, 1-based.

Why our own scanner: tomlkit keeps comments and layout but no source positions, and the editor and
``dpipe-tui validate`` must say ``file:line:col``. This is a small best-effort lexer, not a parser:
it walks table headers (``[a.b]``, ``[[a]]`` with per-array counters), dotted keys, quoted keys,
inline tables and (multi-line) arrays, skipping strings and comments. tomlkit remains the judge of
syntax; on text it cannot follow, the scanner stops and keeps what it found.

Key paths are tuples of ``str`` (table keys) and ``int`` (array indices), e.g.
``("eval_datasets", 0, "config")`` or ``("directory", 1, "path")``.
"""

from __future__ import annotations

import bisect
import contextlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

KeyPath = tuple[str | int, ...]
Position = tuple[int, int]

_BARE = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")


class _Stop(Exception):
    """The scanner met text it cannot follow."""


class PositionIndex:
    """Positions of keys, table headers and array elements in one TOML text."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._line_starts = [0]
        for i, ch in enumerate(text):
            if ch == "\n":
                self._line_starts.append(i + 1)
        self._positions: dict[KeyPath, Position] = {}
        self._i = 0
        self._arrays: dict[KeyPath, int] = {}
        with contextlib.suppress(_Stop, IndexError):
            self._scan()

    # -- public ---------------------------------------------------------------------------------

    def get(self, path: Sequence[str | int]) -> Position | None:
        """Position of exactly ``path`` or None."""
        return self._positions.get(tuple(path))

    def nearest(self, path: Sequence[str | int]) -> Position | None:
        """Position of ``path`` or of its longest known prefix (the table that should hold it)."""
        key = tuple(path)
        while key:
            if key in self._positions:
                return self._positions[key]
            key = key[:-1]
        return None

    def paths(self) -> list[KeyPath]:
        """Every located path, in source order."""
        return list(self._positions)

    def line_col(self, offset: int) -> Position:
        """1-based line and column of a character offset."""
        line = bisect.bisect_right(self._line_starts, offset) - 1
        return line + 1, offset - self._line_starts[line] + 1

    # -- scanner --------------------------------------------------------------------------------

    def _record(self, path: KeyPath, offset: int) -> None:
        self._positions.setdefault(path, self.line_col(offset))

    def _peek(self, n: int = 1) -> str:
        return self._text[self._i : self._i + n]

    def _skip_ws(self, *, newlines: bool) -> None:
        text = self._text
        while self._i < len(text):
            ch = text[self._i]
            if ch in " \t" or (newlines and ch in "\r\n"):
                self._i += 1
            elif ch == "#" and newlines:
                self._skip_comment()
            else:
                return

    def _skip_comment(self) -> None:
        end = self._text.find("\n", self._i)
        self._i = len(self._text) if end < 0 else end

    def _scan(self) -> None:
        prefix: KeyPath = ()
        text = self._text
        while True:
            self._skip_ws(newlines=True)
            if self._i >= len(text):
                return
            start = self._i
            if self._peek(2) == "[[":
                self._i += 2
                path = self._key()
                self._expect("]]")
                index = self._arrays.get(path, 0)
                self._arrays[path] = index + 1
                self._record(path, start)
                prefix = (*path, index)
                self._record(prefix, start)
            elif self._peek() == "[":
                self._i += 1
                path = self._key()
                self._expect("]")
                prefix = path
                self._record(prefix, start)
            else:
                keys = self._key()
                self._record_key(prefix, keys, start)
                self._expect("=")
                self._value((*prefix, *keys))
            self._skip_ws(newlines=False)
            if self._peek() == "#":
                self._skip_comment()

    def _record_key(self, prefix: KeyPath, keys: KeyPath, start: int) -> None:
        for n in range(1, len(keys) + 1):
            self._record((*prefix, *keys[:n]), start)

    def _expect(self, token: str) -> None:
        self._skip_ws(newlines=False)
        if self._peek(len(token)) != token:
            raise _Stop
        self._i += len(token)

    def _key(self) -> tuple[str, ...]:
        parts: list[str] = []
        while True:
            self._skip_ws(newlines=False)
            ch = self._peek()
            if ch in ('"', "'"):
                parts.append(self._string())
            else:
                start = self._i
                while self._i < len(self._text) and self._text[self._i] in _BARE:
                    self._i += 1
                if self._i == start:
                    raise _Stop
                parts.append(self._text[start : self._i])
            self._skip_ws(newlines=False)
            if self._peek() != ".":
                return tuple(parts)
            self._i += 1

    def _string(self) -> str:
        text = self._text
        quote = text[self._i]
        if text.startswith(quote * 3, self._i):
            end = text.find(quote * 3, self._i + 3)
            if end < 0:
                raise _Stop
            while text.startswith(quote, end + 3):  # up to two quotes may end the body
                end += 1
            value = text[self._i + 3 : end]
            self._i = end + 3
            return value
        i = self._i + 1
        out: list[str] = []
        while i < len(text):
            ch = text[i]
            if ch == quote:
                self._i = i + 1
                return "".join(out)
            if ch == "\n":
                raise _Stop
            if ch == "\\" and quote == '"':
                out.append(text[i : i + 2])
                i += 2
                continue
            out.append(ch)
            i += 1
        raise _Stop

    def _value(self, path: KeyPath) -> None:
        self._skip_ws(newlines=False)
        ch = self._peek()
        if ch in ('"', "'"):
            self._string()
        elif ch == "[":
            self._array(path)
        elif ch == "{":
            self._inline_table(path)
        else:
            text = self._text
            start = self._i
            while self._i < len(text) and text[self._i] not in ",]}\n#":
                self._i += 1
            if self._i == start:
                raise _Stop

    def _array(self, path: KeyPath) -> None:
        self._i += 1
        index = 0
        while True:
            self._skip_ws(newlines=True)
            if self._peek() == "]":
                self._i += 1
                return
            self._record((*path, index), self._i)
            self._value((*path, index))
            index += 1
            self._skip_ws(newlines=True)
            if self._peek() == ",":
                self._i += 1
            elif self._peek() != "]":
                raise _Stop

    def _inline_table(self, path: KeyPath) -> None:
        self._i += 1
        while True:
            self._skip_ws(newlines=True)  # TOML 1.1 allows newlines; tolerate them
            if self._peek() == "}":
                self._i += 1
                return
            start = self._i
            keys = self._key()
            self._record_key(path, keys, start)
            self._expect("=")
            self._value((*path, *keys))
            self._skip_ws(newlines=True)
            if self._peek() == ",":
                self._i += 1
            elif self._peek() != "}":
                raise _Stop


def format_key(path: Sequence[str | int]) -> str:
    """``("directory", 0, "path")`` -> ``directory[0].path``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out
