"""A small form in a modal: labelled inputs, Enter on the last one (or ctrl+s) submits, Esc cancels.

Used where a control needs a few values before it runs (prune counts, an export's folder and name).
A field may take whole numbers only (other keys are refused as they are typed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


@dataclass(frozen=True, slots=True)
class Field:
    """One input of a :class:`FormModal`."""

    key: str
    label: str
    value: str = ""
    placeholder: str = ""
    whole: bool = False
    """Only empty or a whole number >= 0 is accepted."""


class FormModal(ModalScreen[dict[str, str] | None]):
    """Ask for ``fields``; dismisses with ``{key: text}`` or None."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "submit", "OK"),
    ]
    DEFAULT_CSS = """
    FormModal { align: center middle; }
    FormModal > Vertical { width: 90%; max-width: 76; height: auto; max-height: 90%; border: thick $accent;
                           background: $panel; padding: 0 1; }
    FormModal Label { margin-top: 1; }
    FormModal .keys { color: $text-muted; margin-top: 1; }
    """

    def __init__(self, title: str, fields: list[Field], note: str = "") -> None:
        """A title, the fields, and a line under them."""
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.note = note

    def compose(self) -> ComposeResult:
        """Title, one label and input per field, the error line, the keys."""
        with Vertical():
            yield Static(self.title_text, markup=False)
            for f in self.fields:
                yield Label(f.label, markup=False)
                yield Input(
                    value=f.value,
                    placeholder=f.placeholder,
                    id=f"field-{f.key}",
                    restrict=r"\d*" if f.whole else None,
                )
            if self.note:
                yield Static(self.note, markup=False)
            yield Static("Enter: next / OK    ctrl+s: OK    Esc: cancel", classes="keys")

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        inputs = list(self.query(Input))
        index = inputs.index(event.input)
        if index + 1 < len(inputs):
            inputs[index + 1].focus()
        else:
            self.action_submit()

    def action_submit(self) -> None:
        """Close with the values."""
        self.dismiss({f.key: self.query_one(f"#field-{f.key}", Input).value.strip() for f in self.fields})

    def action_cancel(self) -> None:
        """Close without values."""
        self.dismiss(None)
