"""The editor's raw view: a TOML ``TextArea`` whose gutter marks the lines that have findings.

Why mark the gutter and not only list the findings: in a long profile the eye finds a red line number
faster than it reads a list. The mark is a glyph as well as a colour (``E``/``W``/``i`` in place of the
gutter's first blank), so it shows without colours too. Highlighting is tree-sitter TOML where
installed, plain text otherwise.
"""

from __future__ import annotations

from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widgets import TextArea

_MARKS: dict[str, tuple[str, Style]] = {
    "error": ("E", Style(color="white", bgcolor="red", bold=True)),
    "warning": ("W", Style(color="black", bgcolor="yellow")),
    "hint": ("i", Style(color="black", bgcolor="cyan")),
}


class TomlEditor(TextArea):
    """A code-editor ``TextArea`` for TOML with finding marks in the gutter."""

    DEFAULT_CSS: ClassVar[str] = """
    TomlEditor { height: 1fr; border: none; padding: 0; scrollbar-size-horizontal: 1; }
    TomlEditor:focus { border: none; }
    """

    def __init__(self, text: str = "", *, read_only: bool = False, id: str | None = None) -> None:
        """A TOML editor (plain text when tree-sitter's TOML grammar is missing)."""
        super().__init__(
            text,
            soft_wrap=False,
            tab_behavior="indent",
            show_line_numbers=True,
            read_only=read_only,
            id=id,
        )
        self.marks: dict[int, str] = {}
        """Document line (0-based) -> the worst severity of its findings."""
        self.indent_width = 2
        if "toml" in self.available_languages:
            self.language = "toml"
        self.theme = "css"

    def set_marks(self, marks: dict[int, str]) -> None:
        """Show these line marks (replacing the previous ones)."""
        if marks != self.marks:
            self.marks = marks
            self._line_cache.clear()
            self.refresh()

    def render_line(self, y: int) -> Strip:
        """The line as TextArea draws it, with its gutter marked when the line has a finding."""
        strip = super().render_line(y)
        line = self.scroll_offset.y + y  # soft_wrap is off: one screen row per document line
        severity = self.marks.get(line)
        gutter = self.gutter_width
        if severity is None or not self.show_line_numbers or gutter < 2:
            return strip
        glyph, style = _MARKS.get(severity, _MARKS["hint"])
        left, right = strip.crop(0, gutter), strip.crop(gutter)
        text = "".join(segment.text for segment in left)
        marked = glyph + text[1:] if text[:1] == " " else text
        return Strip.join([Strip([Segment(marked, style)], len(marked)), right])
