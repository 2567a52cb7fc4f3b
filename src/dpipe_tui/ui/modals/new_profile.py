"""New profile from a recipe: pick the model family, name it, choose the folder.

Why a modal over the CLI's ``new``: the same service (the cockpit's ``new_profile``) makes both
files, and the editor opens the new main profile at once, its ``/path/to`` placeholders listed as
errors to fill in.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Select, Static

if TYPE_CHECKING:
    from textual.app import ComposeResult


class NewProfileModal(ModalScreen[tuple[str, str, Path] | None]):
    """Dismisses with (recipe, name, folder), or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    NewProfileModal { align: center middle; }
    NewProfileModal > Vertical { width: 90%; max-width: 80; height: auto; border: thick $accent;
                                 background: $panel; padding: 1 2; }
    NewProfileModal .keys { margin-top: 1; color: $text-muted; }
    """

    def __init__(self, recipes: list[tuple[str, str]], folder: Path) -> None:
        """``recipes``: (name, description) pairs; ``folder``: where the files go by default."""
        super().__init__()
        self.recipes = recipes
        self.folder = folder

    def compose(self) -> ComposeResult:
        """Recipe, name, folder."""
        with Vertical():
            yield Static("New profile from a recipe", markup=False)
            yield Select(
                [(f"{name}: {desc}"[:70], name) for name, desc in self.recipes],
                prompt="recipe (model family)",
                id="recipe",
            )
            yield Input(placeholder="name (letters, digits, . _ -)", id="name")
            yield Input(str(self.folder), placeholder="folder", id="folder")
            yield Static("Enter in the folder box creates it    Esc: cancel", classes="keys", markup=False)

    @on(Input.Submitted)
    def create(self, event: Input.Submitted) -> None:
        """Enter: create (in the name box, move on to the folder first)."""
        if event.input.id == "name":
            self.query_one("#folder", Input).focus()
            return
        recipe = self.query_one("#recipe", Select).value
        name = self.query_one("#name", Input).value.strip()
        if recipe is Select.NULL or not name:
            self.notify("pick a recipe and type a name", severity="warning")
            return
        folder = Path(self.query_one("#folder", Input).value.strip() or ".").expanduser()
        self.dismiss((str(recipe), name, folder))

    def action_cancel(self) -> None:
        """Close without creating anything."""
        self.dismiss(None)
