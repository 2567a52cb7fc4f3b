"""The dashboard: every run (live first, the queue in dispatch order, then the ended), and the GPUs.

Why it polls: the registry on disk is the truth and outlives this process; a thread worker asks the
cockpit for the listing once a second (progress of live runs folded incrementally by the cockpit) and
the GPUs every two seconds, and posts messages. The screen only turns results into rows; the table
repaints the rows whose text changed. A run that leaves a live state between two polls raises a
notification (and the terminal bell when the settings allow it).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from dpipe_tui import present
from dpipe_tui.ui.messages import GpuSampled, OpenNewRun, OpenRun, RunsRefreshed, ServiceFailed
from dpipe_tui.ui.widgets.gpu_panel import GpuPanel
from dpipe_tui.ui.widgets.line_table import Column, LineTable, Row

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.services.runs import RunStatus
    from dpipe_tui.services.wakeup import Wakeup

RUN_COLUMNS = (
    Column("state", "STATE", 12),
    Column("id", "RUN", 22, flex=True, keep_end=True),
    Column("step", "STEP", 11, right=True),
    Column("loss", "LOSS", 6, right=True),
    Column("eta", "ETA", 7, right=True, priority=1),
    Column("age", "AGE", 4, right=True, priority=1),
    Column("rate", "RATE", 10, right=True, priority=2),
    Column("epoch", "EPOCH", 5, right=True, priority=3),
    Column("gpus", "GPUS", 5, priority=3),
    Column("model", "MODEL", 7, priority=4),
    Column("engine", "ENGINE", 8, priority=5),
    Column("profile", "PROFILE", 12, priority=4),
)

IDLE_POLL_S = 10.0
"""With no live or queued run, the registry is listed at least this often even if no file changed."""
WATCH_RETRY_S = 30.0
"""How often a dashboard that cannot watch the registry (no runs folder yet) tries again."""
BACKGROUND_POLL_S = 5.0
"""Under another screen, the dashboard lists this often (notifications of ended runs)."""

SORTS = ("default", "id", "state", "age", "loss")
ENDED_NOTICE = {"completed": "information", "stopped": "information", "failed": "error", "lost": "warning"}


def sort_key(mode: str, status: RunStatus) -> tuple[object, ...]:
    """Order rows: by default live runs, then the queue (dispatch order), then ended runs, newest first."""
    r = status.record
    if mode == "id":
        return (r.id,)
    if mode == "state":
        return (r.state.value, r.id)
    if mode == "age":
        return (-(r.created_at or 0.0),)
    if mode == "loss":
        return (r.last_loss is None, r.last_loss or 0.0)
    group = 0 if r.state.is_live else (1 if status.queue_position is not None else 2)
    if group == 1:
        return (group, r.queued_at, r.id)
    return (group, -(r.ended_at or r.created_at or 0.0), r.id)


def run_row(status: RunStatus, now: float, *, ascii_only: bool = False, no_color: bool = False) -> Row:
    """The dashboard row of one run (all text from :mod:`dpipe_tui.present`); under ``NO_COLOR`` the
    state is told by its glyph and word, and failures are bold (a red turned grey would fade away)."""
    r, p = status.record, status.progress
    live = r.state.is_live
    state = present.state_label(r.state.value, ascii_only=ascii_only)
    if status.queue_position is not None:
        state += f" #{status.queue_position}"
    elif live and not status.monitor_alive and status.engine_alive:
        state += "!"
    loss = p.loss_ema if p is not None and p.loss_ema is not None else r.last_loss
    cells = (
        state,
        r.id,
        present.step_text(
            r.last_step if p is None or p.step is None else p.step, r.total_steps, percent=False
        ),
        present.loss_text(loss),
        present.eta_text(p) if live and p is not None else "-",
        present.age(r.created_at, now),
        present.rate_text(p) if live and p is not None else "-",
        "-" if r.last_epoch is None else str(r.last_epoch),
        ("cpu" if r.cpu else "") + ",".join(map(str, r.gpus)),
        r.model_type or "-",
        r.engine,
        r.profile_stem,
    )
    if no_color:
        return Row(r.id, cells, "", "bold" if r.state.value in ("failed", "lost") else "")
    return Row(r.id, cells, "" if live else "dim", present.state_style(r.state.value))


class DashboardScreen(Screen[None]):
    """Runs and GPUs at a glance; Enter opens a run."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("slash", "filter", "Filter", id="dashboard.filter"),
        Binding("s", "sort", "Sort", id="dashboard.sort"),
        Binding("n", "new_run", "New run", id="dashboard.new_run"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, cockpit: Cockpit, *, ascii_only: bool = False) -> None:
        """The dashboard over ``cockpit``."""
        super().__init__()
        self.cockpit = cockpit
        self.ascii_only = ascii_only
        self.sort_mode = "default"
        self.filter_text = ""
        self.statuses: list[RunStatus] = []
        self._states: dict[str, str] = {}
        self._first_listing = True
        self._title = ""
        self._wake: Wakeup | None = None
        self._last_poll = 0.0
        self._poll_lock = threading.Lock()
        self._relist = False
        self._bell_on = True
        self._watch_tried = 0.0

    def compose(self) -> ComposeResult:
        """Title line, filter (hidden until ``/``), runs, GPUs, footer."""
        yield Static("dpipe-tui", id="title")
        yield Input(placeholder="filter runs (Esc: clear)", id="filter")
        with Vertical(id="runs-box"):
            yield LineTable(RUN_COLUMNS, empty="no runs yet: press n to start one", id="runs")
        yield GpuPanel(ascii_only=self.ascii_only, id="gpus")
        yield Footer()

    def on_mount(self) -> None:
        """Start polling once the first frame is up."""
        self.query_one("#filter", Input).display = False
        self.query_one("#runs", LineTable).focus()
        self.poll_runs()
        self.poll_gpus()
        self.set_interval(1.0, self._tick)
        self.set_interval(2.0, self._tick_gpus)

    def on_unmount(self) -> None:
        """Stop the file watch."""
        if self._wake is not None:
            self._wake.close()

    def _tick(self) -> None:
        """Once a second, on the UI thread, no file work: list again when a run is live (its truth is
        checked against the OS every second), when a file under the registry changed, or every
        :data:`IDLE_POLL_S` seconds; an idle dashboard of ended runs reads nothing in between. Under
        another screen (a run view) it lists every :data:`BACKGROUND_POLL_S` seconds, only to notify
        about runs that ended."""
        wake = self._wake
        now = time.monotonic()
        since = now - self._last_poll
        if not self.is_current:
            if since >= BACKGROUND_POLL_S:
                self.poll_runs()
            return
        live = any(s.record.state.is_live or s.queue_position is not None for s in self.statuses)
        watching = wake is not None and wake.watching
        if (
            not watching
            or live
            or self._relist
            or since >= IDLE_POLL_S
            or (wake is not None and wake.changed())
        ):
            self.poll_runs()

    def _tick_gpus(self) -> None:
        """The GPU panel is sampled only while it is on screen."""
        if self.is_current:
            self.poll_gpus()

    # -- workers ----------------------------------------------------------------------------------
    @work(thread=True, group="runs", exit_on_error=False)
    def poll_runs(self) -> None:
        """List the runs (a read: starts nothing) in a thread; one listing at a time (the cockpit's
        progress trackers are incremental), a listing asked for meanwhile is skipped."""
        if not self._poll_lock.acquire(blocking=False):
            return
        try:
            self._list_runs()
        finally:
            self._poll_lock.release()

    def _list_runs(self) -> None:
        self._last_poll = time.monotonic()
        self._relist = False
        try:
            self._bell_on = self._read_bell()
            self.post_message(RunsRefreshed(self.cockpit.runs(progress=True)))
        except Exception as exc:  # shown, never fatal: the next poll tries again
            self.post_message(ServiceFailed(str(exc)))
        # The watch starts after the first listing is on its way (the first paint comes first), and is
        # tried again every WATCH_RETRY_S while it cannot watch (a new home has no runs folder yet).
        wake, now = self._wake, time.monotonic()
        if wake is None or (not wake.watching and now - self._watch_tried >= WATCH_RETRY_S):
            self._watch_tried = now
            self._wake = self.cockpit.wakeup()
            self._relist = True  # what changed before the watch started is listed at the next tick

    def _read_bell(self) -> bool:
        """``bell`` of ``[notify]`` (read here, in the worker: the settings file may have changed)."""
        try:
            return bool(self.cockpit.settings().notify.bell)
        except Exception:  # a broken settings file is reported elsewhere; ring by default
            return True

    @work(thread=True, exclusive=True, group="gpus", exit_on_error=False)
    def poll_gpus(self) -> None:
        """Sample the GPUs in a thread (NVML may block)."""
        try:
            self.post_message(GpuSampled(self.cockpit.gpus()))
        except Exception as exc:
            self.post_message(ServiceFailed(f"GPU sample failed: {exc}"))

    # -- results ----------------------------------------------------------------------------------
    @on(RunsRefreshed)
    def show_runs(self, message: RunsRefreshed) -> None:
        """Rows from the listing; notify about runs that ended since the last listing."""
        self.statuses = message.listing.runs
        self._notify_ended()
        self._render_rows()

    @on(GpuSampled)
    def show_gpus(self, message: GpuSampled) -> None:
        """The GPU panel, with the live run on each GPU."""
        owners = {
            g: s.record.id
            for s in self.statuses
            if s.record.state.is_live and not s.record.cpu
            for g in s.record.gpus
        }
        self.query_one(GpuPanel).show(message.report, owners)

    @on(ServiceFailed)
    def show_failure(self, message: ServiceFailed) -> None:
        """A failed poll: say so briefly; the next poll tries again."""
        self.notify(message.text, severity="warning", timeout=4)

    def _notify_ended(self) -> None:
        states = {s.record.id: s.record.state.value for s in self.statuses}
        if not self._first_listing:
            for run_id, state in states.items():
                before = self._states.get(run_id)
                if before in ("starting", "running", "exiting") and state in ENDED_NOTICE:
                    status = next(s for s in self.statuses if s.record.id == run_id)
                    why = f": {status.record.failure_class}" if status.record.failure_class else ""
                    self.notify(f"{run_id} {state}{why}", severity=ENDED_NOTICE[state], timeout=10)  # type: ignore[arg-type]
                    if self._bell():
                        self.app.bell()
        self._first_listing = False
        self._states = states

    def _bell(self) -> bool:
        return self._bell_on

    def _render_rows(self) -> None:
        now = self.cockpit.clock()
        shown = [s for s in self.statuses if self._matches(s)]
        shown.sort(key=lambda s: sort_key(self.sort_mode, s))
        self.query_one("#runs", LineTable).set_rows(
            [run_row(s, now, ascii_only=self.ascii_only, no_color=self.app.no_color) for s in shown]
        )
        live = sum(s.record.state.is_live for s in self.statuses)
        queued = sum(s.queue_position is not None for s in self.statuses)
        title = f"dpipe-tui  {len(self.statuses)} runs · {live} live · {queued} queued"
        if self.filter_text:
            title += f"  filter: {self.filter_text!r} ({len(shown)})"
        if self.sort_mode != "default":
            title += f"  sort: {self.sort_mode}"
        if title != self._title:
            self._title = title
            self.query_one("#title", Static).update(title)

    def _matches(self, status: RunStatus) -> bool:
        if not self.filter_text:
            return True
        r = status.record
        hay = (
            f"{r.id} {r.profile_path} {r.state.value} {r.engine} {r.model_type or ''} {r.failure_class or ''}"
        )
        return all(part in hay.lower() for part in self.filter_text.lower().split())

    # -- actions ----------------------------------------------------------------------------------
    def action_filter(self) -> None:
        """Show the filter input and focus it."""
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        """Clear and hide the filter; back to the table."""
        box = self.query_one("#filter", Input)
        box.value = ""
        box.display = False
        self.filter_text = ""
        self.query_one("#runs", LineTable).focus()
        self._render_rows()

    @on(Input.Changed, "#filter")
    def apply_filter(self, event: Input.Changed) -> None:
        """Filter as you type."""
        self.filter_text = event.value.strip()
        self._render_rows()

    @on(Input.Submitted, "#filter")
    def leave_filter(self) -> None:
        """Enter keeps the filter and goes back to the table."""
        self.query_one("#runs", LineTable).focus()

    def action_sort(self) -> None:
        """Cycle the sort order."""
        self.sort_mode = SORTS[(SORTS.index(self.sort_mode) + 1) % len(SORTS)]
        self._render_rows()

    def action_new_run(self) -> None:
        """Open the New run screen (when the app has one)."""
        self.post_message(OpenNewRun())

    @on(LineTable.Selected, "#runs")
    def open_run(self, event: LineTable.Selected) -> None:
        """Enter on a run opens its run view."""
        self.post_message(OpenRun(event.key))
