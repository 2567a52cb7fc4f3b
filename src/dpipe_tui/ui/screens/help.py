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

from dpipe_tui.ui.keymap import key_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from textual.app import ComposeResult


def _key_text(key: str) -> str:
    names = {"slash": "/", "question_mark": "?", "escape": "Esc", "enter": "Enter"}
    return "/".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_of(obj: object, keymap: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(keys, description, keymap id or "") of every described binding declared on ``obj``'s class and
    its bases, with the keys a user's keymap gave them."""
    out: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    for cls in type(obj).__mro__:
        for item in cls.__dict__.get("BINDINGS", ()):
            if isinstance(item, Binding):
                key, description, bid = key_of(item, keymap or {}), item.description, item.id or ""
            elif isinstance(item, tuple) and len(item) >= 3:
                key, description, bid = item[0], item[2], ""
            else:
                continue
            if description and key not in seen:
                seen.add(key)
                out.append((_key_text(key), description, bid))
    return out


class HelpScreen(ModalScreen[None]):
    """Keys and notes for ``origin`` (the screen below)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "dismiss", "Close")]

    def __init__(self, origin: Screen[object]) -> None:
        """Help about ``origin``."""
        super().__init__()
        self.origin = origin
        self.rows: list[tuple[str, str, str]] = []
        """(keys, what they do, the id a ``[keymap]`` entry moves them by) as shown."""

    def compose(self) -> ComposeResult:
        """A table of keys, the screen's notes below."""
        table = Table(show_header=True, header_style="bold", box=None, expand=True)
        table.add_column("key", no_wrap=True)
        table.add_column("does", ratio=1)
        table.add_column("keymap id", style="dim", no_wrap=True)
        keymap = dict(getattr(self.app, "_keymap", {}) or {})
        rows = bindings_of(self.origin, keymap)
        for widget in self.origin.query("*"):
            if widget.can_focus and widget.display:  # a hidden filter box's editing keys are noise
                rows += [r for r in bindings_of(widget, keymap) if r not in rows]
        rows += bindings_of(self.app, keymap)
        rows.append(("ctrl+p", "Command palette: every action and every run by name", ""))
        self.rows = rows
        for key, description, bid in rows:
            table.add_row(key, description, bid)
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
