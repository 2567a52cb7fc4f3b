"""The checkpoint screen, driven as a person would (Pilot), and how it looks (80x24, 160x48).

The run's folder is diffusion-pipe-shaped (real safetensors headers, state files, ``latest``, launch
files) at a fixed path with fixed times, so the pictures only change when the screen does.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from textual.widgets import DataTable, Input, Static

from dpipe_tui.checkpoints.header import read_header
from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.modals.confirm import ConfirmModal
from dpipe_tui.ui.modals.form import FormModal
from dpipe_tui.ui.screens.checkpoints import CheckpointScreen
from dpipe_tui.ui.screens.run_view import RunScreen
from tests.checkpoints import shapes
from tests.ui.conftest import FIXED_NOW, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable

    from textual.pilot import Pilot

RUN_ID = "20261201-0900-chroma-e6ai-512-aa01"
SIZES = [(80, 24), (160, 48)]


def _touch_tree(path: Path, t: float) -> None:
    for f in [*path.iterdir(), path]:
        shapes.touch(f, t)


def checkpoint_home(home: Path, out: Path) -> Cockpit:
    """A stopped run whose folder holds 5 saves and 4 states over two launches (one resumed back)."""
    if out.exists():
        shutil.rmtree(out)
    run = out / "20261201_09-00-05"
    run.mkdir(parents=True)
    t0 = FIXED_NOW - 7200
    shapes.main_config(run)
    shapes.launch_file(run, t0)
    for epoch in (1, 2, 3, 4, 5):
        shapes.comfy_save(run / f"epoch{epoch}", rank=16, modules=40)
        _touch_tree(run / f"epoch{epoch}", t0 + 100 * epoch + 5)
    for step in (100, 200, 300, 400):
        shapes.state(run / f"global_step{step}", size=250_000 * (1 + step // 100))
        _touch_tree(run / f"global_step{step}", t0 + step)
    shapes.launch_file(run, t0 + 1000)  # attempt 2 resumed from global_step200
    _touch_tree(run / "epoch3", t0 + 1305)
    _touch_tree(run / "global_step300", t0 + 1300)
    (run / "latest").write_text("global_step300")
    shapes.touch(run / "latest", t0 + 1300)
    registry = Registry(home)
    record = RunRecord(
        id=RUN_ID,
        profile_path="/work/profiles/chroma-e6ai-512.toml",
        engine="builtin",
        state=RunState.STOPPED,
        created_at=t0,
        queued_at=t0,
        started_at=t0 + 5,
        ended_at=t0 + 1400,
        total_steps=1000,
        last_step=300,
        last_epoch=3,
        exit_code=0,
        phase="training",
        model_type="chroma",
        engine_run_dir=str(run),
        output_dir=str(out),
        attempt=2,
    )
    registry.create(record)
    events = [
        Event(EventKind.SAVE, t0 + 100 * e + 5, {"dir": f"epoch{e}", "step": 100 * e, "loss": 0.3 - 0.02 * e})
        for e in (1, 2, 3, 4, 5)
    ]
    events.insert(4, Event(EventKind.RESUME, t0 + 1010, {"epoch": 3, "step": 201}))
    events.append(Event(EventKind.SAVE, t0 + 1305, {"dir": "epoch3", "step": 300, "loss": 0.21}))
    tag = {"tag": "global_step300", "step": 300, "epoch": 3, "examples": 1200}
    events.append(Event(EventKind.CHECKPOINT, t0 + 1300, tag))
    registry.metrics(record.id).write_text("".join(e.to_json() + "\n" for e in events))
    registry.update(record.id, lambda r: dataclasses.replace(r, checkpoint_tag="global_step300"))
    return Cockpit(home, probe=ScriptedProbe(), clock=lambda: FIXED_NOW)


async def _until(pilot: Pilot[None], predicate: Callable[[], object], timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"timed out waiting for {predicate}")


def _rows(screen: CheckpointScreen, table: str) -> list[list[str]]:
    t = screen.query_one(f"#{table}", DataTable)
    return [[str(c) for c in t.get_row_at(i)] for i in range(t.row_count)]


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


async def test_browse_pin_prune_and_export_from_the_run_view(
    home: Path, out_dir: Path, tmp_path: Path
) -> None:
    cockpit = checkpoint_home(home, out_dir)
    app = DpipeApp(cockpit, open_run=RUN_ID)
    async with app.run_test(size=(120, 40)) as pilot:
        await _until(pilot, lambda: isinstance(app.screen, RunScreen))
        await pilot.press("c")
        await _until(pilot, lambda: isinstance(app.screen, CheckpointScreen))
        screen = app.screen
        assert isinstance(screen, CheckpointScreen)
        await _until(pilot, lambda: screen.listing is not None and _rows(screen, "saves"))
        saves = _rows(screen, "saves")
        assert [r[0] for r in saves] == ["epoch3", "epoch5", "epoch4", "epoch2", "epoch1"]  # newest first
        by_name = {r[0]: r for r in saves}
        assert by_name["epoch3"][1:3] == ["ComfyUI", "16/16"]
        assert by_name["epoch3"][7] == "2"  # written again by attempt 2
        assert "abandoned" in by_name["epoch5"][8]
        assert "abandoned" in by_name["epoch4"][8]
        assert "abandoned" not in by_name["epoch2"][8]
        states = {r[0]: r for r in _rows(screen, "states")}
        assert states["global_step300"][1:4] == ["300", "3", "1200"]  # step, epoch, examples
        assert "latest" in states["global_step300"][7]
        assert "abandoned" in states["global_step400"][7]
        title = str(screen.query_one("#ck-title", Static).render())
        assert "5 saves · 4 states" in title
        assert "latest global_step300" in title

        # pin epoch2 (the fourth row), then prune with it protected
        screen.query_one("#saves", DataTable).focus()
        await pilot.press("down", "down", "down", "p")
        await _until(pilot, lambda: screen.listing is not None and len(screen.listing.pinned) == 1)
        await _until(pilot, lambda: "pinned" in _rows(screen, "saves")[3][8])
        await pilot.press("x")
        await _until(pilot, lambda: isinstance(app.screen, FormModal))
        form = app.screen
        form.query_one("#field-keep_last", Input).value = "1"
        form.query_one("#field-states", Input).value = "1"
        form.query_one("#field-abandoned", Input).value = "y"
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert "Remove 6 item(s)" in modal.question
        assert "keep epoch2: pinned" in modal.detail
        await pilot.press("y")
        await _until(pilot, lambda: len(_rows(screen, "saves")) == 2 and len(_rows(screen, "states")) == 1)
        run = out_dir / "20261201_09-00-05"
        assert sorted(p.name for p in run.iterdir() if p.is_dir()) == ["epoch2", "epoch3", "global_step300"]

        # export the selected save (epoch2: the cursor stays on it across the reload)
        loras = tmp_path / "loras"
        loras.mkdir()
        await pilot.press("e")
        await _until(pilot, lambda: isinstance(app.screen, FormModal))
        app.screen.query_one("#field-to", Input).value = str(loras)
        app.screen.query_one("#field-name", Input).value = "my-style"
        await pilot.press("ctrl+s")
        await _until(pilot, lambda: (loras / "my-style.safetensors").is_file())
        assert read_header(loras / "my-style.safetensors").metadata["ss_epoch"] == "2"

        # resume asks first and says what it abandons; no says no
        screen.query_one("#states", DataTable).focus()
        await pilot.press("r")
        await _until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        modal = app.screen
        assert isinstance(modal, ConfirmModal)
        assert modal.question == f"Resume {RUN_ID} from global_step300?"
        await pilot.press("n")
        await _until(pilot, lambda: isinstance(app.screen, CheckpointScreen))
        await pilot.press("escape")
        await _until(pilot, lambda: isinstance(app.screen, RunScreen))


async def _ready(pilot: Pilot[None]) -> None:
    await _until(pilot, lambda: isinstance(pilot.app.screen, RunScreen))
    await pilot.press("c")
    await _until(pilot, lambda: isinstance(pilot.app.screen, CheckpointScreen))
    await _until(pilot, lambda: pilot.app.screen.query_one("#states", DataTable).row_count == 4)
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES)
def test_checkpoint_screen(snap_compare: Any, home: Path, size: tuple[int, int]) -> None:
    out = Path("/tmp/dpipe-tui-snapshot-out")  # a fixed path: the title shows the run folder
    app = DpipeApp(checkpoint_home(home, out), open_run=RUN_ID)
    assert snap_compare(app, terminal_size=size, run_before=_ready)
