"""A yes/no question before anything that destroys or interrupts (stop, stop now, resume).

Why a modal with letter keys: it must be answerable without a mouse over SSH, and Enter alone must
never confirm something destructive by accident, so ``y`` confirms and ``n``/Esc cancel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class ConfirmModal(ModalScreen[bool]):
    """Ask ``question``; dismisses with True on ``y``, False on ``n``/Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]
    DEFAULT_CSS = """
    ConfirmModal { align: center middle; }
    ConfirmModal > Vertical { width: 70%; max-width: 72; height: auto; border: thick $warning;
                              background: $panel; padding: 1 2; }
    ConfirmModal .keys { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, question: str, detail: str = "") -> None:
        """A question and an optional line of detail (what will happen)."""
        super().__init__()
        self.question = question
        self.detail = detail

    def compose(self) -> ComposeResult:
        """Question, detail, keys."""
        with Vertical():
            yield Static(self.question, classes="question", markup=False)
            if self.detail:
                yield Static(self.detail, classes="detail", markup=False)
            yield Static("y: yes    n / Esc: no", classes="keys")

    def action_answer(self, yes: bool) -> None:
        """Close with the answer."""
        self.dismiss(yes)
