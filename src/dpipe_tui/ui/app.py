"""The Textual app: the dashboard first, a run view per run, help; one cockpit injected.

Why so little here: the app is a thin client of the cockpit (the services facade). It holds no state
the registry does not have; screens poll the cockpit in thread workers and render what comes back,
so the app can be killed at any moment and a new one shows the same truth. It logs to a file in the
home's state folder, never to the terminal it draws on.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType

from dpipe_tui.services.errors import Refusal
from dpipe_tui.ui.messages import OpenEditor, OpenNewRun, OpenRun
from dpipe_tui.ui.screens.dashboard import DashboardScreen
from dpipe_tui.ui.screens.help import HelpScreen

if TYPE_CHECKING:
    from collections.abc import Iterable

    from textual.screen import Screen

    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.services.profiles import ProfileSummary

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
        Binding("q", "quit", "Quit", id="app.quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("question_mark,f1", "help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        cockpit: Cockpit,
        *,
        ascii_only: bool = False,
        open_run: str | None = None,
        edit: Path | None = None,
    ) -> None:
        """The app over ``cockpit``; ``edit``: open only the editor on this file (``dpipe-tui edit``)."""
        super().__init__()
        self.cockpit = cockpit
        self.ascii_only = ascii_only
        self._open_run = open_run
        self._edit = edit

    def on_mount(self) -> None:
        """The dashboard first; then the run asked for, if any (or only the editor)."""
        if self._edit is not None:
            from dpipe_tui.ui.screens.editor import EditorScreen

            self.push_screen(EditorScreen(self.cockpit, self._edit, quit_on_close=True))
            self.load_keymap()
            return
        self.push_screen(DashboardScreen(self.cockpit, ascii_only=self.ascii_only))
        if self._open_run is not None:
            self.action_open_run(self._open_run)
        self.load_keymap()

    @work(thread=True, exclusive=True, group="keymap", exit_on_error=False)
    def load_keymap(self) -> None:
        """Apply ``[keymap]`` from the settings (read in a thread); unknown ids are reported."""
        try:
            pairs = self.cockpit.settings().keymap
        except Exception as exc:  # a bad settings file is shown, the default keys stay
            self.call_from_thread(self.notify, str(exc), severity="error", timeout=10)
            return
        if not pairs:
            return
        from dpipe_tui.ui.keymap import check

        good, unknown = check(pairs)
        self.call_from_thread(self._apply_keymap, good, unknown)

    def _apply_keymap(self, keymap: dict[str, str], unknown: list[str]) -> None:
        self.set_keymap(keymap)
        if unknown:
            self.notify(
                f"{self.cockpit.settings_path}: [keymap] names no binding {', '.join(unknown)} "
                "(help, ?, lists the ids)",
                severity="warning",
                timeout=10,
            )

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The palette (ctrl+p): Textual's own commands, every key of the screen by its name, New
        run, and every run of the registry by id (from the dashboard's last listing: no file work)."""
        yield from super().get_system_commands(screen)
        seen = {"Quit", "Help", "Command palette"}
        for active in screen.active_bindings.values():
            binding = active.binding
            if not binding.description or binding.description in seen or not active.enabled:
                continue
            seen.add(binding.description)
            help_text = f"key: {binding.key_display or binding.key}"
            yield SystemCommand(
                binding.description, help_text, partial(self.run_action, binding.action, active.node)
            )
        yield SystemCommand("Help", "Keys and notes of this screen", self.action_help)
        if "New run" not in seen:
            yield SystemCommand(
                "New run", "Pick a profile, validate it, launch or queue", self.action_new_run
            )
        yield SystemCommand(
            "New profile from a recipe",
            "Pick a model family and a name; opens the editor",
            self.action_new_profile,
        )
        for summary in self._profiles:
            yield SystemCommand(
                f"Edit {summary.name}",
                f"{summary.kind} profile · {summary.path}",
                partial(self.post_message, OpenEditor(summary.path)),
            )
        dashboard = next((s for s in self.screen_stack if isinstance(s, DashboardScreen)), None)
        for status in dashboard.statuses if dashboard is not None else ():
            record = status.record
            yield SystemCommand(
                f"Run {record.id}",
                f"{record.state.value} · {record.profile_stem} · {record.model_type or '-'}: open it",
                partial(self.action_open_run, record.id),
            )

    @on(OpenRun)
    def open_run(self, message: OpenRun) -> None:
        """A screen asked for a run view."""
        self.action_open_run(message.run_id)

    @on(OpenEditor)
    def open_editor(self, message: OpenEditor) -> None:
        """A screen asked for the profile editor."""
        from dpipe_tui.ui.screens.editor import EditorScreen

        self.push_screen(
            EditorScreen(self.cockpit, message.path, read_only=message.read_only, title=message.title)
        )

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

    def action_new_profile(self) -> None:
        """Create a profile from a recipe (in the first profile folder) and open it in the editor."""
        from dpipe_tui.ui.modals.new_profile import NewProfileModal

        recipes = [(r.name, r.description or "") for r in self.cockpit.recipes()]
        folder = self.cockpit.profile_dirs[0] if self.cockpit.profile_dirs else Path.cwd()

        def answered(result: tuple[str, str, Path] | None) -> None:
            if result is None:
                return
            recipe, name, where = result
            try:
                created = self.cockpit.new_profile(recipe, name, where)
            except Refusal as exc:
                self.notify(exc.message, severity="error", timeout=8)
                return
            self.notify(f"created {created.main} and {created.dataset.name}")
            self.post_message(OpenEditor(created.main))

        self.push_screen(NewProfileModal(recipes, folder), answered)

    @property
    def _profiles(self) -> list[ProfileSummary]:
        """The profile library as the palette lists it (read once, when the palette first asks)."""
        if self._profile_cache is None:
            try:
                self._profile_cache = self.cockpit.profiles()
            except Exception:  # a listing problem must not break the palette
                self._profile_cache = []
        return self._profile_cache

    _profile_cache: list[ProfileSummary] | None = None

    async def action_quit(self) -> None:
        """Quit, unless an editor holds unsaved changes: then ask there first."""
        from dpipe_tui.ui.screens.editor import EditorScreen

        editors = [s for s in self.screen_stack if isinstance(s, EditorScreen)]
        unsaved = next((e for e in reversed(editors) if e.has_unsaved()), None)
        if unsaved is None:
            self.exit()
            return
        if self.screen is not unsaved:
            self.notify("an editor has unsaved changes: save or discard them first", severity="warning")
            return
        unsaved.leave(self.exit)

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
