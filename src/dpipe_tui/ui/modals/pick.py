"""Pick one item from a short list (a checkpoint to resume from); Esc cancels."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

if TYPE_CHECKING:
    from textual.app import ComposeResult


class PickModal(ModalScreen[str | None]):
    """Choose among ``(value, label)`` options; dismisses with the value, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PickModal { align: center middle; }
    PickModal > Vertical { width: 70%; max-width: 80; height: auto; max-height: 80%; border: thick $primary;
                           background: $panel; padding: 0 1; }
    PickModal OptionList { height: auto; max-height: 16; }
    """

    def __init__(self, title: str, options: list[tuple[str, str]]) -> None:
        """A title and the options as (value, label)."""
        super().__init__()
        self.title_text = title
        self.options = options

    def compose(self) -> ComposeResult:
        """Title, the list, keys."""
        with Vertical():
            yield Static(self.title_text, markup=False)
            yield OptionList(*(Option(label, id=value) for value, label in self.options))
            yield Static("Enter: choose    Esc: cancel", classes="keys")

    @on(OptionList.OptionSelected)
    def choose(self, event: OptionList.OptionSelected) -> None:
        """Enter on an option."""
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        """Esc."""
        self.dismiss(None)
