"""New run: pick a profile, read its findings and dataset plan, choose GPUs and engine, launch or queue.

Why validation shows before the launch key does anything: the point of the cockpit is to find a
config mistake before ten minutes of model loading. Highlighting a profile validates it (dataset plan
included) in a worker; every finding shows ``file:line:col`` and what to do. A refused launch says
why, and where the refusal has a remedy the screen offers it (GPUs busy: queue instead).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Input, OptionList, Select, Static
from textual.widgets.option_list import Option

from dpipe_tui.services.errors import Refusal, RemedyAction
from dpipe_tui.services.runs import LaunchRequest
from dpipe_tui.ui.messages import OpenEditor, OpenRun, ServiceFailed
from dpipe_tui.ui.modals.confirm import ConfirmModal

if TYPE_CHECKING:
    from pathlib import Path

    from textual.app import ComposeResult

    from dpipe_tui.services.cockpit import Cockpit

ENGINES = [("engine: profile", ""), ("builtin", "builtin"), ("diffusion-pipe", "diffusion-pipe")]


class NewRunScreen(Screen[None]):
    """Choose a profile and launch it."""

    HELP = (
        "Highlight a profile to validate it (its dataset is scanned too). Errors block the launch.\n"
        "GPUs: a comma-separated list (CPU slots on a machine without NVIDIA GPUs); empty = the profile's."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="new_run.back"),
        Binding("l", "launch(False)", "Launch", id="new_run.launch"),
        Binding("Q", "launch(True)", "Queue", id="new_run.queue"),
        Binding("g", "focus_gpus", "GPUs", id="new_run.gpus"),
        Binding("f", "use_free", "Free GPUs", id="new_run.free_gpus"),
        Binding("e", "edit", "Edit", id="new_run.edit"),
        Binding("n", "new_profile", "New profile", id="new_run.new_profile"),
    ]

    def __init__(self, cockpit: Cockpit, *, preselect: Path | None = None) -> None:
        """The New run screen over ``cockpit``; ``preselect``: list this profile first, highlighted."""
        super().__init__()
        self.cockpit = cockpit
        self.preselect = preselect
        self.paths: dict[str, Path] = {}
        self.selected: Path | None = None
        self.valid = False
        self.free: list[int] | None = None
        """GPUs no run holds (None: no NVIDIA GPU here; the run uses CPU slots)."""

    def compose(self) -> ComposeResult:
        """Profiles on the left; findings and plan on the right; GPUs and engine below."""
        yield Static("New run: pick a profile (l launches, Q queues, e edits, n new from recipe)", id="title")
        with Horizontal(id="new-run"):
            yield OptionList(id="profiles")
            with VerticalScroll(id="report-box"):
                yield Static("highlight a profile to validate it", id="report", markup=False)
        with Horizontal(id="launch-opts"):
            yield Input(placeholder="GPUs, e.g. 0,1 (empty: the profile's)", id="gpu-list")
            yield Select(ENGINES, value="", allow_blank=False, id="engine")
        yield Static("", id="free-gpus", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """List the profiles in a worker."""
        self.query_one("#profiles", OptionList).focus()
        self.load_profiles()
        self.load_free_gpus()

    @work(thread=True, exclusive=True, group="free", exit_on_error=False)
    def load_free_gpus(self) -> None:
        """Which GPUs are free (the GPU panel's sample against the live runs)."""
        try:
            free = self.cockpit.free_gpus()
        except Exception as exc:  # a failed sample only loses the offer
            self.post_message(ServiceFailed(f"GPU sample failed: {exc}"))
            return
        self.app.call_from_thread(self._show_free, free)

    def _show_free(self, free: list[int] | None) -> None:
        self.free = free
        if free is None:
            text = "no NVIDIA GPU here: the run uses CPU slots"
        elif free:
            text = f"free GPUs: {','.join(map(str, free))}  (f: use them)"
        else:
            text = "no free GPU: every GPU is held by a run or in use (Q queues the run)"
        self.query_one("#free-gpus", Static).update(text)

    def action_use_free(self) -> None:
        """Put the free GPUs in the GPU box."""
        if not self.free:
            self.notify("no free GPU to offer", severity="warning")
            return
        self.query_one("#gpu-list", Input).value = ",".join(map(str, self.free))

    @work(thread=True, exclusive=True, group="profiles", exit_on_error=False)
    def load_profiles(self) -> None:
        """The profile library and the profiles of recent runs."""
        try:
            found = [p for p in self.cockpit.profiles() if p.kind == "main"]
            seen: dict[str, None] = dict.fromkeys(
                s.record.profile_path for s in reversed(self.cockpit.runs().runs)
            )
            recent = [path for path in list(seen)[:20] if self.cockpit.is_profile(path)]
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        self.app.call_from_thread(self._fill, [(p.name, p.path, p.model_type or "?") for p in found], recent)

    def _fill(self, found: list[tuple[str, Path, str]], recent: list[str]) -> None:
        from pathlib import Path

        options: list[Option] = []
        seen: set[str] = set()
        if self.preselect is not None:
            key = str(self.preselect)
            seen.add(key)
            self.paths[key] = self.preselect
            options.append(Option(f"✎ {self.preselect.stem}  (from the editor)", id=key))
        for path_text in recent:
            if path_text not in seen:
                seen.add(path_text)
                self.paths[path_text] = Path(path_text)
                options.append(Option(f"↺ {Path(path_text).stem}  (recent)", id=path_text))
            if len(options) >= 5:
                break
        for name, path, model in found:
            key = str(path)
            if key not in seen:
                seen.add(key)
                self.paths[key] = path
                options.append(Option(f"{name}  [{model}]", id=key))
        listing = self.query_one("#profiles", OptionList)
        listing.clear_options()
        listing.add_options(
            options or [Option("no profiles found (dpipe-tui new --recipe …)", disabled=True)]
        )
        if options:
            listing.highlighted = 0  # validates the first profile at once

    @on(OptionList.OptionHighlighted, "#profiles")
    def pick(self, event: OptionList.OptionHighlighted) -> None:
        """Validate the highlighted profile."""
        key = event.option.id
        if key is None or key not in self.paths:
            return
        self.selected = self.paths[key]
        self.valid = False
        self.query_one("#report", Static).update(f"validating {self.selected} …")
        self.validate(self.selected)

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self, path: Path) -> None:
        """Validate in a thread (the dataset scan can take a while)."""
        try:
            run = self.cockpit.validate([path])
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        lines: list[str] = []
        for fv in run.files:
            folder = str(path.parent)  # shown relative: the list already says which folder
            lines += [
                f.format().replace(folder + "/", "").replace(folder, path.parent.name)
                for f in fv.report.findings
            ]
            if fv.dataset_summary:
                lines += ["", "dataset plan:", *(f"  {x}" for x in fv.dataset_summary)]
            elif fv.summary_error:
                lines.append(fv.summary_error)
        counts = run.counts()
        verdict = "ready to launch" if run.ok else "errors block the launch"
        head = (
            f"{verdict}: {counts['error']} error(s), {counts['warning']} warning(s), {counts['hint']} hint(s)"
        )
        self.app.call_from_thread(self._report, path, run.ok, "\n".join([head, "", *lines]))

    def _report(self, path: Path, ok: bool, text: str) -> None:
        if path != self.selected:
            return  # the user moved on
        self.valid = ok
        self.query_one("#report", Static).update(text)

    def action_edit(self) -> None:
        """Open the highlighted profile in the editor."""
        if self.selected is None:
            self.notify("pick a profile first", severity="warning")
            return
        self.app.post_message(OpenEditor(self.selected))

    def action_new_profile(self) -> None:
        """A new profile from a recipe, opened in the editor."""
        self.app.call_later(self.app.run_action, "new_profile")

    def on_screen_resume(self) -> None:
        """Back from the editor: the list and the findings may have changed."""
        self.load_profiles()
        if self.selected is not None:
            self.validate(self.selected)

    def action_focus_gpus(self) -> None:
        """Type the GPUs."""
        self.query_one("#gpu-list", Input).focus()

    @on(Input.Submitted, "#gpu-list")
    def gpus_done(self) -> None:
        """Enter in the GPU box goes back to the list."""
        self.query_one("#profiles", OptionList).focus()

    def action_back(self) -> None:
        """Back (or out of the GPU box)."""
        if self.focused is self.query_one("#gpu-list", Input):
            self.query_one("#profiles", OptionList).focus()
            return
        self.app.pop_screen()

    def action_launch(self, queue: bool) -> None:
        """Launch (or queue) the selected profile."""
        if self.selected is None:
            self.notify("pick a profile first", severity="warning")
            return
        text = self.query_one("#gpu-list", Input).value.strip()
        try:
            gpus = tuple(int(x) for x in text.split(",") if x.strip()) or None
        except ValueError:
            self.notify(
                f"GPUs must be numbers separated by commas, e.g. 0,1 (got {text!r})", severity="error"
            )
            return
        engine = self.query_one("#engine", Select).value
        request = LaunchRequest(
            profile=self.selected, engine=str(engine) if engine else None, gpus=gpus, queue=queue
        )
        self.launch(request)

    @work(thread=True, exclusive=True, group="launch", exit_on_error=False)
    def launch(self, request: LaunchRequest) -> None:
        """Pre-flight and launch in a thread (preparing the demo assets can take seconds)."""
        self.app.call_from_thread(self.notify, f"launching {request.profile.name} …", timeout=3)
        try:
            result = self.cockpit.launch(request)
        except Refusal as exc:
            self.app.call_from_thread(self._refused, exc, request)
            return
        record = result.record
        assert record is not None
        for warning in result.warnings:
            self.app.call_from_thread(self.notify, warning, severity="warning")
        self.app.call_from_thread(self._launched, record.id)

    def _launched(self, run_id: str) -> None:
        self.app.post_message(OpenRun(run_id))
        self.app.pop_screen()

    def _refused(self, exc: Refusal, request: LaunchRequest) -> None:
        lines = [exc.message, *(f.format() for f in exc.findings if f.severity.value == "error")]
        self.query_one("#report", Static).update("\n".join(lines))
        if exc.remedy is not None and exc.remedy.action is RemedyAction.QUEUE:

            def answered(yes: bool | None) -> None:
                if yes:
                    self.launch(LaunchRequest(request.profile, request.engine, request.gpus, queue=True))

            self.app.push_screen(
                ConfirmModal(exc.message, "Queue it: it starts when those GPUs are free."), answered
            )
        else:
            self.notify(exc.message, severity="error", timeout=8)
