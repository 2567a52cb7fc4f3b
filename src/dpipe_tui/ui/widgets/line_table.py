"""A keyboard-first table on Textual's line API that repaints only the rows that changed.

Why not ``DataTable``: measured with Textual 8.2.8 on a 2-core machine (style.md §5), a DataTable
updated cell by cell at 1 Hz invalidates every cached row and costs about 6 % of a core; a line-API
view that caches one :class:`Strip` per row and calls ``refresh_line`` for changed rows costs about
0.4 %. The dashboard polls every second for days, so the table keeps rows as plain cell tuples,
compares each new tuple with the old one, and repaints only the lines whose tuple changed (or all of
them when the width or the columns change).

Columns have a priority: at 80 columns the low-priority ones (engine, GPUs...) are dropped instead
of overflowing sideways, and flexible columns (ids, profile names) are shortened in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip


@dataclass(frozen=True, slots=True)
class Column:
    """One column: a header, a minimum width, a priority (lower survives longer) and alignment."""

    key: str
    header: str
    width: int
    """Minimum width in cells (the header fits, and so do typical values)."""
    priority: int = 0
    """0 = always shown; higher numbers are dropped first when the table is narrow."""
    flex: bool = False
    """Takes the width left over (ids, names); long values are shortened in the middle."""
    right: bool = False
    """Right-aligned (numbers)."""
    keep_end: bool = False
    """Shorten from the left, keeping the end (a run id's profile name and unique suffix)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One row: a stable key (a run id), its cells (one per column, in column order), a style name."""

    key: str
    cells: tuple[str, ...]
    style: str = ""
    """A Rich style for the whole row except the first cell (e.g. ``"dim"`` for ended runs)."""
    first_style: str = ""
    """A Rich style for the first cell (the state's colour)."""


def shorten(text: str, width: int, *, keep_end: bool = False) -> str:
    """``text`` in at most ``width`` cells, shortened in the middle (or at the start) with ``…``."""
    if len(text) <= width:
        return text
    if keep_end and width > 1:
        return "…" + text[len(text) - width + 1 :]
    if width <= 1:
        return text[:width]
    head = (width - 1) // 2
    tail = width - 1 - head
    return text[:head] + "…" + (text[-tail:] if tail else "")


def layout(columns: tuple[Column, ...], width: int) -> list[tuple[Column, int]]:
    """The columns that fit in ``width`` cells (1-cell gaps) and the width each gets."""
    shown = sorted(columns, key=lambda c: c.priority)
    while shown:
        need = sum(c.width for c in shown) + len(shown) - 1
        if need <= width or len(shown) == 1:
            break
        drop = max(shown, key=lambda c: c.priority)
        if drop.priority == 0:
            break
        shown.remove(drop)
    keep = [c for c in columns if c in shown]
    spare = max(0, width - (sum(c.width for c in keep) + len(keep) - 1))
    flex = [c for c in keep if c.flex]
    out: list[tuple[Column, int]] = []
    for c in keep:
        extra = spare // len(flex) if c.flex and flex else 0
        if c.flex and flex and c is flex[0]:
            extra += spare - (spare // len(flex)) * len(flex)
        out.append((c, c.width + extra))
    return out


class LineTable(ScrollView, can_focus=True):
    """A table of rows with a cursor; Enter selects. Only changed rows are repainted."""

    DEFAULT_CSS = """
    LineTable { height: 1fr; scrollbar-size-vertical: 1; }
    LineTable > .line-table--header { text-style: bold; }
    LineTable > .line-table--cursor { background: $accent 40%; }
    LineTable:focus > .line-table--cursor { background: $accent; color: $text; }
    """
    COMPONENT_CLASSES: ClassVar[set[str]] = {"line-table--header", "line-table--cursor"}
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
        Binding("home,g", "cursor_to(0)", "First", show=False),
        Binding("end,G", "cursor_to(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=True),
    ]

    cursor: reactive[int] = reactive(0, repaint=False)
    """Index of the highlighted row."""

    class Highlighted(Message):
        """The cursor moved to another row (``key`` None: the table is empty)."""

        def __init__(self, table: LineTable, key: str | None) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LineTable:
            """The table (for ``@on(..., selector)``)."""
            return self.table

    class Selected(Highlighted):
        """Enter was pressed on a row."""

        key: str

    def __init__(self, columns: tuple[Column, ...], *, empty: str = "nothing here", **kw: object) -> None:
        """A table with ``columns``; ``empty`` is shown when there are no rows."""
        super().__init__(**kw)  # type: ignore[arg-type]  # Widget's name/id/classes keywords
        self.columns = columns
        self.empty = empty
        self.rows: list[Row] = []
        self._strips: dict[int, Strip] = {}
        self._layout_width = -1
        self._layout: list[tuple[Column, int]] = []
        self.repaints = 0
        """Rows rendered since mount (benchmarks and tests read it: unchanged rows cost nothing)."""

    # -- data -------------------------------------------------------------------------------------
    @property
    def cursor_key(self) -> str | None:
        """The key of the highlighted row."""
        return self.rows[self.cursor].key if 0 <= self.cursor < len(self.rows) else None

    def set_rows(self, rows: list[Row]) -> None:
        """Show ``rows``; the cursor stays on the same key where it still exists."""
        key = self.cursor_key
        old = self.rows
        self.rows = rows
        if len(rows) != len(old):
            self.virtual_size = Size(self.size.width, len(rows) + 1)
        changed = [i for i, row in enumerate(rows) if i >= len(old) or old[i] != row]
        changed += list(range(len(rows), len(old)))  # rows that disappeared
        for i in changed:
            self._strips.pop(i, None)
        if key is not None:
            index = next((i for i, r in enumerate(rows) if r.key == key), None)
            if index is not None and index != self.cursor:
                self._move(index)
        if self.cursor >= len(rows):
            self._move(max(0, len(rows) - 1))
        if not old or not rows:
            self.refresh()
            return
        for i in changed:
            self.refresh_line(i + 1)

    # -- cursor -----------------------------------------------------------------------------------
    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows."""
        if self.rows:
            self._move(max(0, min(len(self.rows) - 1, self.cursor + delta)))

    def action_cursor_to(self, index: int) -> None:
        """Move the cursor to ``index`` (-1: the last row)."""
        if self.rows:
            self._move(index % len(self.rows))

    def action_select(self) -> None:
        """Post :class:`Selected` for the highlighted row."""
        key = self.cursor_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    def _move(self, index: int) -> None:
        old = self.cursor
        if old == index:
            return
        self.cursor = index
        for i in (old, index):
            self._strips.pop(i, None)
            self.refresh_line(i + 1)
        self.scroll_to_region_for(index)
        self.post_message(self.Highlighted(self, self.cursor_key))

    def scroll_to_region_for(self, index: int) -> None:
        """Keep row ``index`` (and the header line above the rows) in view."""
        top = self.scroll_offset.y
        visible = max(1, self.size.height - 1)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)

    def on_click(self, event: object) -> None:
        """Click a row to highlight it (a second click on it selects it)."""
        y = getattr(event, "y", None)
        if not isinstance(y, int) or y < 1:
            return
        index = self.scroll_offset.y + y - 1
        if 0 <= index < len(self.rows):
            if index == self.cursor:
                self.action_select()
            else:
                self._move(index)

    # -- rendering --------------------------------------------------------------------------------
    def on_resize(self) -> None:
        """A new width is a new layout: every row is rendered again."""
        self._strips.clear()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)

    def render_line(self, y: int) -> Strip:
        """Line 0 is the header (sticky); the rest are rows from the scroll offset on."""
        width = self.size.width
        if width != self._layout_width:
            self._layout_width = width
            self._layout = layout(self.columns, width)
            self._strips.clear()
        if y == 0:
            header = self.get_component_rich_style("line-table--header")
            return self._strip(tuple(c.header for c in self.columns), header, header, width)
        index = self.scroll_offset.y + y - 1
        if not self.rows:
            text = self.empty if y == 1 else ""
            return Strip([Segment(shorten(text, width).ljust(width), Style(dim=True))], width)
        if index >= len(self.rows):
            return Strip.blank(width, self.rich_style)  # styled: NO_COLOR's monochrome filter needs a style
        cached = self._strips.get(index)
        if cached is not None:
            return cached
        row = self.rows[index]
        style = Style.parse(row.style) if row.style else Style()
        first = Style.parse(row.first_style) if row.first_style else style
        if index == self.cursor:
            cursor = self.get_component_rich_style("line-table--cursor")
            style, first = style + cursor, first + cursor
        strip = self._strip(row.cells, style, first, width)
        self._strips[index] = strip
        self.repaints += 1
        return strip

    def _strip(self, cells: tuple[str, ...], style: Style, first: Style, width: int) -> Strip:
        by_key = {c.key: i for i, c in enumerate(self.columns)}
        segments: list[Segment] = []
        used = 0
        for n, (column, col_width) in enumerate(self._layout):
            i = by_key[column.key]
            text = shorten(cells[i] if i < len(cells) else "", col_width, keep_end=column.keep_end)
            text = text.rjust(col_width) if column.right else text.ljust(col_width)
            if n:
                segments.append(Segment(" ", style))
                used += 1
            segments.append(Segment(text, first if i == 0 else style))
            used += col_width
        if used < width:
            segments.append(Segment(" " * (width - used), style))
        return Strip(segments, max(width, used)).crop(0, width)
