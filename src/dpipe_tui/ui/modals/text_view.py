"""A read-only text view (a run's frozen profile): TOML highlighting where tree-sitter is available."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static, TextArea

if TYPE_CHECKING:
    from textual.app import ComposeResult


class TextViewModal(ModalScreen[None]):
    """Show ``text`` read-only under ``title``; Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "close", "Close")]
    DEFAULT_CSS = """
    TextViewModal { align: center middle; }
    TextViewModal > Vertical { width: 95%; height: 90%; border: round $primary; background: $panel; }
    TextViewModal TextArea { height: 1fr; }
    """

    def __init__(self, title: str, text: str, language: str | None = "toml") -> None:
        """A titled, read-only text."""
        super().__init__()
        self.title_text = title
        self.text = text
        self.language = language

    def compose(self) -> ComposeResult:
        """Title and the text."""
        with Vertical():
            yield Static(f"{self.title_text}  (read-only, Esc closes)", markup=False)
            area = TextArea(self.text, read_only=True, show_line_numbers=True, soft_wrap=False)
            try:
                area.language = self.language
            except Exception:  # no tree-sitter grammar installed: plain text
                area.language = None
            yield area

    def action_close(self) -> None:
        """Esc."""
        self.dismiss(None)
