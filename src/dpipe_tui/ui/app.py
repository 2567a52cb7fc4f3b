"""The Textual app: the dashboard first, a run view per run, help; one cockpit injected.

Why so little here: the app is a thin client of the cockpit (the services facade). It holds no state
the registry does not have; screens poll the cockpit in thread workers and render what comes back,
so the app can be killed at any moment and a new one shows the same truth. It logs to a file in the
home's state folder, never to the terminal it draws on.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, ClassVar

from textual import on
from textual.app import App
from textual.binding import Binding, BindingType

from dpipe_tui.ui.messages import OpenNewRun, OpenRun
from dpipe_tui.ui.screens.dashboard import DashboardScreen
from dpipe_tui.ui.screens.help import HelpScreen

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.services.cockpit import Cockpit

log = logging.getLogger(__name__)


class DpipeApp(App[None]):
    """dpipe-tui's terminal cockpit.

    Args:
        cockpit: the services facade (a real one on a home, or a test's).
        ascii_only: no braille or block characters (terminals without them).
        open_run: a run id to open in the run view at start (``run PROFILE --tui``).
    """

    CSS_PATH = "app.tcss"
    TITLE = "dpipe-tui"
    ENABLE_COMMAND_PALETTE = True
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help"),
    ]

    def __init__(self, cockpit: Cockpit, *, ascii_only: bool = False, open_run: str | None = None) -> None:
        """The app over ``cockpit``."""
        super().__init__()
        self.cockpit = cockpit
        self.ascii_only = ascii_only
        self._open_run = open_run

    def on_mount(self) -> None:
        """The dashboard first; then the run asked for, if any."""
        self.push_screen(DashboardScreen(self.cockpit, ascii_only=self.ascii_only))
        if self._open_run is not None:
            self.action_open_run(self._open_run)

    @on(OpenRun)
    def open_run(self, message: OpenRun) -> None:
        """A screen asked for a run view."""
        self.action_open_run(message.run_id)

    @on(OpenNewRun)
    def open_new_run(self) -> None:
        """A screen asked for the New run screen."""
        self.action_new_run()

    def action_open_run(self, run_id: str) -> None:
        """Open a run's view."""
        from dpipe_tui.ui.screens.run_view import RunScreen

        self.push_screen(RunScreen(self.cockpit, run_id, ascii_only=self.ascii_only))

    def action_new_run(self) -> None:
        """Open the New run screen."""
        from dpipe_tui.ui.screens.new_run import NewRunScreen

        self.push_screen(NewRunScreen(self.cockpit))

    def action_help(self) -> None:
        """Keys of the current screen and the app."""
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))


def setup_logging(state_dir: Path) -> None:
    """Log to ``state_dir/tui.log`` (a TUI must never write to the terminal it draws on)."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    handler = logging.FileHandler(state_dir / "tui.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
