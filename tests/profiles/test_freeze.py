"""freeze_profile: the run's frozen copies (absolute paths, re-pointed datasets, comments kept, no secret)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dpipe_tui.profiles import ProfileError, freeze_profile, validate_file


@pytest.fixture
def profile(workspace: Path) -> Path:
    (workspace / "eval.toml").write_text(
        "resolutions = [512]\n[[directory]]\npath = 'images'  # eval images\n"
    )
    main = workspace / "main.toml"
    text = main.read_text().replace(
        "epochs = 10", "# my comment\nepochs = 10\neval_datasets = [{name = 'val set', config = 'eval.toml'}]"
    )
    main.write_text(
        text + "\n[monitoring]\nenable_wandb = true\nwandb_api_key = 'SECRETKEY'\n"
        "wandb_tracker_name = 't'\nwandb_run_name = 'r'\n"
    )
    return main


def test_freeze_writes_absolute_self_contained_copies(
    profile: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    before = profile.read_text()
    dest = tmp_path_factory.mktemp("run") / "r1"
    frozen = freeze_profile(profile, dest, base_dir=profile.parent)
    assert frozen.main == dest / "profile.toml"
    assert frozen.dataset == dest / "dataset.toml"
    assert len(frozen.evals) == 1
    assert frozen.evals[0].parent == dest
    main = tomllib.loads(frozen.main.read_text())
    ws = profile.parent.resolve()
    assert main["output_dir"] == str(ws / "out")
    assert main["dataset"] == str(frozen.dataset.resolve())
    assert main["eval_datasets"][0] == {"name": "val set", "config": str(frozen.evals[0].resolve())}
    assert main["model"]["diffusers_path"] == str(ws / "flux")
    assert main["model"]["transformer_path"] == str(ws / "chroma.safetensors")
    assert main["monitoring"]["wandb_api_key"] == ""
    assert "SECRETKEY" not in frozen.main.read_text()
    assert "# my comment" in frozen.main.read_text()
    assert tomllib.loads(frozen.dataset.read_text())["directory"][0]["path"] == str(ws / "images")
    assert "# eval images" in frozen.evals[0].read_text()
    assert profile.read_text() == before  # the original is untouched
    report = validate_file(frozen.main, base_dir=Path("/nonexistent-cwd"))
    assert report.ok, [f.format() for f in report.findings]


def test_freeze_without_dataset_raises(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("epochs = 1\n")
    with pytest.raises(ProfileError, match="no dataset"):
        freeze_profile(path, tmp_path / "run", base_dir=tmp_path)


def test_freeze_with_missing_dataset_raises(workspace: Path) -> None:
    (workspace / "dataset.toml").unlink()
    with pytest.raises(ProfileError, match="dataset config"):
        freeze_profile(workspace / "main.toml", workspace / "run", base_dir=workspace)
