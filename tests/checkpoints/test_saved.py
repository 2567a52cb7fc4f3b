"""Where a run's result is: its save folders read by name and size, newest first."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from dpipe_tui.checkpoints.saved import last_saved_model, saved_models

if TYPE_CHECKING:
    from pathlib import Path


def test_saves_newest_first_with_their_weights_file_and_size(tmp_path: Path) -> None:
    run = tmp_path / "20261203_08-00-00"
    for i, (name, files) in enumerate(
        [
            ("epoch10", {"adapter_model.safetensors": 1000, "adapter_config.json": 50}),
            ("epoch20", {"adapter_model.safetensors": 2000, "adapter_config.json": 50}),
            ("step5", {"something.bin": 300, "other.bin": 200}),  # no known weights file: the folder
            ("global_step30", {"mp_rank_00_model_states.pt": 999}),  # a training state, not a save
        ]
    ):
        folder = run / name
        folder.mkdir(parents=True)
        for file, size in files.items():
            (folder / file).write_bytes(b"x" * size)
            os.utime(folder / file, (1000 + i, 1000 + i))
        os.utime(folder, (1000 + i, 1000 + i))
    (run / "epoch99").write_text("a file, not a save folder")
    found = saved_models(run)
    assert [m.name for m in found] == ["step5", "epoch20", "epoch10"]
    assert found[0].path == run / "step5"
    assert found[0].size == 500
    last = last_saved_model(run)
    assert last is not None
    assert (last.name, last.size) == ("step5", 500)
    assert found[1].path == run / "epoch20" / "adapter_model.safetensors"
    assert found[1].size == 2000


def test_no_folder_or_no_save_is_none(tmp_path: Path) -> None:
    assert last_saved_model(None) is None
    assert last_saved_model(tmp_path / "missing") is None
    assert last_saved_model(tmp_path) is None
