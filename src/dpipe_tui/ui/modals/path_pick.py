"""Pick a file or folder for a path field (the form's ctrl+o).

Why a tree: over SSH a path is long and easy to mistype; walking to it makes the value right the
first time. Enter on a file picks it; ``.`` picks the highlighted folder.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Static

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import ComposeResult


class PathPickModal(ModalScreen["Path | None"]):
    """Dismisses with the picked path, or None on Esc."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("full_stop", "pick_folder", "Pick this folder"),
    ]
    DEFAULT_CSS = """
    PathPickModal { align: center middle; }
    PathPickModal > Vertical { width: 90%; height: 80%; border: thick $accent; background: $panel; }
    PathPickModal DirectoryTree { height: 1fr; }
    PathPickModal .keys { color: $text-muted; }
    """

    def __init__(self, start: Path) -> None:
        """Browse from ``start`` (a folder)."""
        super().__init__()
        self.start = start

    def compose(self) -> ComposeResult:
        """The tree and its keys."""
        with Vertical():
            yield Static(f"pick a path under {self.start}", markup=False)
            yield DirectoryTree(self.start, id="tree")
            yield Static(
                "Enter: pick a file    .: pick the highlighted folder    Esc: cancel", classes="keys"
            )

    @on(DirectoryTree.FileSelected)
    def picked(self, event: DirectoryTree.FileSelected) -> None:
        """A file: that is the value."""
        self.dismiss(event.path)

    def action_pick_folder(self) -> None:
        """The highlighted folder (or the file's folder) is the value."""
        node = self.query_one("#tree", DirectoryTree).cursor_node
        data = node.data if node is not None else None
        path = getattr(data, "path", None)
        if path is not None:
            self.dismiss(path if path.is_dir() else path.parent)

    def action_cancel(self) -> None:
        """Close without a value."""
        self.dismiss(None)
