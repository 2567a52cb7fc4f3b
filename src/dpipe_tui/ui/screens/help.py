"""Help: the keys of the screen it was opened from (and the app's), plus that screen's own notes.

Why generated from the bindings: a hand-written key list drifts from the code; this one is read from
the screen's and the app's ``BINDINGS`` (and any ``HELP`` text a screen carries), so it is always
what the keys really do.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.table import Table
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


def _key_text(key: str) -> str:
    names = {"slash": "/", "question_mark": "?", "escape": "Esc", "enter": "Enter"}
    return "/".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_of(obj: object) -> list[tuple[str, str]]:
    """(keys, description) of every described binding declared on ``obj``'s class and its bases."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for cls in type(obj).__mro__:
        for item in cls.__dict__.get("BINDINGS", ()):
            if isinstance(item, Binding):
                key, description = item.key, item.description
            elif isinstance(item, tuple) and len(item) >= 3:
                key, description = item[0], item[2]
            else:
                continue
            if description and key not in seen:
                seen.add(key)
                out.append((_key_text(key), description))
    return out


class HelpScreen(ModalScreen[None]):
    """Keys and notes for ``origin`` (the screen below)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, origin: Screen[object]) -> None:
        """Help about ``origin``."""
        super().__init__()
        self.origin = origin
        self.rows: list[tuple[str, str]] = []
        """(keys, what they do) as shown."""

    def compose(self) -> ComposeResult:
        """A table of keys, the screen's notes below."""
        table = Table(show_header=True, header_style="bold", box=None, expand=True)
        table.add_column("key", no_wrap=True)
        table.add_column("does")
        rows = bindings_of(self.origin)
        for widget in self.origin.query("*"):
            if widget.can_focus:
                rows += [r for r in bindings_of(widget) if r not in rows]
        rows += bindings_of(self.app)
        rows.append(("ctrl+p", "Command palette: every action and every run by name"))
        self.rows = rows
        for key, description in rows:
            table.add_row(key, description)
        notes = getattr(self.origin, "HELP", "") or ""
        with VerticalScroll(id="help-box"):
            yield Static(
                f"[b]{type(self.origin).__name__.removesuffix('Screen')}[/b] — Esc closes", markup=True
            )
            yield Static(table)
            if notes:
                yield Static(notes, id="help-notes")

    def action_dismiss(self) -> None:  # type: ignore[override]  # no result to hand back
        """Close help."""
        self.dismiss(None)
