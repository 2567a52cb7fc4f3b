"""The disk forecast before a launch: sizes from an earlier run of the profile, counts from the profile."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dpipe_tui.checkpoints.forecast import forecast
from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.services.runs import _disk_forecast_warning
from dpipe_tui.settings import Settings
from tests.checkpoints import shapes

if TYPE_CHECKING:
    from pathlib import Path


def _earlier_run(root: Path, state_bytes: int) -> Path:
    run = root / "20260101_10-00-00"
    shapes.comfy_save(run / "epoch2")
    state = shapes.state(run / "global_step100", layers=1, size=10)
    with open(state / "layer_00-model_states.pt", "r+b") as fh:  # sparse: a big size, no disk used
        fh.truncate(state_bytes)
    return run


def test_counts_from_the_profile_sizes_from_the_earlier_run_capped_by_retention(tmp_path: Path) -> None:
    run = _earlier_run(tmp_path, 3 * 2**30)
    config = {"epochs": 40, "save_every_n_epochs": 2, "checkpoint_every_n_epochs": 4}
    found = forecast(config, [tmp_path / "missing", run])
    assert found is not None
    assert (found.saves, found.states, found.source) == (20, 11, run)
    assert found.state_bytes >= 3 * 2**30
    assert found.total == 20 * found.save_bytes + 11 * found.state_bytes
    capped = forecast(config, [run], keep_saves=3, keep_states=2)
    assert capped is not None
    assert (capped.saves, capped.states) == (4, 3)
    assert forecast(config, [tmp_path / "nothing-here"]) is None


def test_the_launch_warning_says_what_will_not_fit_and_what_to_do(tmp_path: Path) -> None:
    run = _earlier_run(tmp_path / "out", 50 * 2**30)
    profile = tmp_path / "p.toml"
    text = "output_dir = 'out'\nepochs = 40\ncheckpoint_every_n_epochs = 4\n[dpipe_tui]\nkeep_states = 2\n"
    profile.write_text(text)
    earlier = RunRecord(
        id="20260101-1000-p-aaaa",
        profile_path=str(profile.resolve()),
        engine="builtin",
        state=RunState.COMPLETED,
        engine_run_dir=str(run),
    )
    warning = _disk_forecast_warning(text, profile, [earlier], free_gib=100.0, settings=Settings())
    assert warning is not None
    assert "3 training state(s) of 50.00 GiB" in warning  # keep_states 2 (+1 being written)
    assert "keep_states" in warning
    assert _disk_forecast_warning(text, profile, [earlier], free_gib=500.0, settings=Settings()) is None
    other = RunRecord(
        id="x", profile_path=str(tmp_path / "other.toml"), engine="builtin", engine_run_dir=str(run)
    )
    assert _disk_forecast_warning(text, profile, [other], free_gib=100.0, settings=Settings()) is None
    assert os.path.getsize(run / "global_step100" / "layer_00-model_states.pt") == 50 * 2**30
