"""The run view: progress, loss and lr charts, the console tail, the failure card, and the controls.

Why one :class:`RunWatch` in a thread worker: the watch keeps byte offsets into the run's files, so a
multi-GB console opens at once (only its tail is read) and each poll reads only what was appended.
The worker polls twice a second, draws the charts at the widgets' last known sizes (a redraw costs
the chart's size, not the run's length) and posts one message; the UI thread only paints. Controls
that interrupt a run ask first; all of them go through the cockpit in a worker.
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static

from dpipe_tui import present
from dpipe_tui.services.errors import Refusal
from dpipe_tui.ui.messages import OpenEditor, ServiceFailed
from dpipe_tui.ui.modals.confirm import ConfirmModal
from dpipe_tui.ui.modals.pick import PickModal
from dpipe_tui.ui.widgets.chart_view import ChartView
from dpipe_tui.ui.widgets.progress_panel import ProgressPanel
from dpipe_tui.ui.widgets.tail_log import TailLog

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from dpipe_tui.services.cockpit import Cockpit, RunRecord
    from dpipe_tui.services.wakeup import Wakeup
    from dpipe_tui.services.watch import Chart, RunWatch, WatchUpdate

KEEP_LINES = 20_000
TAIL_LINES = 400
LIVE_POLL_S = 0.9
"""A live run's view reads what is new this often (at the half-second tick after it)."""
CHART_EVERY_S = 2.5
"""A live run's charts are redrawn at most this often (size and zoom changes redraw at once)."""
IDLE_POLL_S = 10.0
"""An ended run's view reads its files at least this often even when no file changed."""
ZOOM_STEPS = 500
PROBLEM = re.compile(r"warn|error|traceback|exception|killed|fatal|nan\b", re.IGNORECASE)


@dataclass
class RunWatched(Message):
    """One poll of the run: what changed, and the charts drawn at the current sizes."""

    update: WatchUpdate
    loss: Chart | None
    lr: Chart | None
    """None: nothing new to draw since the last poll (the charts stay as they are)."""

    def can_replace(self, message: Message) -> bool:
        """Only when nothing new was read: lines and events must never be dropped."""
        return isinstance(message, RunWatched) and not message.update.lines and not message.update.events


class RunScreen(Screen[None]):
    """One run, live."""

    HELP = (
        "The log follows the console while it is scrolled to the end; scroll up to pause it.\n"
        "Stop checkpoints first (save_quit), then signals the process group; Stop now signals at once.\n"
        "A dead run is never shown running: the state comes from the registry, checked against the OS."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="run.back"),
        Binding("x", "stop(False)", "Stop", id="run.stop"),
        Binding("X", "stop(True)", "Stop now", show=False, id="run.stop_now"),
        Binding("v", "save", "Save now", id="run.save"),
        Binding("r", "resume", "Resume", id="run.resume"),
        Binding("p", "profile", "Profile", show=False, id="run.profile"),
        Binding("c", "checkpoints", "Checkpoints", id="run.checkpoints"),
        Binding("z", "zoom", "Zoom", show=False, id="run.zoom"),
        Binding("slash", "search", "Search", id="run.search"),
        Binding("n", "next_match(1)", "Next", show=False, id="run.next"),
        Binding("N", "next_match(-1)", "Previous", show=False, id="run.previous"),
        Binding("w", "problems", "Warnings", show=False, id="run.problems"),
    ]

    def __init__(self, cockpit: Cockpit, run_id: str, *, ascii_only: bool = False) -> None:
        """The run view of ``run_id``."""
        super().__init__()
        self.cockpit = cockpit
        self.run_id = run_id
        self.ascii_only = ascii_only
        self.watch_: RunWatch | None = None
        self.record: RunRecord | None = None
        self.lines: deque[str] = deque(maxlen=KEEP_LINES)
        self.zoom: int | None = None
        self.only_problems = False
        self.pattern = ""
        self.matches: list[int] = []
        self.match_index = -1
        self.traceback: list[str] = []
        self._drawn: tuple[object, ...] | None = None
        self._wake: Wakeup | None = None
        self._last_poll = 0.0
        self._poll_lock = threading.Lock()
        self._poll_again = False
        self._drawn_at = 0.0
        self._chart_due = False
        self._head_markup = ""
        self.loss_chart = ChartView("loss", ascii_only=ascii_only, id="loss-chart")
        self.lr_chart = ChartView("lr", ascii_only=ascii_only, id="lr-chart")

    def compose(self) -> ComposeResult:
        """Head, progress, failure card, charts, log, search box, footer."""
        yield Static(self.run_id, id="run-head")
        yield ProgressPanel(ascii_only=self.ascii_only, id="progress")
        yield Static("", id="failure")
        with Horizontal(id="charts"):
            yield self.loss_chart
            yield self.lr_chart
        yield Input(placeholder="search the log (Enter: find, n/N: next/previous, Esc: close)", id="search")
        yield TailLog(max_lines=KEEP_LINES, id="log", auto_scroll=True)
        yield Footer()

    def on_mount(self) -> None:
        """Open the watch in a worker; poll twice a second."""
        self.query_one("#search", Input).display = False
        self.query_one("#failure", Static).display = False
        self.query_one("#log", Log).focus()
        self.poll()
        self.set_interval(0.5, self._tick)

    def on_unmount(self) -> None:
        """Stop the file watch."""
        if self._wake is not None:
            self._wake.close()

    def _tick(self) -> None:
        """Twice a second, on the UI thread, no file work: poll a live or queued run about once a
        second (:data:`LIVE_POLL_S`), an ended one when a file of the run changed or every
        :data:`IDLE_POLL_S` seconds, and at once when a redraw was asked for (resize, zoom)."""
        wake, record = self._wake, self.record
        since = time.monotonic() - self._last_poll
        if self._poll_again:
            self.poll()
        elif record is None or record.state.is_live or record.state.value == "queued":
            if since >= LIVE_POLL_S:
                self.poll()
        elif wake is None or not wake.watching or wake.changed() or since >= IDLE_POLL_S:
            self.poll()

    def on_resize(self) -> None:
        """Hide the lr chart when the screen is narrow (the loss chart gets the width)."""
        self.query_one("#lr-chart").display = self.size.width >= 100
        self.call_after_refresh(self._resized)

    def _resized(self) -> None:
        """The charts' new size is known after a refresh: poll, which redraws them at that size."""
        if self._drawn is not None:
            self.poll()

    # -- polling ----------------------------------------------------------------------------------
    @work(thread=True, group="watch", exit_on_error=False)
    def poll(self) -> None:
        """Read what changed and draw the charts (in a thread).

        One poll at a time: the watch is incremental and not thread-safe, and a poll asked for while
        one runs (a resize, a zoom) is done at the next tick rather than racing it.
        """
        if not self._poll_lock.acquire(blocking=False):
            self._poll_again = True
            return
        try:
            self._poll_again = False
            self._poll_once()
        finally:
            self._poll_lock.release()

    def _poll_once(self) -> None:
        self._last_poll = time.monotonic()
        try:
            if self.watch_ is None:
                self.watch_ = self.cockpit.watch(
                    self.run_id, console=True, tail_lines=TAIL_LINES, series=True
                )
            watch = self.watch_
            update = watch.poll()
            (lw, lh), (rw, rh) = self.loss_chart.plot_size, self.lr_chart.plot_size
            key = (lw, lh, rw, rh, self.zoom)
            loss: Chart | None = None
            lr: Chart | None = None
            now = time.monotonic()
            self._chart_due = self._chart_due or bool(update.events)
            # Redraw when the size or zoom changed, or when new events came and the last drawing is
            # CHART_EVERY_S old: a live chart moves by a pixel column every few steps, and Textual's
            # repaint of the charts is most of the run view's CPU while following (py-spy).
            # An ended run's last events are drawn at once.
            throttled = update.record.state.is_live and now - self._drawn_at < CHART_EVERY_S
            if key != self._drawn or (self._chart_due and not throttled):
                names = ["loss", "loss_smooth", *(f"eval:{n}" for n in watch.eval_names())]
                loss = watch.draw(names, lw, lh, last_steps=self.zoom, ascii_only=self.ascii_only)
                lr = watch.draw(["lr"], rw, rh, last_steps=self.zoom, ascii_only=self.ascii_only)
                self._drawn, self._drawn_at, self._chart_due = key, now, False
        except Exception as exc:  # a vanished run or an unreadable file: say so, keep the screen
            self.post_message(ServiceFailed(str(exc)))
            return
        self.post_message(RunWatched(update, loss, lr))
        state = update.record.state
        if self._wake is None and not state.is_live and state.value != "queued":
            # An ended run's view sleeps until one of its files changes (a resume, a late write); a
            # live run is read every second anyway, and its console would wake the watch constantly.
            self._wake = self.cockpit.wakeup(self.run_id)
            self._poll_again = True  # what changed before the watch started is read at the next tick

    @on(RunWatched)
    def show(self, message: RunWatched) -> None:
        """Paint a poll's results."""
        update = message.update
        self.record = update.record
        self._head(update)
        self.query_one(ProgressPanel).show(update)
        if message.loss is not None and message.lr is not None:
            note = f"last {self.zoom} steps" if self.zoom else "whole run"
            self.loss_chart.show(message.loss, note)
            self.lr_chart.show(message.lr)
        for event in update.events:
            if event.kind.value == "error" and isinstance(event.get("traceback"), dict):
                tb = event.data["traceback"]
                self.traceback = [f"{k}: {tb[k]}" for k in ("frame", "code", "exception") if tb.get(k)]
        self._failure_card(update.record)
        if update.lines:
            self.lines.extend(update.lines)
            shown = (
                [x for x in update.lines if PROBLEM.search(x)] if self.only_problems else list(update.lines)
            )
            if shown:
                self.query_one("#log", Log).write_lines(shown)

    @on(ServiceFailed)
    def show_failure(self, message: ServiceFailed) -> None:
        """A failed poll or control."""
        self.notify(message.text, severity="warning", timeout=6)

    def _head(self, update: WatchUpdate) -> None:
        r = update.record
        label = present.state_label(r.state.value, ascii_only=self.ascii_only)
        phase = present.phase_text(r.state, r.phase)
        gpus = ("cpu " if r.cpu else "gpu ") + ",".join(map(str, r.gpus))
        text = f"{label}  {r.id}  phase {phase}  {r.engine}  {gpus}  attempt {r.attempt}"
        style = "bold" if self.app.no_color else present.state_style(r.state.value)  # a grey red fades
        markup = f"[{style}]{_escape(text)}[/]"
        if markup != self._head_markup:
            self._head_markup = markup
            self.query_one("#run-head", Static).update(markup)

    def _failure_card(self, r: RunRecord) -> None:
        card = self.query_one("#failure", Static)
        if not r.failure_class or r.state.value not in ("failed", "lost"):
            card.display = False
            return
        lines = [f"[b]{_escape(r.failure_class)}[/b]: {_escape(r.failure_message or '')}"]
        if r.failure_hint:
            lines.append(f"hint: {_escape(r.failure_hint)}")
        lines += [f"[dim]{_escape(x)}[/dim]" for x in self.traceback]
        card.update("\n".join(lines))
        card.display = True

    # -- controls ---------------------------------------------------------------------------------
    def action_back(self) -> None:
        """Back to the dashboard (or close the search box first)."""
        search = self.query_one("#search", Input)
        if search.display:
            search.display = False
            self.query_one("#log", Log).focus()
            return
        self.app.pop_screen()

    def action_stop(self, now: bool) -> None:
        """Ask, then request a stop (the run's monitor carries it out)."""
        question = f"{'Stop now' if now else 'Stop'} {self.run_id}?"
        detail = (
            "Signals the whole process group at once: progress since the last checkpoint is lost."
            if now
            else "It writes a checkpoint first (save_quit), then the monitor ends the process group."
        )

        def answered(yes: bool | None) -> None:
            if yes:
                self._control("stop_now" if now else "stop")

        self.app.push_screen(ConfirmModal(question, detail), answered)

    def action_save(self) -> None:
        """Ask the engine for a checkpoint at the end of its current step."""
        self._control("save")

    def action_resume(self) -> None:
        """Pick a checkpoint of an ended run, then start a new attempt from it."""
        self._pick_resume_point()

    @work(thread=True, exclusive=True, group="control", exit_on_error=False)
    def _pick_resume_point(self) -> None:
        try:
            points = [p for p in self.cockpit.resume_points(self.run_id) if p.complete]
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        if not points:
            self.post_message(ServiceFailed(f"{self.run_id} has no complete checkpoint to resume from"))
            return
        options = [(p.tag, f"{p.tag}  (step {p.step})") for p in points]

        def chosen(tag: str | None) -> None:
            if tag:
                self._control("resume", tag)

        self.app.call_from_thread(
            self.app.push_screen, PickModal("Resume from which checkpoint?", options), chosen
        )

    @work(thread=True, group="control", exit_on_error=False)
    def _control(self, what: str, tag: str | None = None) -> None:
        try:
            if what == "save":
                path = self.cockpit.save(self.run_id)
                self.app.call_from_thread(self.notify, f"checkpoint requested ({path.name})")
            elif what in ("stop", "stop_now"):
                self.app.call_from_thread(self.notify, f"stopping {self.run_id}…")
                self.cockpit.request_stop(self.run_id, now=what == "stop_now")
            elif what == "resume":
                result = self.cockpit.resume(self.run_id, from_tag=tag)
                self.app.call_from_thread(
                    self.notify, f"{self.run_id}: attempt {result.record.attempt} from {tag}"
                )
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))

    def action_checkpoints(self) -> None:
        """The run's saves and states: resume from one, pin, prune, export."""
        from dpipe_tui.ui.screens.checkpoints import CheckpointScreen

        self.app.push_screen(CheckpointScreen(self.cockpit, self.run_id))

    def action_profile(self) -> None:
        """The profile the run trains from (its frozen copy), read-only."""
        self._open_profile()

    @work(thread=True, exclusive=True, group="profile", exit_on_error=False)
    def _open_profile(self) -> None:
        try:
            path, text = self.cockpit.frozen_profile(self.run_id)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        del text  # the editor reads the file itself (read-only)
        self.app.post_message(OpenEditor(path, read_only=True, title=f"run {self.run_id}: frozen profile"))

    def action_zoom(self) -> None:
        """Whole run / last steps."""
        self.zoom = None if self.zoom else ZOOM_STEPS
        self.poll()  # the zoom is part of what was drawn: this poll redraws

    # -- log search and filter --------------------------------------------------------------------
    def action_problems(self) -> None:
        """Show only warnings and errors (or everything again)."""
        self.only_problems = not self.only_problems
        log = self.query_one("#log", Log)
        log.clear()
        lines = [x for x in self.lines if PROBLEM.search(x)] if self.only_problems else list(self.lines)
        log.write_lines(lines)
        self.notify("warnings and errors only" if self.only_problems else "all lines", timeout=2)

    def action_search(self) -> None:
        """Open the search box."""
        box = self.query_one("#search", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#search")
    def find(self, event: Input.Submitted) -> None:
        """Find the text in the kept lines; jump to the last match (the newest)."""
        self.pattern = event.value.strip().lower()
        log = self.query_one("#log", Log)
        self.matches = [i for i, x in enumerate(log.lines) if self.pattern and self.pattern in x.lower()]
        self.match_index = len(self.matches)
        log.focus()
        self.action_next_match(-1)

    def action_next_match(self, delta: int) -> None:
        """Jump to the next (1) or previous (-1) match."""
        if not self.matches:
            if self.pattern:
                self.notify(f"no match for {self.pattern!r}", timeout=2)
            return
        self.match_index = (self.match_index + delta) % len(self.matches)
        line = self.matches[self.match_index]
        log = self.query_one("#log", Log)
        log.scroll_to(y=max(0, line - log.size.height // 2), animate=False)
        self.notify(f"match {self.match_index + 1}/{len(self.matches)}: line {line + 1}", timeout=2)


def _escape(text: str) -> str:
    return text.replace("[", r"\[")
