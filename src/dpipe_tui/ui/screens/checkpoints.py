"""The checkpoint screen: a run's saved models and training states, and what to do with them.

Why a screen of its own: resume, retention and export act on single items the run view does not
list (which ``global_stepN`` to go back to, which save to keep or copy out). Everything is read and
done through the cockpit in thread workers (a listing reads headers, a prune deletes gigabytes), and
each destructive control shows what it will do first: a resume says how many later items it
abandons, a prune lists what goes and what it frees before asking.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from dpipe_tui import present
from dpipe_tui.services.checkpoints import Policy
from dpipe_tui.services.errors import Refusal
from dpipe_tui.ui.messages import ServiceFailed
from dpipe_tui.ui.modals.confirm import ConfirmModal
from dpipe_tui.ui.modals.form import Field, FormModal

if TYPE_CHECKING:
    from textual.app import ComposeResult

    from dpipe_tui.services.checkpoints import CheckpointListing, PruneOutcome
    from dpipe_tui.services.cockpit import Cockpit


@dataclass
class ListingLoaded(Message):
    """A fresh listing of the target."""

    listing: CheckpointListing


class CheckpointScreen(Screen[None]):
    """Saves and states of one run (or any run folder / output_dir)."""

    HELP = (
        "Saved models (epochN/stepN) come from their safetensors headers; training states (global_stepN)\n"
        "are what a resume loads. 'abandoned': written by an attempt after the state a later attempt\n"
        "resumed from. Prune never removes pinned items, the state 'latest' names, or a live run's newest."
    )
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="checkpoints.back"),
        Binding("r", "resume", "Resume from state", id="checkpoints.resume"),
        Binding("p", "pin", "Pin/unpin", id="checkpoints.pin"),
        Binding("x", "prune", "Prune", id="checkpoints.prune"),
        Binding("e", "export", "Export", id="checkpoints.export"),
        Binding("g", "reload", "Reload", show=False, id="checkpoints.reload"),
    ]
    DEFAULT_CSS = """
    CheckpointScreen { layout: vertical; }
    CheckpointScreen #ck-title { height: auto; padding: 0 1; background: $boost; }
    CheckpointScreen .ck-label { height: 1; padding: 0 1; color: $text-muted; }
    CheckpointScreen DataTable { height: 1fr; min-height: 4; }
    CheckpointScreen #ck-notes { height: auto; max-height: 4; padding: 0 1; color: $warning; }
    """

    def __init__(self, cockpit: Cockpit, target: str) -> None:
        """``target``: a run id, an engine run folder or an ``output_dir``."""
        super().__init__()
        self.cockpit = cockpit
        self.target = target
        self.listing: CheckpointListing | None = None

    def compose(self) -> ComposeResult:
        """Title, the saves table, the states table, leftovers, keys."""
        yield Static(f"Checkpoints · {self.target} · reading…", id="ck-title", markup=False)
        yield Static("Saved models", classes="ck-label")
        saves: DataTable[str] = DataTable(id="saves", cursor_type="row", zebra_stripes=True)
        saves.add_columns(*(c.upper() for c in present.SAVE_COLUMNS))
        yield saves
        yield Static("Training states (what a resume loads)", classes="ck-label")
        states: DataTable[str] = DataTable(id="states", cursor_type="row", zebra_stripes=True)
        states.add_columns(*(c.upper() for c in present.STATE_COLUMNS))
        yield states
        yield Static("", id="ck-notes", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Read the listing."""
        self.load()

    @work(thread=True, exclusive=True, group="listing", exit_on_error=False)
    def load(self) -> None:
        """Read the target's listing in a worker."""
        try:
            found = self.cockpit.checkpoints(self.target)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        self.post_message(ListingLoaded(found))

    @on(ListingLoaded)
    def _show(self, message: ListingLoaded) -> None:
        found = self.listing = message.listing
        saves = self.query_one("#saves", DataTable)
        states = self.query_one("#states", DataTable)
        keep_save = self._selected_key(saves)
        keep_state = self._selected_key(states)
        saves.clear()
        states.clear()
        notes: list[str] = []
        for inv in found.folders:
            for s in inv.saves:
                saves.add_row(*present.save_row(s, pinned=s.path in found.pinned), key=str(s.path))
            for st in inv.states:
                states.add_row(*present.state_row(st, pinned=st.path in found.pinned), key=str(st.path))
            notes += [f"! {line}" for line in inv.leftovers]
        if not found.folders:
            notes.append(found.note or "nothing saved")
        n_saves = sum(len(f.saves) for f in found.folders)
        n_states = sum(len(f.states) for f in found.folders)
        latest = next((f.latest for f in reversed(found.folders) if f.latest), None)
        launches = sum(len(f.launches) for f in found.folders)
        title = (
            f"Checkpoints · {found.run_id or self.target}\n"
            f"{n_saves} saves · {n_states} states · {present.size(found.size)} · "
            f"latest {latest or '-'} · {launches} launch(es){' · live' if found.live else ''}"
        )
        if len(found.folders) == 1:
            title += f"\n{found.folders[0].path}"
        self.query_one("#ck-title", Static).update(title)
        self.query_one("#ck-notes", Static).update("\n".join(notes))
        for table, key in ((saves, keep_save), (states, keep_state)):
            if key is not None and key in table.rows:
                table.move_cursor(row=table.get_row_index(key))

    @staticmethod
    def _selected_key(table: DataTable[str]) -> str | None:
        if not table.row_count:
            return None
        try:
            key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        except Exception:
            return None
        return key.value

    def _selected(self) -> tuple[str, Path] | None:
        """(``save``/``state``, path) of the row under the cursor of the focused table (saves first)."""
        focused = self.focused
        tables = [t for t in self.query(DataTable) if t is focused] or [self.query_one("#saves", DataTable)]
        table = tables[0]
        key = self._selected_key(table)
        if key is None:
            return None
        return ("state" if table.id == "states" else "save"), Path(key)

    # -- controls ---------------------------------------------------------------------------------
    def action_back(self) -> None:
        """Back to where it was opened from."""
        self.app.pop_screen()

    def action_reload(self) -> None:
        """Read the listing again."""
        self.load()

    def action_pin(self) -> None:
        """Pin the selected item (or unpin it when pinned)."""
        chosen = self._selected()
        if chosen is None or self.listing is None:
            return
        _, path = chosen
        self._pin(path.name, path not in self.listing.pinned)

    @work(thread=True, group="control", exit_on_error=False)
    def _pin(self, name: str, pinned: bool) -> None:
        try:
            self.cockpit.pin(self.target, name, pinned=pinned)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        self.app.call_from_thread(self.notify, f"{'pinned' if pinned else 'unpinned'} {name}")
        self.load()

    def action_resume(self) -> None:
        """Resume the run from the selected training state (after saying what it abandons)."""
        if self.listing is None or self.listing.run_id is None:
            self.notify(
                "resume works on a run of the registry (open it from its run view)", severity="warning"
            )
            return
        states = self.query_one("#states", DataTable)
        key = self._selected_key(states)
        if key is None:
            self.notify("no training state to resume from", severity="warning")
            return
        tag = Path(key).name
        inv = next((f for f in self.listing.folders if f.state(tag) is not None), None)
        later_saves, later_states = inv.later_than(tag) if inv is not None else ([], [])
        detail = (
            f"A new attempt loads {tag}. It abandons {len(later_saves)} later save(s) and "
            f"{len(later_states)} later state(s) (they stay, marked abandoned)."
            if later_saves or later_states
            else f"A new attempt loads {tag}."
        )
        run_id = self.listing.run_id

        def answered(yes: bool | None) -> None:
            if yes:
                self._resume(run_id, tag)

        self.app.push_screen(ConfirmModal(f"Resume {run_id} from {tag}?", detail), answered)

    @work(thread=True, group="control", exit_on_error=False)
    def _resume(self, run_id: str, tag: str) -> None:
        try:
            result = self.cockpit.resume(run_id, from_tag=tag)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        self.app.call_from_thread(self.notify, f"{run_id}: attempt {result.record.attempt} from {tag}")
        self.load()

    def action_prune(self) -> None:
        """Ask for the counts, show what would go, then prune."""
        fields = [
            Field("keep_last", "Saved models to keep (newest first; empty: do not prune saves)", whole=True),
            Field("keep_every", "Also keep saves numbered a multiple of (empty: none)", whole=True),
            Field("states", "Training states to keep (newest first; empty: do not prune states)", whole=True),
            Field("abandoned", "Remove abandoned items? (y/n)", "n"),
        ]

        def answered(values: dict[str, str] | None) -> None:
            if values is None:
                return

            def count(key: str) -> int | None:
                return int(values[key]) if values.get(key) else None

            policy = Policy(
                keep_last=count("keep_last"),
                keep_every=count("keep_every") or None,
                states=count("states"),
                abandoned=values.get("abandoned", "").lower().startswith("y"),
            )
            self._preview(policy)

        self.app.push_screen(FormModal("Prune", fields), answered)

    @work(thread=True, group="control", exit_on_error=False)
    def _preview(self, policy: Policy) -> None:
        try:
            outcomes = self.cockpit.prune(self.target, policy, dry_run=True)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        removals = [r for o in outcomes for r in o.plan.remove]
        if not removals and not any(o.plan.trash for o in outcomes):
            self.app.call_from_thread(self.notify, "nothing to prune with those counts")
            return
        self.app.call_from_thread(self._confirm_prune, policy, outcomes)

    def _confirm_prune(self, policy: Policy, outcomes: list[PruneOutcome]) -> None:
        removals = [r for o in outcomes for r in o.plan.remove]
        kept = [k for o in outcomes for k in o.plan.protected]
        frees = sum(o.plan.frees for o in outcomes)
        lines = [f"remove {r.name} ({present.size(r.size)})" for r in removals[:8]]
        if len(removals) > 8:
            lines.append(f"… and {len(removals) - 8} more")
        lines += [f"keep {k.name}: {k.why}" for k in kept[:4]]
        question = f"Remove {len(removals)} item(s), freeing {present.size(frees)}?"

        def answered(yes: bool | None) -> None:
            if yes:
                self._prune(policy)

        self.app.push_screen(ConfirmModal(question, "\n".join(lines)), answered)

    @work(thread=True, group="control", exit_on_error=False)
    def _prune(self, policy: Policy) -> None:
        try:
            outcomes = self.cockpit.prune(self.target, policy)
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        freed = sum(r.size for o in outcomes for r in o.removed)
        count = sum(len(o.removed) for o in outcomes)
        self.app.call_from_thread(self.notify, f"removed {count} item(s), freed {present.size(freed)}")
        self.load()

    def action_export(self) -> None:
        """Copy the selected save out, with training metadata in its header."""
        saves = self.query_one("#saves", DataTable)
        key = self._selected_key(saves)
        if key is None:
            self.notify("no saved model to export", severity="warning")
            return
        save = Path(key).name
        fields = [
            Field("to", "Copy into folder (e.g. ComfyUI/models/loras)", str(Path.cwd())),
            Field("name", "File name (empty: <profile>-<save>)"),
            Field("trigger", "Trigger words for the metadata (optional)"),
        ]

        def answered(values: dict[str, str] | None) -> None:
            if values and values.get("to"):
                self._export(save, values)

        self.app.push_screen(FormModal(f"Export {save}", fields), answered)

    @work(thread=True, group="control", exit_on_error=False)
    def _export(self, save: str, values: dict[str, str]) -> None:
        try:
            result = self.cockpit.export(
                self.target,
                save,
                Path(values["to"]).expanduser(),
                name=values.get("name") or None,
                trigger=values.get("trigger") or None,
            )
        except Refusal as exc:
            self.post_message(ServiceFailed(exc.message))
            return
        self.app.call_from_thread(
            self.notify, f"exported {result.path} ({present.size(result.size)}, tensors verified)"
        )

    @on(ServiceFailed)
    def _failed(self, message: ServiceFailed) -> None:
        self.notify(message.text, severity="error", timeout=10)
