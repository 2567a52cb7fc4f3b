"""Progress of registry runs through the services: the plan from the frozen profile and the launch-time
step plan, checkpoint age after a resume, and ``status`` (human and --json) on a real run."""

from __future__ import annotations

import json
import os
import re
import time
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from typer.testing import CliRunner

from dpipe_tui.cli.main import app
from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.services.progress import ProgressTracker, plan_for_record, run_progress
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.progress import ProgressPlan
from tests.cli.conftest import cli_home, dp_profile  # noqa: F401  # fixtures used below
from tests.supervisor.conftest import checkout, wait_for  # noqa: F401

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


def _record(tmp_path: Path, config: str, **changes: object) -> RunRecord:
    profile = tmp_path / "profile.toml"
    profile.write_text(config)
    fields: dict[str, object] = {"config_path": str(profile), "state": RunState.RUNNING}
    fields.update(changes)
    return RunRecord(id="r1", profile_path=str(profile), engine="builtin", **fields)  # type: ignore[arg-type]  # test kwargs


def _write_events(path: Path, events: list[Event]) -> None:
    path.write_text("".join(e.to_json() + "\n" for e in events))


@pytest.mark.parametrize(
    ("config", "total", "spe"),
    [
        ("epochs = 4\n", 40, 10),  # total = epochs x steps/epoch
        ("epochs = 4\nmax_steps = 25\n", 25, None),  # the cap hides steps/epoch: learned from the log
        ("epochs = 4\nmax_steps = 100\n", 40, 10),  # a cap above the plan does not bite
        ("epochs = 3\n", 40, None),  # not a multiple: never guess
    ],
)
def test_plan_for_record_derives_steps_per_epoch(
    tmp_path: Path, config: str, total: int, spe: int | None
) -> None:
    plan = plan_for_record(_record(tmp_path, config + "save_every_n_epochs = 2\n", total_steps=total))
    assert plan.steps_per_epoch == spe
    assert plan.total_steps == total
    assert plan.save_every_n_epochs == 2


def test_unreadable_frozen_profile_gives_an_empty_plan(tmp_path: Path) -> None:
    record = _record(tmp_path, "epochs = [", total_steps=40)
    assert plan_for_record(record) == ProgressPlan(total_steps=40)


def test_checkpoint_age_after_resume_comes_from_the_checkpoint_folder(tmp_path: Path) -> None:
    now = time.time()
    run_folder = tmp_path / "out" / "20260821_14-02-30"
    (run_folder / "global_step500").mkdir(parents=True)
    os.utime(run_folder / "global_step500", (now - 3600, now - 3600))
    record = _record(
        tmp_path,
        "epochs = 10\ncheckpoint_every_n_minutes = 120\nsave_every_n_epochs = 1\n",
        total_steps=1000,
        engine_run_dir=str(run_folder),
        attempt=2,
    )
    metrics = tmp_path / "metrics.jsonl"
    _write_events(
        metrics,
        [
            Event(EventKind.RESUME, now - 20, {"epoch": 6, "step": 501}),
            *(
                Event(EventKind.STEP, now - 20 + i, {"step": 501 + i, "loss": 0.1, "iter_time": 1.0})
                for i in range(10)
            ),
        ],
    )
    snap = run_progress(record, metrics, clock=lambda: now)
    assert snap.last_checkpoint_step == 500
    assert snap.last_checkpoint_age_sec == pytest.approx(3600, abs=2)  # not the 20 s since the resume
    assert snap.next_checkpoint_in_sec == pytest.approx(120 * 60 - 3600, abs=2)
    assert (snap.steps_per_epoch, snap.epoch, snap.step) == (100, 6, 510)
    assert snap.next_save_step == 600
    assert snap.eta_sec == pytest.approx(490, rel=0.01)
    assert snap.warnings == ()


def test_replayed_checkpoint_event_keeps_its_time_across_a_resume(tmp_path: Path) -> None:
    now = time.time()
    record = _record(tmp_path, "epochs = 1\n", total_steps=100, attempt=2)  # no run folder to stat
    tracker = ProgressTracker(record, clock=lambda: now)
    first = [Event(EventKind.STEP, now - 7300, {"step": 5, "loss": 0.2, "iter_time": 1.0})]
    first.append(Event(EventKind.CHECKPOINT, now - 7200, {"tag": "global_step5", "step": 5}))
    snap = tracker.update(record, [*first, Event(EventKind.RESUME, now - 5, {"epoch": 1, "step": 6})])
    assert snap.last_checkpoint_age_sec == pytest.approx(7200)


def test_no_checkpoint_warning_and_status_of_a_real_run(
    checkout: Path,  # noqa: F811
    cli_home: Path,  # noqa: F811
    dp_profile: Callable[..., Path],  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    monkeypatch.setenv("DPIPE_TUI_HOME", str(cli_home))
    profile = dp_profile(steps=4, step_time=0.01)
    for i in range(3):  # + the fixture's one image: the launch-time plan has 4 steps (1 epoch x 4 images)
        Image.new("RGB", (64, 64)).save(checkout / "images" / f"{i}.png")
        (checkout / "images" / f"{i}.txt").write_text("a photo")
    result = runs.launch(cli_home, runs.LaunchRequest(profile=profile, engine="diffusion-pipe"))
    assert result.record is not None, result.error
    run_id = result.record.id
    wait_for(lambda: Registry(cli_home).load(run_id).state.is_terminal, 60)
    status = runs.status(cli_home, run_id)
    assert status.record.total_steps == 4
    progress = status.progress
    assert progress is not None
    assert (progress.step, progress.total_steps, progress.steps_per_epoch, progress.epoch) == (4, 4, 4, 1)
    assert progress.completed
    assert progress.last_checkpoint_step == 4  # the scripted trainer checkpoints at the end
    assert progress.last_checkpoint_age_sec is not None
    assert progress.last_checkpoint_age_sec < 60
    # 4 steps 10 ms apart: too little wall-clock history for a rate, so none is claimed
    assert progress.steps_per_sec is None
    runner = CliRunner()
    as_json = json.loads(runner.invoke(app, ["status", run_id, "--json"]).stdout)
    assert as_json["progress"]["total_steps"] == 4
    assert as_json["progress"]["last_checkpoint_step"] == 4
    human = runner.invoke(app, ["status", run_id]).stdout
    assert "step: 4/4 (100%)" in human
    assert "epoch: 1/1" in human
    assert "checkpoint: global_step4 (" in human

    # the same run's events replayed into a live-looking record, cut before its only checkpoint
    metrics = Registry(cli_home).metrics(run_id)
    events = [e for e in map(Event.from_json, metrics.read_text().splitlines()) if e is not None]
    cut = next(i for i, e in enumerate(events) if e.kind is EventKind.CHECKPOINT)
    live = RunRecord.from_json_dict({**status.record.to_json_dict(), "state": "running"})
    snap = ProgressTracker(live).update(live, events[:cut])
    assert snap.step == 4
    assert snap.last_checkpoint_step is None
    assert any("no checkpoint yet" in w for w in snap.warnings)


def test_foreground_run_view_shows_progress(
    checkout: Path,  # noqa: F811
    cli_home: Path,  # noqa: F811
    dp_profile: Callable[..., Path],  # noqa: F811
) -> None:
    profile = dp_profile(steps=12, step_time=0.6, checkpoint_every=3)
    for i in range(11):  # + the fixture's one image: 12 images, 12 steps
        Image.new("RGB", (64, 64)).save(checkout / "images" / f"{i}.png")
        (checkout / "images" / f"{i}.txt").write_text("a photo")
    env = {"DIFFUSION_PIPE_PATH": str(checkout), "DPIPE_TUI_HOME": str(cli_home)}
    out = CliRunner().invoke(app, ["run", str(profile), "--engine", "diffusion-pipe"], env=env)
    assert out.exit_code == 0, out.output
    lines = [line for line in out.stdout.splitlines() if line.startswith("step ")]
    assert lines, out.stdout
    assert all(re.match(r"step \d+/12 \(\d+%\)  epoch 1/1  loss \S+  ", line) for line in lines), lines
    assert any("measuring" in line for line in lines), lines  # the first steps: no wild ETA
    assert any("it/s" in line and "eta " in line for line in lines), lines  # then the wall-clock rate
