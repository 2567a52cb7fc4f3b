"""``validate`` turns what diffusion-pipe raises on in the dataset plan into located errors (exit 1).

Real files in temp dirs through the real CLI (CliRunner); the dataset scan reads the real images.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from typer.testing import CliRunner

from dpipe_tui.cli.main import app
from dpipe_tui.services.profiles import validate_files
from tests.profiles.conftest import VALID_MAIN

if TYPE_CHECKING:
    from pathlib import Path

    from typer.testing import Result

runner = CliRunner()


def validate(ws: Path, *args: str) -> Result:
    home = ws / "home"
    home.mkdir(exist_ok=True)
    return runner.invoke(app, ["validate", str(ws / "main.toml"), *args], env={"DPIPE_TUI_HOME": str(home)})


def images(ws: Path, count: int, *, captions: bool = True, folder: str = "images") -> None:
    (ws / folder).mkdir(exist_ok=True)
    for i in range(count):
        Image.new("RGB", (64, 64)).save(ws / folder / f"img{i}.png")
        if captions:
            (ws / folder / f"img{i}.txt").write_text(f"caption {i}")


def set_micro_batch(ws: Path, bs: int) -> None:
    main = ws / "main.toml"
    main.write_text(main.read_text().replace("epochs = 10", f"epochs = 10\nmicro_batch_size_per_gpu = {bs}"))


def test_too_few_images_for_the_micro_batch_is_an_error(workspace: Path) -> None:
    images(workspace, 1)  # the fixture's a.png + img0.png: 2 images, micro batch 4
    set_micro_batch(workspace, 4)
    result = validate(workspace)
    assert result.exit_code == 1, result.output
    dataset = workspace / "dataset.toml"
    assert f"{dataset}:8:1: error: directory[0].path: Processed dataset was empty: 2 usable" in result.output
    assert "global batch 4" in result.output
    assert result.output.strip().splitlines()[-1].startswith("FAILED: 1 error(s)")
    data = json.loads(validate(workspace, "--json").output)
    assert [(d["code"], d["file"], d["key"], d["line"], d["severity"]) for d in data] == [
        ("dataset-empty", str(dataset), "directory[0].path", 8, "error")
    ]


def test_enough_images_pass(workspace: Path) -> None:
    images(workspace, 3)
    set_micro_batch(workspace, 4)
    result = validate(workspace)
    assert result.exit_code == 0, result.output
    assert "ok: 0 error(s), 0 warning(s)" in result.output


def test_empty_image_directory_is_an_error(workspace: Path) -> None:
    shutil.rmtree(workspace / "images")
    (workspace / "images").mkdir()
    result = validate(workspace)
    assert result.exit_code == 1, result.output
    assert f"{workspace / 'dataset.toml'}:8:1: error: directory[0].path: Directory " in result.output
    assert "had no images/videos!" in result.output
    assert "Processed dataset was empty:" not in result.output  # diffusion-pipe raises on the folder first
    assert result.output.strip().splitlines()[-1].startswith("FAILED: 1 error(s)")


def test_no_paths_runs_no_scan(workspace: Path) -> None:
    shutil.rmtree(workspace / "images")
    (workspace / "images").mkdir()
    result = validate(workspace, "--no-paths")
    assert result.exit_code == 0, result.output
    assert "dataset plan" not in result.output


def test_missing_control_file_is_located_at_control_path(workspace: Path) -> None:
    images(workspace, 2, folder="controls")  # no control image for the fixture's a.png
    dataset = workspace / "dataset.toml"
    dataset.write_text(dataset.read_text() + "control_path = 'controls'\n")
    result = validate(workspace, "--json")
    assert result.exit_code == 1, result.output
    errors = [d for d in json.loads(result.output) if d["severity"] == "error"]
    assert [(d["code"], d["key"], d["line"]) for d in errors] == [
        ("dataset-fatal-item", "directory[0].control_path", 9)
    ]
    assert "a.png" in errors[0]["message"]
    assert "No control file exists" in errors[0]["message"]


def test_missing_captions_and_rounding_are_warnings(workspace: Path) -> None:
    images(workspace, 2, captions=False)
    for name, size in (("square", (64, 64)), ("wide", (128, 64))):
        Image.new("RGB", size).save(workspace / "images" / f"{name}.png")
        (workspace / "images" / f"{name}.txt").write_text(name)
    set_micro_batch(workspace, 1)
    main = workspace / "main.toml"
    main.write_text(main.read_text().replace("epochs = 10", "epochs = 10\ngradient_accumulation_steps = 2"))
    result = validate(workspace)
    assert result.exit_code == 0, result.output
    where = f"{workspace / 'dataset.toml'}:8:1: warning: directory[0].path: "
    assert f"{where}2 item(s) have no caption and are skipped" in result.output
    assert "img0.png, img1.png" in result.output
    assert f"{where}1 item(s) in 1 bucket(s) are dropped each epoch by rounding down" in result.output
    assert "ok: 0 error(s), 2 warning(s)" in result.output


def test_missing_directory_reported_once(workspace: Path) -> None:
    shutil.rmtree(workspace / "images")
    data = json.loads(validate(workspace, "--json").output)
    assert [(d["code"], d["key"]) for d in data] == [("path-missing", "directory[0].path")]


def test_demo_dataset_not_generated_yet_is_not_an_error(workspace: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(VALID_MAIN + "\n[dpipe_tui]\nengine = 'builtin'\nprepare = 'demo'\n")
    shutil.rmtree(workspace / "images")
    run = validate_files([main], home=workspace)
    assert run.ok, [f.format() for f in run.findings]
    assert {f.code for f in run.findings} == {"path-demo"}


@pytest.mark.parametrize("bs", [1, 2])
def test_gpu_count_changes_the_plan(workspace: Path, bs: int) -> None:
    images(workspace, 1)  # 2 images in one bucket
    set_micro_batch(workspace, bs)
    run = validate_files([workspace / "main.toml"], home=workspace, gpu_count=2)
    assert run.ok is (bs == 1), [f.format() for f in run.findings]
