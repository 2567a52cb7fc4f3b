"""The run's monitor keeps the disk in check: retention after each save, and a save_quit before the
disk fills (real processes: the scripted trainer under the monitor)."""

from __future__ import annotations

from pathlib import Path

from dpipe_tui.checkpoints.pins import Pins
from dpipe_tui.checkpoints.resume import read_latest
from dpipe_tui.runs.registry import Registry
from tests.supervisor.conftest import ProfileFactory, Submitter, state_of, wait_for


def _states(folder: str | None) -> list[str]:
    assert folder is not None
    return sorted((p.name for p in Path(folder).glob("global_step*")), key=lambda n: int(n[11:]))


def test_retention_from_the_profile_keeps_the_newest_states_latest_and_pins(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    profile = scripted_profile("keep", steps=12, step_time=0.3, checkpoint_every=2)
    profile.write_text(profile.read_text() + "\n[dpipe_tui]\nkeep_states = 2\n")
    record = submit_scripted(profile)
    registry = Registry(home)
    folder = str(wait_for(lambda: registry.load(record.id).engine_run_dir))
    wait_for(lambda: (Path(folder) / "global_step2" / "mp_rank_00_model_states.pt").exists())
    Pins(home).set(Path(folder) / "global_step2", True)  # pinned while the run trains
    wait_for(lambda: state_of(home, record.id) == "completed")
    assert _states(folder) == ["global_step2", "global_step10", "global_step12"]
    assert read_latest(Path(folder)) == "global_step12"
    console = registry.console_log(record.id).read_text()
    assert "dpipe-tui: retention removed global_step4" in console
    assert "retention removed global_step2" not in console


def test_settings_retention_applies_when_the_profile_says_nothing(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    (home / "settings.toml").write_text("[retention]\nkeep_states = 1\n")
    record = submit_scripted(scripted_profile("settings", steps=8, step_time=0.02, checkpoint_every=2))
    wait_for(lambda: state_of(home, record.id) == "completed")
    assert _states(Registry(home).load(record.id).engine_run_dir) == ["global_step8"]


def test_low_disk_during_a_run_ends_it_with_a_whole_checkpoint_and_the_reason(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    # a floor far above any real disk: the first save makes the monitor stop the run
    (home / "settings.toml").write_text("stop_below_gib = 1000000000\n")
    record = submit_scripted(scripted_profile("full", steps=5000, step_time=0.02, checkpoint_every=20))
    wait_for(lambda: state_of(home, record.id) in ("stopped", "failed", "completed"), timeout=120)
    final = Registry(home).load(record.id)
    assert final.state.value == "stopped"
    assert final.note is not None
    assert final.note.startswith("low disk: ")
    assert "checkpointing and stopping (save_quit)" in final.note
    folder = Path(final.engine_run_dir or "")
    tag = read_latest(folder)
    assert tag is not None
    assert (folder / tag / "mp_rank_00_model_states.pt").is_file()  # a whole checkpoint to resume from
    assert (final.last_step or 0) < 5000
    console = Registry(home).console_log(record.id).read_text()
    assert "dpipe-tui: stop: low disk: " in console
