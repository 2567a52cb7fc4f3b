"""The TUI driven as a person would (Pilot), against a real cockpit on a temp home and real runs."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import pytest
from textual.widgets import Input, Log, Static

from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.services.errors import Refusal
from dpipe_tui.services.runs import LaunchRequest, RunListing
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.modals.confirm import ConfirmModal
from dpipe_tui.ui.modals.pick import PickModal
from dpipe_tui.ui.screens.dashboard import DashboardScreen
from dpipe_tui.ui.screens.help import HelpScreen
from dpipe_tui.ui.screens.new_run import NewRunScreen
from dpipe_tui.ui.screens.run_view import RunScreen
from dpipe_tui.ui.widgets.gpu_panel import GpuPanel
from dpipe_tui.ui.widgets.line_table import LineTable
from tests.ui.conftest import IdleProbe, NoGpuProbe, ScriptedProbe

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


async def test_failure_card_of_a_run_that_really_failed_and_the_log_follows_its_end(
    cockpit: Cockpit, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(
        scripted_profile(
            "crash", steps=120, step_time=0.001, fail_at=100, exit_code=1, error="RuntimeError: boom"
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
        log = app.screen.query_one("#log", Log)
        await until(pilot, lambda: log.line_count > 100)
        await pilot.pause(0.3)
        assert log.max_scroll_y > 0
        assert log.is_vertical_scroll_end  # the card shrank the log: it still shows the end
        for height in (30, 20):
            await pilot.resize_terminal(80, height)
            await pilot.pause(0.3)
            assert log.is_vertical_scroll_end
        log.scroll_to(y=0, animate=False)  # the user scrolls up: following pauses
        await pilot.pause(0.1)
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.3)
        assert log.scroll_y == 0


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
        described = {what for _, what, _ in app.screen.rows}
        assert {"Filter", "Sort", "New run", "Quit", "Open", "Help"} <= described
        assert ("/", "Filter", "dashboard.filter") in app.screen.rows
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
        assert run_view.record is not None
        assert run_view.record.model_type == "chroma"  # the dashboard's MODEL column
        last = f"–{run_view.record.last_step}"  # the chart shows the run's end (no live throttle then)
        chart = run_view.query_one("#loss-chart")
        await until(pilot, lambda: last in str(chart.render()), 5)


async def test_palette_reaches_actions_and_runs_by_name(
    cockpit: Cockpit, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    done = submit_scripted(scripted_profile("quick", steps=3, step_time=0.01))
    app = DpipeApp(cockpit)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: [r.key for r in table(app).rows] == [done.id])
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await pilot.press("ctrl+p", *"sort")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: dashboard.sort_mode == "id")
        await pilot.press("ctrl+p", *f"run {done.id[-4:]}")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert isinstance(app.screen, RunScreen)
        assert app.screen.run_id == done.id


async def test_user_keymap_moves_keys_and_reports_unknown_ids(cockpit: Cockpit) -> None:
    cockpit.settings_path.write_text('[keymap]\n"dashboard.sort" = "o"\n"dashboard.nope" = "z"\n')
    app = DpipeApp(cockpit)
    async with app.run_test(size=(100, 30)) as pilot:
        dashboard = app.screen
        assert isinstance(dashboard, DashboardScreen)
        await until(pilot, lambda: any("dashboard.nope" in n.message for n in app._notifications))
        await pilot.press("s")
        assert dashboard.sort_mode == "default"  # moved away from s
        await pilot.press("o")
        assert dashboard.sort_mode == "id"
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("o", "Sort", "dashboard.sort") in app.screen.rows


async def test_new_run_offers_the_free_gpus(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    live = submit_scripted(scripted_profile("holder", steps=5000, step_time=0.05), gpus=(1,))
    cockpit = Cockpit(home, probe=IdleProbe(), profile_dirs=[])
    await asyncio.to_thread(
        lambda: _wait_for(lambda: cockpit.status(live.id).record.state.value == "running")
    )
    app = DpipeApp(cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, NewRunScreen)
        await until(pilot, lambda: screen.free is not None)
        assert screen.free == [0]  # GPU 1 is held by the live run
        assert "free GPUs: 0" in str(screen.query_one("#free-gpus", Static).render())
        await pilot.press("f")
        assert screen.query_one("#gpu-list", Input).value == "0"
    cockpit.request_stop(live.id, now=True)


async def test_save_then_resume_from_a_picked_checkpoint(
    home: Path, checkout: Path, dp_profile: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    cockpit = Cockpit(home, probe=ScriptedProbe())
    profile = dp_profile("saver", steps=5000, step_time=0.05)
    record = (
        await asyncio.to_thread(cockpit.launch, LaunchRequest(profile=profile, engine="diffusion-pipe"))
    ).record
    assert record is not None
    app = DpipeApp(cockpit, open_run=record.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: screen.record is not None and (screen.record.last_step or 0) >= 3)
        await pilot.press("v")  # save now: a checkpoint at the end of the current step
        await until(pilot, lambda: screen.record is not None and screen.record.checkpoint_tag is not None)
        saved = screen.record.checkpoint_tag if screen.record else None
        await pilot.press("X", "y")
        await until(pilot, lambda: screen.record is not None and screen.record.state.value == "stopped", 60)
        await pilot.press("r")
        await until(pilot, lambda: isinstance(app.screen, PickModal))
        assert isinstance(app.screen, PickModal)
        assert [value for value, _ in app.screen.options][-1] == saved
        await pilot.press("end", "enter")
        await until(pilot, lambda: app.screen is screen)
        await until(
            pilot,
            lambda: (
                screen.record is not None
                and screen.record.attempt == 2
                and screen.record.state.value == "running"
            ),
            60,
        )
        assert screen.record is not None
        assert screen.record.resume_tag == saved
        await until(pilot, lambda: any(f"(resume from {saved})" in line for line in screen.lines))
        await pilot.press("X", "y")
        await until(pilot, lambda: screen.record is not None and screen.record.state.value == "stopped", 60)


def _wait_for(predicate: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('keymap = "x"\n', "[keymap]"),
        ('[keymap]\n"run.stop" = 3\n', "keymap.run.stop"),
        ('[keymap]\n"a" = "ctrl x"\n', "keymap.a"),
    ],
)
def test_a_bad_keymap_names_the_file_and_key(home: Path, text: str, key: str) -> None:
    cockpit = Cockpit(home)
    cockpit.settings_path.write_text(text)
    with pytest.raises(Refusal) as err:
        cockpit.settings()
    assert str(cockpit.settings_path) in err.value.message
    assert key in err.value.message


class CountingCockpit(Cockpit):
    """The real cockpit, counting how often the dashboard lists the registry."""

    listings = 0

    def runs(self, *, progress: bool = False) -> RunListing:
        self.listings += 1
        return super().runs(progress=progress)


async def test_an_idle_dashboard_sleeps_until_the_registry_changes(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    done = submit_scripted(scripted_profile("quick", steps=3, step_time=0.01))
    await asyncio.to_thread(_wait_ended, Cockpit(home), done.id)
    cockpit = CountingCockpit(home, probe=ScriptedProbe())
    app = DpipeApp(cockpit)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: [r.key for r in table(app).rows] == [done.id])
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        await until(pilot, lambda: screen._wake is not None and screen._wake.watching)
        before = cockpit.listings
        await pilot.pause(3.5)
        assert cockpit.listings - before <= 1  # was 3-4 with a one-second poll
        t0 = time.monotonic()
        live = await asyncio.to_thread(submit_scripted, scripted_profile("new", steps=400, step_time=0.05))
        await until(pilot, lambda: live.id in {r.key for r in table(app).rows}, 8)
        assert time.monotonic() - t0 < 5.0  # woken by the file watch, not the ten-second idle poll
        cockpit.request_stop(live.id, now=True)


async def test_run_view_search_filter_zoom_and_frozen_profile(home: Path) -> None:
    from dataclasses import replace

    from dpipe_tui.runs.registry import Registry
    from dpipe_tui.ui.screens.editor import EditorScreen
    from dpipe_tui.ui.widgets.toml_editor import TomlEditor
    from tests.ui.test_snapshots import frozen_home

    cockpit = frozen_home(home)
    run_id = "20261201-0900-chroma-e6ai-512-aa01"
    registry = Registry(home)
    frozen = registry.run_dir(run_id) / "profile.toml"
    frozen.write_text('output_dir = "/out"\n[model]\ntype = "chroma"\n')
    registry.update(run_id, lambda r: replace(r, config_path=str(frozen)))
    app = DpipeApp(cockpit, open_run=run_id)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        screen = app.screen
        assert isinstance(screen, RunScreen)
        log = screen.query_one("#log", Log)
        await until(pilot, lambda: log.line_count == 8)  # 7 step lines and a warning
        await pilot.press("slash", *"steps: 39", "enter")
        assert len(screen.matches) == 6  # steps 394..399
        assert screen.match_index == 5  # the newest match first
        await pilot.press("N")
        assert screen.match_index == 4
        await pilot.press("n", "n")
        assert screen.match_index == 0  # wraps around
        await pilot.press("w")
        assert list(log.lines) == ["WARNING: a warning line"]
        await pilot.press("w")
        assert log.line_count == 8
        chart = screen.query_one("#loss-chart")
        await pilot.press("z")
        await until(pilot, lambda: "last 500 steps" in str(chart.render()))
        await pilot.press("z")
        await until(pilot, lambda: "whole run" in str(chart.render()))
        await pilot.press("p")  # the frozen profile, in the editor, read-only
        await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.session is not None)
        editor = app.screen
        assert isinstance(editor, EditorScreen)
        assert editor.read_only
        assert editor.query_one("#toml", TomlEditor).text.startswith('output_dir = "/out"')
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is screen)
