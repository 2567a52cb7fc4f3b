"""How the screens look, at 80x24 and 160x48 (pytest-textual-snapshot), on a frozen registry.

The registry is written record by record (fixed ids, times and events; no processes), the cockpit has
a fixed clock and a scripted GPU probe, and the environment is cleaned by the autouse fixture, so the
pictures only change when the screens do. Review a changed snapshot's HTML report before
``--snapshot-update``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import pytest
from textual.widgets import Log

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.ui.app import DpipeApp
from dpipe_tui.ui.widgets.line_table import LineTable
from tests.ui.conftest import FIXED_NOW, NoGpuProbe, ScriptedProbe

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from textual.pilot import Pilot

SIZES = [(80, 24), (160, 48)]


def _record(run_id: str, state: RunState, **changes: Any) -> RunRecord:
    created = FIXED_NOW - 3600 * (1 + len(run_id) % 5)
    base = RunRecord(
        id=run_id,
        profile_path=f"/work/profiles/{run_id[14:-5]}.toml",
        engine="builtin",
        state=state,
        created_at=created,
        queued_at=created,
        started_at=created + 5,
        ended_at=created + 1800,
        total_steps=400,
        last_step=400,
        last_loss=0.1234,
        last_epoch=4,
        exit_code=0,
        phase="done",
        model_type="chroma" if "chroma" in run_id else "flux",
    )
    return dataclasses.replace(base, **changes)


def _events(steps: int, *, fail: bool = False) -> list[Event]:
    out = [Event(EventKind.PHASE, FIXED_NOW - 2000, {"phase": "training"})]
    for step in range(1, steps + 1):
        loss = 0.05 + 0.4 * math.exp(-step / 60) + 0.02 * math.sin(step / 3)
        lr = 1e-4 * min(1.0, step / 50)
        out.append(Event(EventKind.STEP, FIXED_NOW - 2000 + step, {"step": step, "loss": loss, "lr": [lr]}))
        if step % 100 == 0:
            out.append(
                Event(EventKind.EVAL, FIXED_NOW - 2000 + step, {"name": "eval", "step": step, "loss": loss})
            )
            out.append(Event(EventKind.CHECKPOINT, FIXED_NOW - 2000 + step, {"tag": f"global_step{step}"}))
    if fail:
        tb = {"exception": "torch.OutOfMemoryError: CUDA out of memory", "frame": "train.py:412"}
        out.append(
            Event(
                EventKind.ERROR,
                FIXED_NOW - 1000,
                {
                    "class": "cuda_oom",
                    "message": "CUDA out of memory",
                    "hint": "Lower the batch size.",
                    "traceback": tb,
                },
            )
        )
    return out


def frozen_home(home: Path) -> Cockpit:
    """Three ended runs with events and console lines; fixed clock."""
    registry = Registry(home)
    runs = [
        (_record("20261201-0900-chroma-e6ai-512-aa01", RunState.COMPLETED), _events(400)),
        (
            _record(
                "20261201-1100-flux-style-bb02",
                RunState.FAILED,
                last_step=250,
                exit_code=1,
                phase="training",
                failure_class="cuda_oom",
                failure_message="CUDA out of memory (rank 0)",
                failure_hint="Lower micro_batch_size_per_gpu or the resolution, or enable blocks_to_swap.",
            ),
            _events(250, fail=True),
        ),
        (
            _record("20261201-1300-chroma-e6ai-1024-cc03", RunState.STOPPED, last_step=120, phase="training"),
            _events(120),
        ),
    ]
    for record, events in runs:
        registry.create(record)
        registry.metrics(record.id).write_text("".join(e.to_json() + "\n" for e in events))
        console = [
            f"steps: {e.data['step']} loss: {e.data['loss']:.4f}" for e in events if e.kind is EventKind.STEP
        ]
        registry.console_log(record.id).write_text(
            "\n".join([*console[-7:], "WARNING: a warning line"]) + "\n"
        )
    return Cockpit(home, probe=ScriptedProbe(), clock=lambda: FIXED_NOW)


async def _until(pilot: Pilot[None], predicate: Callable[[], object]) -> None:
    for _ in range(300):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("screen did not settle")


async def _dashboard_ready(pilot: Pilot[None]) -> None:
    await _until(pilot, lambda: len(pilot.app.screen.query_one("#runs", LineTable).rows) == 3)
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES)
def test_dashboard(snap_compare: Any, home: Path, size: tuple[int, int]) -> None:
    assert snap_compare(DpipeApp(frozen_home(home)), terminal_size=size, run_before=_dashboard_ready)


def test_dashboard_without_gpu_ascii(snap_compare: Any, home: Path) -> None:
    cockpit = frozen_home(home)
    cockpit._probe = NoGpuProbe()
    assert snap_compare(
        DpipeApp(cockpit, ascii_only=True), terminal_size=(80, 24), run_before=_dashboard_ready
    )


async def _run_ready(pilot: Pilot[None]) -> None:
    screen = pilot.app.screen
    await _until(pilot, lambda: getattr(screen, "record", None) is not None)
    await _until(pilot, lambda: screen.query_one("#loss-chart").chart is not None)  # type: ignore[attr-defined]
    log = screen.query_one("#log", Log)
    # The console tail (7 steps and a warning) fits the log even at 80x24: no scrollbar, whose thumb
    # Textual repaints a frame late under load; following the end is tested with Pilot instead.
    await _until(pilot, lambda: log.line_count >= 8)
    await pilot.pause(0.3)
    await _until(pilot, lambda: log.is_vertical_scroll_end)  # the layout settled with the log following
    await pilot.pause(0.3)


@pytest.mark.parametrize("size", SIZES)
def test_run_view_failed(snap_compare: Any, home: Path, size: tuple[int, int]) -> None:
    app = DpipeApp(frozen_home(home), open_run="20261201-1100-flux-style-bb02")
    assert snap_compare(app, terminal_size=size, run_before=_run_ready)


@pytest.mark.parametrize("size", SIZES)
def test_run_view_completed(snap_compare: Any, home: Path, size: tuple[int, int]) -> None:
    app = DpipeApp(frozen_home(home), open_run="20261201-0900-chroma-e6ai-512-aa01")
    assert snap_compare(app, terminal_size=size, run_before=_run_ready)


@pytest.mark.parametrize("size", SIZES)
def test_help(snap_compare: Any, home: Path, size: tuple[int, int]) -> None:
    assert snap_compare(
        DpipeApp(frozen_home(home)), terminal_size=size, run_before=_dashboard_ready, press=["question_mark"]
    )


@pytest.mark.parametrize("size", SIZES)
def test_new_run(snap_compare: Any, home: Path, size: tuple[int, int], tmp_path: Path) -> None:
    folder = tmp_path / "profiles"
    folder.mkdir()
    (folder / "broken.toml").write_text(
        'output_dir = "/nowhere"\ndataset = "missing.toml"\nepochs = "ten"\n[model]\ntype = "chroma"\n'
    )
    cockpit = frozen_home(home)
    cockpit.profile_dirs = [folder]

    async def ready(pilot: Pilot[None]) -> None:
        await _dashboard_ready(pilot)
        await pilot.press("n")
        screen = pilot.app.screen
        await _until(pilot, lambda: "error(s)" in str(screen.query_one("#report").render()))
        await pilot.pause(0.3)

    assert snap_compare(DpipeApp(cockpit), terminal_size=size, run_before=ready)


def test_run_view_no_color(snap_compare: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: the run view of a failed run, glyph and words over colour."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = DpipeApp(frozen_home(home), open_run="20261201-1100-flux-style-bb02")
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=_run_ready)


def test_dashboard_no_color(snap_compare: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """NO_COLOR: states read by glyph and word, failures bold (this screen crashed in Textual's
    monochrome filter on the table's unstyled blank lines before)."""
    monkeypatch.setenv("NO_COLOR", "1")
    app = DpipeApp(frozen_home(home))
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), run_before=_dashboard_ready)


def _editor_ready(tab: str) -> Callable[[Pilot[None]], Any]:
    async def ready(pilot: Pilot[None]) -> None:
        from dpipe_tui.ui.screens.editor import EditorScreen
        from dpipe_tui.ui.widgets.toml_editor import TomlEditor
        from tests.ui.test_app import until

        app = pilot.app
        await until(pilot, lambda: isinstance(app.screen, EditorScreen) and app.screen.validated_at > 0)
        app.screen.query_one("#toml", TomlEditor).cursor_blink = False
        await pilot.press(tab)
        await pilot.pause(0.3)

    return ready


@pytest.mark.parametrize("tab", ["f2", "f3"], ids=["form", "raw"])
@pytest.mark.parametrize("size", SIZES)
def test_editor(
    snap_compare: Any,
    home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    size: tuple[int, int],
    tab: str,
) -> None:
    import shutil

    from tests.ui.test_editor import REPO

    for name in ("chroma-e6ai-1024.toml", "chroma-e6ai-1024.dataset.toml"):
        shutil.copy(REPO / "profiles" / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)  # the title shows the path relative to the working folder
    app = DpipeApp(Cockpit(home, probe=ScriptedProbe()), edit=tmp_path / "chroma-e6ai-1024.toml")
    assert snap_compare(app, terminal_size=size, run_before=_editor_ready(tab))
