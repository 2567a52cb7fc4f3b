"""``dpipe-tui validate`` / ``dpipe-tui new`` through typer's CliRunner, plus one real subprocess."""

from __future__ import annotations

import json
import re
import subprocess
from typing import TYPE_CHECKING

import pytest
from PIL import Image
from typer.testing import CliRunner

from dpipe_tui.cli.main import app
from tests.profiles.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path

runner = CliRunner()
LINE = re.compile(
    r"^(?P<file>[^:]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|warning|hint): (?P<key>[^:]+): "
)


def test_valid_profile_exit_0_with_dataset_plan(workspace: Path) -> None:
    for i in range(4):
        Image.new("RGB", (512, 512)).save(workspace / "images" / f"{i}.png")
        (workspace / "images" / f"{i}.txt").write_text("a caption")
    result = runner.invoke(
        app,
        ["validate", str(workspace / "main.toml"), "--gpus", "1"],
        env={"DIFFUSION_PIPE_PATH": str(workspace)},
    )
    assert result.exit_code == 0, result.output
    assert "dataset plan" in result.output
    assert "ok: 0 error(s)" in result.output


def test_error_exit_1_human_format(workspace: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(main.read_text().replace("rank = 16", "rank = 16\nalpha = 16"))
    result = runner.invoke(app, ["validate", str(main), "--no-paths"])
    assert result.exit_code == 1
    lines = [m for m in (LINE.match(x) for x in result.output.splitlines()) if m]
    assert any(m["key"] == "adapter.alpha" and m["sev"] == "error" and m["line"] == "16" for m in lines)
    assert "  fix: remove alpha" in result.output
    assert result.output.strip().splitlines()[-1].startswith("FAILED: 1 error(s)")


def test_json_output(workspace: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(main.read_text().replace("epochs = 10", "epochs = 10\nfoo = 1"))
    result = runner.invoke(app, ["validate", "--json", "--no-paths", str(main)])
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert [(d["code"], d["key"], d["line"], d["severity"]) for d in data] == [
        ("unknown-key", "foo", 4, "warning")
    ]


def test_missing_file_exit_1_and_bad_flag_exit_2(tmp_path: Path) -> None:
    result = runner.invoke(app, ["validate", str(tmp_path / "none.toml")])
    assert result.exit_code == 1
    assert "cannot read the file" in result.output
    assert runner.invoke(app, ["validate", "--bogus", "x"]).exit_code == 2
    assert runner.invoke(app, ["validate", "--gpus", "0", "x"]).exit_code == 2


def test_several_files_and_dataset_kind(workspace: Path) -> None:
    result = runner.invoke(
        app, ["validate", "--no-paths", str(workspace / "main.toml"), str(workspace / "dataset.toml")]
    )
    assert result.exit_code == 0
    assert "in 2 file(s)" in result.output


def test_new_command(tmp_path: Path) -> None:
    result = runner.invoke(app, ["new", "--recipe", "chroma", "mine", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "mine.toml").is_file()
    assert (tmp_path / "mine.dataset.toml").is_file()
    again = runner.invoke(app, ["new", "--recipe", "chroma", "mine", "--dir", str(tmp_path)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    unknown = runner.invoke(app, ["new", "--recipe", "nope", "x", "--dir", str(tmp_path)])
    assert unknown.exit_code == 2  # usage error, like any bad argument
    assert "flux" in unknown.output
    assert not (tmp_path / "x.toml").exists()
    bad = runner.invoke(app, ["new", "--recipe", "chroma", "../x", "--dir", str(tmp_path)])
    assert bad.exit_code == 2
    assert "invalid profile name" in bad.output
    assert not (tmp_path.parent / "x.toml").exists()


def test_no_paths_says_when_the_dataset_config_is_not_there(workspace: Path) -> None:
    (workspace / "dataset.toml").unlink()
    result = runner.invoke(app, ["validate", "--no-paths", str(workspace / "main.toml")])
    assert result.exit_code == 0, result.output
    assert (
        f"{workspace / 'main.toml'}:2:1: hint: dataset: dataset config {workspace / 'dataset.toml'} "
        "not found; not validated"
    ) in result.output
    assert "ok: 0 error(s), 0 warning(s), 1 hint(s)" in result.output


@pytest.mark.parametrize(("gpus", "code"), [("[0, 1, 2]", 1), ("[0, 1]", 0)])
def test_profile_gpus_used_when_no_gpus_flag(workspace: Path, gpus: str, code: int) -> None:
    main = workspace / "main.toml"
    main.write_text(
        main.read_text().replace("epochs = 10", "epochs = 10\npipeline_stages = 2")
        + f"\n[dpipe_tui]\ngpus = {gpus}\n"
    )
    result = runner.invoke(app, ["validate", "--no-paths", str(main)])
    assert result.exit_code == code, result.output
    assert ("pipeline_stages = 2 does not divide the 3 GPUs" in result.output) is (code == 1)
    # --gpus wins over the profile's list
    flag = runner.invoke(app, ["validate", "--no-paths", "--gpus", "4", str(main)])
    assert flag.exit_code == 0, flag.output


def test_real_subprocess(workspace: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(main.read_text().replace("epochs = 10", "epochs = 'ten'"))
    proc = subprocess.run(
        [str(REPO / ".venv" / "bin" / "dpipe-tui"), "validate", "--no-paths", str(main)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1, proc.stderr
    assert f"{main}:3:1: error: epochs: " in proc.stdout
