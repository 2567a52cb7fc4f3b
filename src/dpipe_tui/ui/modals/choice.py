"""A question with a few lettered answers and an optional scrollable body (a diff, a key list).

Why letters: answerable over SSH without a mouse; each answer names what it does ("s save", "d
discard"), and Esc is always the harmless one (cancel: nothing changes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class ChoiceModal(ModalScreen[str | None]):
    """Ask ``question``; dismisses with the key of the chosen answer, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "choose(None)", "Cancel")]
    DEFAULT_CSS = """
    ChoiceModal { align: center middle; }
    ChoiceModal > Vertical { width: 90%; max-width: 100; height: auto; max-height: 90%;
                             border: thick $warning; background: $panel; padding: 1 2; }
    ChoiceModal VerticalScroll { height: auto; max-height: 16; margin-top: 1; }
    ChoiceModal .keys { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, question: str, answers: list[tuple[str, str]], body: str = "") -> None:
        """``answers``: (key, what it does), e.g. ``("s", "save")``; ``body``: shown scrollable."""
        super().__init__()
        self.question = question
        self.answers = answers
        self.body = body

    def compose(self) -> ComposeResult:
        """Question, body, the answers' keys."""
        with Vertical():
            yield Static(self.question, markup=False)
            if self.body:
                with VerticalScroll():
                    yield Static(self.body, markup=False, id="choice-body")
            keys = "    ".join(f"{key}: {label}" for key, label in self.answers)
            yield Static(f"{keys}    Esc: cancel", classes="keys", markup=False)

    def on_mount(self) -> None:
        """Bind each answer's key."""
        for key, label in self.answers:
            self._bindings.bind(key, f"choose('{key}')", label)

    def action_choose(self, key: str | None) -> None:
        """Close with the answer."""
        self.dismiss(key)
