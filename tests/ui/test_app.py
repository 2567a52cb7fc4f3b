"""The TUI driven as a person would (Pilot), against a real cockpit on a temp home and real runs."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from textual.widgets import Log, Static

from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.modals.confirm import ConfirmModal
from dpipe_tui.ui.screens.dashboard import DashboardScreen
from dpipe_tui.ui.screens.help import HelpScreen
from dpipe_tui.ui.screens.new_run import NewRunScreen
from dpipe_tui.ui.screens.run_view import RunScreen
from dpipe_tui.ui.widgets.gpu_panel import GpuPanel
from dpipe_tui.ui.widgets.line_table import LineTable
from tests.ui.conftest import NoGpuProbe, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from textual.pilot import Pilot

    from tests.supervisor.conftest import BuiltinProfileFactory, ProfileFactory, Submitter


async def until(pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 30.0) -> None:
    """Let the app run until ``predicate()`` holds (workers poll on timers); fail on timeout."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {predicate}")
        await pilot.pause(0.1)


def table(app: DpipeApp) -> LineTable:
    return app.screen.query_one("#runs", LineTable)


def cells(app: DpipeApp) -> list[tuple[str, ...]]:
    return [row.cells for row in table(app).rows]


async def test_dashboard_lists_runs_and_gpus_and_filters(
    cockpit: Cockpit, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    done = submit_scripted(scripted_profile("quick", steps=3, step_time=0.01))
    live = submit_scripted(scripted_profile("long", steps=500, step_time=0.1), gpus=(1,))
    app = DpipeApp(cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        assert isinstance(app.screen, DashboardScreen)
        await until(pilot, lambda: {r.key for r in table(app).rows} == {done.id, live.id})
        await until(pilot, lambda: any(c[0].endswith("completed") for c in cells(app)))
        await until(pilot, lambda: any(c[0].endswith("running") for c in cells(app)))
        assert table(app).rows[0].key == live.id  # live runs first
        gpus = app.screen.query_one(GpuPanel)
        await until(pilot, lambda: gpus.owners.get(1) == live.id)
        await pilot.press("slash", *"quick")
        await until(pilot, lambda: [r.key for r in table(app).rows] == [done.id])
        await pilot.press("escape")
        await until(pilot, lambda: len(table(app).rows) == 2)
        await pilot.press("s")
        assert isinstance(app.screen, DashboardScreen)
        assert app.screen.sort_mode == "id"


async def test_dashboard_without_a_gpu_says_so(home: Path) -> None:
    app = DpipeApp(Cockpit(home, probe=NoGpuProbe()))
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.screen.query_one(GpuPanel)
        await until(pilot, lambda: panel.report is not None)
        assert "No NVIDIA GPU" in str(panel.render())
        assert "no runs yet" in table(app).empty


async def test_run_view_follows_a_run_then_stops_it_after_confirmation(
    cockpit: Cockpit, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile("follow", steps=2000, step_time=0.05, checkpoint_every=20))
    app = DpipeApp(cockpit)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: [r.key for r in table(app).rows] == [record.id])
        await pilot.press("enter")
        assert isinstance(app.screen, RunScreen)
        screen = app.screen
        log = screen.query_one("#log", Log)
        await until(pilot, lambda: any(line.startswith("steps:") for line in log.lines))
        await until(pilot, lambda: screen.record is not None and (screen.record.last_step or 0) >= 25)
        assert "running" in str(screen.query_one("#run-head", Static).render())
        await until(pilot, lambda: screen.query_one("#loss-chart").chart is not None)  # type: ignore[attr-defined]
        await pilot.press("x")
        assert isinstance(app.screen, ConfirmModal)
        await pilot.press("n")
        assert app.screen is screen
        await pilot.press("x")
        await pilot.press("y")
        await until(pilot, lambda: screen.record is not None and screen.record.state.value == "stopped", 60)
        assert cockpit.status(record.id).record.state.value == "stopped"
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_failure_card_of_a_run_that_really_failed(
    cockpit: Cockpit, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(
        scripted_profile(
            "crash", steps=50, step_time=0.01, fail_at=3, exit_code=1, error="RuntimeError: boom"
        )
    )
    await asyncio.to_thread(_wait_ended, cockpit, record.id)
    app = DpipeApp(cockpit, open_run=record.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        card = app.screen.query_one("#failure", Static)
        await until(pilot, lambda: card.display)
        text = str(card.render())
        assert str(cockpit.status(record.id).record.failure_class) in text
        assert "hint:" in text


def _wait_ended(cockpit: Cockpit, run_id: str) -> None:
    deadline = time.monotonic() + 60
    while not cockpit.status(run_id).record.state.is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)


async def test_help_lists_the_keys_of_the_screen(cockpit: Cockpit) -> None:
    app = DpipeApp(cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        described = {what for _, what in app.screen.rows}
        assert {"Filter", "Sort", "New run", "Quit", "Open", "Help"} <= described
        assert ("/", "Filter") in app.screen.rows
        await pilot.press("escape")
        assert isinstance(app.screen, DashboardScreen)


async def test_new_run_validates_then_launches_the_demo_and_follows_it(
    home: Path, builtin_profile: BuiltinProfileFactory
) -> None:
    profile = builtin_profile(epochs="5")
    cockpit = Cockpit(home, probe=ScriptedProbe(), profile_dirs=[profile.parent])
    app = DpipeApp(cockpit)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        assert isinstance(app.screen, NewRunScreen)
        screen = app.screen
        await until(pilot, lambda: str(profile) in screen.paths)
        option_list = screen.query_one("#profiles")
        index = next(
            i
            for i in range(option_list.option_count)  # type: ignore[attr-defined]
            if option_list.get_option_at_index(i).id == str(profile)  # type: ignore[attr-defined]
        )
        option_list.highlighted = index  # type: ignore[attr-defined]
        await until(pilot, lambda: screen.valid, 60)
        assert "ready to launch" in str(screen.query_one("#report", Static).render())
        await pilot.press("l")
        await until(pilot, lambda: isinstance(app.screen, RunScreen), 60)
        run_view = app.screen
        assert isinstance(run_view, RunScreen)
        await until(
            pilot, lambda: run_view.record is not None and run_view.record.state.value == "completed", 120
        )
