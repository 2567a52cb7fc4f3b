"""The profile editor: a form and the raw TOML of one buffer, validated as you type, comments kept.

Why one buffer: the form and the raw view are two views of the same text. A form edit goes through
tomlkit (the edit session) and replaces only the lines that changed, so undo in the raw view still
works and every untouched line keeps its bytes; a raw edit is parsed (debounced) and the form's
controls follow. Validation runs in a thread worker on the buffer as typed (the cockpit's
``validate_buffer``: the same findings and exit semantics as ``dpipe-tui validate``); the dataset
plan runs on the saved file, with progress and a cancel. Nothing is written until ctrl+s, and then
atomically; a file changed on disk meanwhile is offered as reload or keep-mine with a diff, and
leaving with unsaved changes asks first.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Footer, Input, OptionList, ProgressBar, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from dpipe_tui.services.editor import EditSession, FieldSpec, Parsed, watch_file
from dpipe_tui.services.errors import Refusal
from dpipe_tui.ui.modals.choice import ChoiceModal
from dpipe_tui.ui.widgets.profile_form import ProfileForm
from dpipe_tui.ui.widgets.toml_editor import TomlEditor

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from dpipe_tui.profiles import Finding, ValidationReport
    from dpipe_tui.services.cockpit import Cockpit

DEBOUNCE_S = 0.25
"""Typing pauses this long before the buffer is parsed and validated."""
_ORDER = {"error": 0, "warning": 1, "hint": 2}


class EditorScreen(Screen[None]):
    """Edit one main or dataset TOML (or view a run's frozen profile read-only)."""

    DEFAULT_CSS: ClassVar[str] = """
    EditorScreen #editor-title { height: 1; background: $boost; text-style: bold; }
    EditorScreen #editor-tabs { height: 1fr; }
    EditorScreen #editor-tabs TabPane { padding: 0; }
    EditorScreen #findings { height: 6; border: none; border-top: solid $primary-darken-2; }
    EditorScreen #field-help { height: 2; color: $text-muted; }
    EditorScreen #plan-progress { height: 1; }
    EditorScreen #plan-bar { width: 1fr; }
    EditorScreen #plan-cancel { min-width: 14; height: 1; border: none; }
    """

    HELP = (
        "F2 form, F3 TOML, F4 dataset plan. Form edits change only their own line; the TOML view is the\n"
        "same text. Findings update as you type; Enter on one jumps to it. ctrl+s saves (atomically);\n"
        "a file changed on disk is offered as reload or keep-mine. ctrl+l launches via New run."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="editor.back"),
        Binding("ctrl+s", "save", "Save", id="editor.save", priority=True),
        Binding("f2", "tab('form')", "Form", id="editor.form"),
        Binding("f3", "tab('raw')", "TOML", id="editor.raw"),
        Binding("f4", "tab('plan')", "Dataset", id="editor.plan"),
        Binding("f5", "open_dataset", "Dataset file", id="editor.dataset_file"),
        Binding("ctrl+o", "pick_path", "Pick path", id="editor.pick_path"),
        Binding("ctrl+l", "launch", "Launch", id="editor.launch"),
        Binding("ctrl+f", "findings", "Findings", id="editor.findings"),
    ]

    def __init__(
        self,
        cockpit: Cockpit,
        path: Path,
        *,
        read_only: bool = False,
        title: str = "",
        goto: tuple[int, int] | None = None,
        quit_on_close: bool = False,
    ) -> None:
        """Edit ``path``; ``goto`` (line, column) opens the raw view there; ``quit_on_close`` ends the
        app when the editor closes (``dpipe-tui edit PATH``)."""
        super().__init__()
        self.cockpit = cockpit
        self.path = Path(path).expanduser().absolute()
        self.read_only = read_only
        self.title_text = title
        self.goto = goto
        self.quit_on_close = quit_on_close
        self.session: EditSession | None = None
        self.buffer = ""
        self.parsed: Parsed | None = None
        self.report: ValidationReport | None = None
        self.findings: list[Finding] = []
        self._programmatic = False
        self._debounce: Any = None
        self._validated_text: str | None = None
        self._prompts: list[str] = []
        self._plan: Any = None
        self._offered_disk: str | None = None
        self._plan_cancel: threading.Event | None = None
        self._stop_watch = threading.Event()
        self.validated_at: float = 0.0
        """When the findings last came back (tests and the benchmark wait on it)."""
        self.plan_started_at: float = 0.0
        self.planned_at: float = 0.0
        """When the dataset panel last showed a finished plan (or why there is none)."""

    # -- layout --------------------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Title, the three views, findings, help line, keys."""
        yield Static(self._title(), id="editor-title", markup=False)
        with TabbedContent(initial="form", id="editor-tabs"):
            with TabPane("Form", id="form"):
                yield ProfileForm(read_only=self.read_only, id="profile-form")
            with TabPane("TOML", id="raw"):
                yield TomlEditor(read_only=self.read_only, id="toml")
            with TabPane("Dataset", id="plan"), Vertical(id="plan-box"):
                with Horizontal(id="plan-progress"):
                    yield ProgressBar(total=None, show_eta=False, id="plan-bar")
                    yield Button("cancel scan", id="plan-cancel", disabled=True)
                with VerticalScroll():
                    yield Static("", id="plan-text", markup=False)
        yield OptionList(id="findings")
        yield Static("", id="field-help", markup=False)
        yield Footer()

    def _title(self) -> str:
        mode = " (read-only)" if self.read_only else ""
        modified = " [modified]" if self.session is not None and self.session.is_modified(self.buffer) else ""
        return f"{self.title_text or 'edit'} {_shown_path(self.path)}{mode}{modified}"

    def on_mount(self) -> None:
        """Open the file in a worker."""
        self.query_one("#findings", OptionList).add_option(Option("opening …", disabled=True))
        self.open_file()

    def on_unmount(self) -> None:
        """Stop the watch and any scan."""
        self._stop_watch.set()
        if self._plan_cancel is not None:
            self._plan_cancel.set()

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def open_file(self) -> None:
        """Read the file (refusing what is not a text file) and show it."""
        try:
            session = self.cockpit.open_profile(self.path, read_only=self.read_only)
        except Refusal as exc:
            self.app.call_from_thread(self._cannot_open, exc.message)
            return
        self.app.call_from_thread(self._opened, session)

    def _cannot_open(self, message: str) -> None:
        self.notify(message, severity="error", timeout=10)
        self._close()

    def _opened(self, session: EditSession) -> None:
        self.session = session
        self.plan()  # first: the scan runs while the form is built (measured: better end to end)
        self._set_buffer(session.disk_text, load=True)
        if self.parsed is not None and not self.parsed.ok:
            self.action_tab("raw")
            error = self.parsed.error
            if error is not None and error.line:
                self._jump(error.line, error.column or 1)
        elif self.goto is not None:
            self.action_tab("raw")
            self._jump(*self.goto)
        if not self.read_only:
            self.watch_disk()

    # -- the buffer ------------------------------------------------------------------------------------

    def _set_buffer(self, text: str, *, load: bool = False) -> None:
        """Make ``text`` the buffer: the raw view (minimal edit), the form, then validation."""
        editor = self.query_one("#toml", TomlEditor)
        self._programmatic = True
        try:
            if load:
                editor.load_text(text)
            elif editor.text != text:
                _replace_changed_lines(editor, text)
        finally:
            self._programmatic = False
        self.buffer = text
        self._refresh_form()
        self._validate_buffer()
        self.query_one("#editor-title", Static).update(self._title())

    @on(TomlEditor.Changed, "#toml")
    def raw_edited(self, event: TomlEditor.Changed) -> None:
        """A keystroke in the raw view: debounce, then parse, refresh the form and validate."""
        if self._programmatic:
            return
        self.buffer = event.text_area.text
        self.query_one("#editor-title", Static).update(self._title())
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(DEBOUNCE_S, self._after_typing)

    def _after_typing(self) -> None:
        self._validate_buffer()  # first: the worker validates while the form catches up
        self._refresh_form()

    def _refresh_form(self) -> None:
        if self.session is None:
            return
        parsed = self.session.parse(self.buffer)
        self.parsed = parsed
        form = self.query_one("#profile-form", ProfileForm)
        model_type = ""
        not_applying: list[str] = []
        notice = ""
        if not parsed.ok:
            where = parsed.error.format() if parsed.error is not None else "?"
            notice = (
                "not valid TOML, so the form is off (the file is never rewritten from it):\n"
                f"{where}\nFix it in the TOML view (F3)."
            )
        elif parsed.kind == "main":
            model = parsed.data.get("model") if parsed.data else None
            model_type = str(model.get("type", "")) if isinstance(model, dict) else ""
            not_applying = self.session.keys_not_applying(parsed, model_type)
        form.show(
            self.session.sections(parsed),
            lambda spec: EditSession.value(parsed, spec.key),
            marks=self._field_marks(),
            not_applying=not_applying,
            model_type=model_type,
            notice=notice,
        )

    def _field_marks(self) -> dict[str, str]:
        """Dotted key -> the worst severity of this file's findings at that key."""
        return {
            f.key: str(f.severity)
            for f in sorted(self.findings, key=lambda f: -_ORDER.get(str(f.severity), 3))
            if f.file is not None and Path(f.file) == self.path and f.key
        }

    @on(ProfileForm.Changed)
    def form_edited(self, event: ProfileForm.Changed) -> None:
        """A form edit: through the session (tomlkit), so only that key's line changes."""
        if self.session is None:
            return
        try:
            text = self.session.set_value(self.buffer, event.spec, event.value)
        except Refusal as exc:
            self.notify(exc.message, severity="error", timeout=8)
            self._refresh_form()  # put the control back to the buffer's value
            return
        self._set_buffer(text)

    @on(ProfileForm.Invalid)
    def form_invalid(self, event: ProfileForm.Invalid) -> None:
        """Text that is no value of the field: said in the help line; the buffer keeps its value."""
        self.query_one("#field-help", Static).update(f"✗ {event.message}")

    @on(ProfileForm.FieldFocused)
    def field_focused(self, event: ProfileForm.FieldFocused) -> None:
        """The focused field's help, default and unit."""
        spec = event.spec
        extra = [f"default {spec.default}" if spec.default else ("required" if spec.required else "optional")]
        if spec.unit:
            extra.append(f"unit: {spec.unit}")
        if spec.kind == "path":
            extra.append("ctrl+o picks")
        help_text = " ".join(spec.help.split())
        self.query_one("#field-help", Static).update(f"{spec.dotted} ({', '.join(extra)}): {help_text}")

    @on(ProfileForm.RemoveNotApplying)
    def remove_not_applying(self, event: ProfileForm.RemoveNotApplying) -> None:
        """Remove the ``[model]`` keys the chosen type does not read (asked first, with the list)."""
        if self.session is None or not event.keys:
            return
        session = self.session

        def answered(key: str | None) -> None:
            if key == "r":
                self._set_buffer(session.remove_keys(self.buffer, [("model", k) for k in event.keys]))

        self.app.push_screen(
            ChoiceModal(
                f"Remove {len(event.keys)} key(s) from [model]?",
                [("r", "remove them")],
                "\n".join(event.keys),
            ),
            answered,
        )

    # -- validation ------------------------------------------------------------------------------------

    def _validate_buffer(self) -> None:
        if self.session is not None and self.buffer != self._validated_text:
            self.validate(self.buffer)

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self, text: str) -> None:
        """Validate the buffer as if saved (the dataset configs it names too; no media scan)."""
        try:
            report = self.cockpit.validate_buffer(text, self.path)
        except Exception as exc:  # a validator bug must not kill the editor; say it
            self.app.call_from_thread(self.notify, f"validation failed: {exc}", severity="error")
            return
        self.app.call_from_thread(self._validated, text, report)

    def _validated(self, text: str, report: ValidationReport) -> None:
        if text != self.buffer:
            return  # typed on meanwhile: the next validation is coming
        self._validated_text = text
        self.report = report
        self._show_findings(report)
        self.validated_at = time.monotonic()

    def _show_findings(self, report: ValidationReport) -> None:
        """The buffer's findings (and, while it is the saved file, its dataset plan's) in the list,
        the gutter and beside the fields."""
        found = list(report.findings)
        if self._plan is not None and self.session is not None and not self.session.is_modified(self.buffer):
            found += self.cockpit.plan_findings(report, self._plan)  # as `validate` has them after its scan
        self.findings = sorted(
            found, key=lambda f: (Path(f.file) != self.path if f.file else True, f.line or 0, f.column or 0)
        )
        counts = {s: sum(1 for f in self.findings if str(f.severity) == s) for s in _ORDER}
        head = f"{counts['error']} error(s), {counts['warning']} warning(s), {counts['hint']} hint(s)"
        prompts = [("errors block a launch: " if counts["error"] else "ok: ") + head]
        for f in self.findings:
            where = f"{f.line}:{f.column or 1}" if f.line else "-"
            other = "" if f.file is None or Path(f.file) == self.path else f"{Path(f.file).name}:"
            prompts.append(f"{other}{where} {f.severity} {f.key + ': ' if f.key else ''}{f.message}")
        if prompts != self._prompts:  # most keystrokes change no finding: no list rebuild, no repaint
            self._prompts = prompts
            listing = self.query_one("#findings", OptionList)
            listing.clear_options()
            listing.add_options(
                [
                    Option(prompts[0], disabled=True),
                    *(Option(p, id=str(i)) for i, p in enumerate(prompts[1:])),
                ]
            )
        self.query_one("#toml", TomlEditor).set_marks(
            {
                f.line - 1: str(f.severity)
                for f in sorted(self.findings, key=lambda f: -_ORDER.get(str(f.severity), 3))
                if f.line and (f.file is None or Path(f.file) == self.path)
            }
        )
        parsed = self.parsed
        if parsed is not None and parsed.ok:  # the marks beside the fields; the values are current
            self.query_one("#profile-form", ProfileForm).mark(
                lambda spec: EditSession.value(parsed, spec.key), self._field_marks()
            )

    @on(OptionList.OptionSelected, "#findings")
    def jump_to_finding(self, event: OptionList.OptionSelected) -> None:
        """Enter on a finding: its line and column in the raw view (or that file in a new editor)."""
        if event.option.id is None:
            return
        finding = self.findings[int(event.option.id)]
        if finding.file is not None and Path(finding.file) != self.path:
            line = (finding.line or 1, finding.column or 1)
            self.app.push_screen(EditorScreen(self.cockpit, Path(finding.file), goto=line))
            return
        self.action_tab("raw")
        self._jump(finding.line or 1, finding.column or 1)

    def _jump(self, line: int, column: int) -> None:
        editor = self.query_one("#toml", TomlEditor)
        editor.move_cursor((max(line - 1, 0), max(column - 1, 0)), center=True)
        editor.focus()

    def action_findings(self) -> None:
        """Focus the findings list."""
        self.query_one("#findings", OptionList).focus()

    # -- the dataset plan ------------------------------------------------------------------------------

    @dataclass
    class PlanUpdate(Message):
        """From the plan worker: progress (``done``/``total``), or the final ``text``."""

        done: int = 0
        total: int = 0
        text: str | None = None
        plan: Any = None
        """The finished plan (its problems join the findings while the buffer is the saved file)."""

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def plan(self) -> None:
        """Plan the saved file's dataset: counts, captions, buckets, drops, steps; progress and cancel.

        It reports by message (never ``call_from_thread``, which would wait for a busy UI thread)."""
        session = self.session
        kind = session.parse(session.disk_text).kind if session is not None else None
        if kind != "main" or not self.path.is_file():
            self.post_message(self.PlanUpdate(text="the dataset plan is shown for a saved main profile"))
            return
        cancel = threading.Event()
        self._plan_cancel = cancel
        self.plan_started_at = time.monotonic()
        self.post_message(self.PlanUpdate(done=0, total=1))
        from dpipe_tui.services.datasets import PlanCancelled

        def progress(done: int, total: int) -> None:
            self.post_message(self.PlanUpdate(done=done, total=total))

        try:
            result = self.cockpit.plan_dataset(self.path, progress=progress, cancel=cancel, isolated=True)
        except PlanCancelled:
            self.post_message(self.PlanUpdate(text="scan cancelled (save to plan again)"))
            return
        except Exception as exc:  # an unplannable dataset is a message, not a crash
            self.post_message(self.PlanUpdate(text=f"no dataset plan: {exc}"))
            return
        text = result.error or "\n".join(result.lines)
        if session is not None and session.is_modified(self.buffer):
            text = "(plan of the saved file; save with ctrl+s to re-plan)\n" + text
        self.post_message(self.PlanUpdate(text=text, plan=result.plan))

    @on(PlanUpdate)
    def _plan_update(self, update: PlanUpdate) -> None:
        bar = self.query_one("#plan-bar", ProgressBar)
        cancel = self.query_one("#plan-cancel", Button)
        text = self.query_one("#plan-text", Static)
        if update.text is not None:
            cancel.disabled = True
            bar.update(total=1, progress=1)
            text.update(update.text)
            self._plan = update.plan
            if self.report is not None:
                self._show_findings(self.report)
            self.planned_at = time.monotonic()
            return
        cancel.disabled = False
        # a known total (folders): an indeterminate bar animates at 60 fps and takes the GIL from the scan
        bar.update(total=max(update.total, 1), progress=update.done)
        text.update(f"scanning the dataset: {update.done}/{update.total} folder(s) …")

    @on(Button.Pressed, "#plan-cancel")
    def cancel_plan(self) -> None:
        """Stop a running scan."""
        if self._plan_cancel is not None:
            self._plan_cancel.set()

    # -- the file on disk ------------------------------------------------------------------------------

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def watch_disk(self) -> None:
        """Notice the file changing on disk (another editor, git checkout) and offer what to do."""
        wakeup = watch_file(self.path)
        try:
            while not self._stop_watch.is_set():
                wakeup.wait(2.0 if wakeup.watching else 1.0)
                session = self.session
                if session is None or self._stop_watch.is_set():
                    continue
                theirs = session.changed_on_disk()
                if theirs is not None and theirs != self._offered_disk:
                    self._offered_disk = theirs
                    self.app.call_from_thread(self._changed_on_disk, theirs)
        finally:
            wakeup.close()

    def _changed_on_disk(self, theirs: str) -> None:
        if self.session is None:
            return
        session = self.session
        mine_modified = session.is_modified(self.buffer)
        diff = "\n".join(session.diff(self.buffer, theirs)) or "(no difference in the text)"

        def answered(key: str | None) -> None:
            if key == "r":
                self._set_buffer(session.reload())
                self.notify(f"reloaded {self.path.name}")
                self.plan()
            elif key == "k":
                session.disk_text = theirs  # keep mine: the next save writes it over theirs
                self.query_one("#editor-title", Static).update(self._title())

        question = f"{self.path.name} changed on disk." + (
            " You have unsaved changes." if mine_modified else ""
        )
        self.app.push_screen(
            ChoiceModal(question, [("r", "reload theirs"), ("k", "keep mine")], f"yours vs on disk:\n{diff}"),
            answered,
        )

    def action_save(self) -> None:
        """Save the buffer atomically (refused over someone else's change: reload or keep mine)."""
        self._save(force=False)

    def _save(self, *, force: bool, then: Any = None) -> None:
        if self.session is None or self.read_only:
            self.notify("read-only: nothing to save", severity="warning")
            return
        session = self.session
        try:
            session.save(self.buffer, force=force)
        except Refusal as exc:
            theirs = session.changed_on_disk()
            if theirs is None:
                self.notify(exc.message, severity="error", timeout=10)
                return
            diff = "\n".join(session.diff(self.buffer, theirs))

            def answered(key: str | None) -> None:
                if key == "k":
                    self._save(force=True, then=then)
                elif key == "r":
                    self._set_buffer(session.reload())

            self.app.push_screen(
                ChoiceModal(
                    f"{self.path.name} changed on disk since you opened it.",
                    [("k", "keep mine (overwrite)"), ("r", "reload theirs (drop mine)")],
                    f"yours vs on disk:\n{diff}",
                ),
                answered,
            )
            return
        self._offered_disk = None
        self.query_one("#editor-title", Static).update(self._title())
        self.notify(f"saved {self.path}", timeout=3)
        self.plan()
        if then is not None:
            then()

    # -- leaving, launching, other files ---------------------------------------------------------------

    def has_unsaved(self) -> bool:
        """The buffer differs from the file (and could be saved)."""
        return self.session is not None and not self.read_only and self.session.is_modified(self.buffer)

    def action_back(self) -> None:
        """Close; with unsaved changes ask first (save, discard, or stay)."""
        self.leave(self._close)

    def leave(self, after: Any) -> None:
        """Run ``after`` once the buffer is safe: saved, discarded by choice, or unmodified."""
        if not self.has_unsaved():
            after()
            return

        def answered(key: str | None) -> None:
            if key == "s":
                self._save(force=False, then=after)
            elif key == "d":
                after()

        self.app.push_screen(
            ChoiceModal(f"{self.path.name} has unsaved changes.", [("s", "save"), ("d", "discard them")]),
            answered,
        )

    def _close(self) -> None:
        if self.quit_on_close:
            self.app.exit()
        else:
            self.dismiss(None)

    def action_tab(self, tab: str) -> None:
        """Show a view (form, raw TOML, dataset plan)."""
        self.query_one("#editor-tabs", TabbedContent).active = tab
        if tab == "raw":
            self.query_one("#toml", TomlEditor).focus()

    def action_open_dataset(self) -> None:
        """Open the dataset config this main profile names, in another editor."""
        target = self.report.dataset_path if self.report is not None else None
        if target is None:
            self.notify("this buffer names no dataset config", severity="warning")
            return
        self.app.push_screen(EditorScreen(self.cockpit, Path(target)))

    def action_pick_path(self) -> None:
        """Pick a path for the focused path field."""
        focused = self.app.focused
        form = self.query_one("#profile-form", ProfileForm)
        spec: FieldSpec | None = form.specs.get(focused.id or "") if focused is not None else None
        if spec is None or spec.kind != "path" or not isinstance(focused, Input):
            self.notify("focus a path field in the form first", severity="warning")
            return
        from dpipe_tui.ui.modals.path_pick import PathPickModal

        current = Path(focused.value).expanduser() if focused.value else self.path.parent
        start = current if current.is_dir() else current.parent
        if not start.is_dir():
            start = self.path.parent
        field = focused

        def picked(path: Path | None) -> None:
            if path is not None:
                field.value = str(path)

        self.app.push_screen(PathPickModal(start), picked)

    def action_launch(self) -> None:
        """Launch through New run: refused while errors remain; unsaved changes are saved first."""
        parsed = self.parsed
        if parsed is None or parsed.kind != "main" or self.read_only:
            self.notify("only a main profile you can edit launches from here", severity="warning")
            return
        if self.report is None or self._validated_text != self.buffer:
            self.notify("still validating; try again in a moment", severity="warning")
            return
        errors = sum(1 for f in self.findings if str(f.severity) == "error")
        if errors:
            self.notify(
                f"{errors} error(s) block the launch (ctrl+f lists them)", severity="error", timeout=8
            )
            return
        self.leave(self._open_new_run)

    def _open_new_run(self) -> None:
        from dpipe_tui.ui.screens.new_run import NewRunScreen

        self.app.push_screen(NewRunScreen(self.cockpit, preselect=self.path))


def _shown_path(path: Path) -> str:
    """A path as short as it can be said: relative to the working folder, else with ``~``."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        pass
    try:
        return "~/" + str(path.relative_to(Path.home()))
    except (ValueError, RuntimeError):
        return str(path)


def _replace_changed_lines(editor: TomlEditor, text: str) -> None:
    """Replace only the span that differs (common prefix and suffix kept): one small undoable edit."""
    old = editor.text
    if old == text:
        return
    prefix = len(os.path.commonprefix([old, text]))  # noqa: RUF071  # characters, not paths
    limit = min(len(old), len(text)) - prefix
    suffix = 0
    while suffix < limit and old[-1 - suffix] == text[-1 - suffix]:
        suffix += 1
    editor.replace(
        text[prefix : len(text) - suffix], _location(old, prefix), _location(old, len(old) - suffix)
    )


def _location(text: str, offset: int) -> tuple[int, int]:
    """(row, column) of a character offset."""
    row = text.count("\n", 0, offset)
    return row, offset - (text.rfind("\n", 0, offset) + 1)
