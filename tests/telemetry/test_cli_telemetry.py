"""``dpipe-tui metrics`` and ``dpipe-tui gpus`` through typer's runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from dpipe_tui.cli.main import app

DATA = Path(__file__).resolve().parents[1] / "data"
runner = CliRunner()


def test_metrics_json_lines_from_a_file() -> None:
    result = runner.invoke(app, ["metrics", str(DATA / "single_gpu_complete.log"), "--json"])
    assert result.exit_code == 0
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert sum(1 for e in events if e["kind"] == "step") == 30
    assert events[-1]["kind"] == "exit"


def test_metrics_summary_of_a_registry_run_by_prefix(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "20261122-1830-demo-3f2a"
    run.mkdir(parents=True)
    shutil.copy(DATA / "cuda_oom.log", run / "console.log")
    result = runner.invoke(app, ["--home", str(tmp_path), "metrics", "20261122-18", "--summary", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["failure"]["class"] == "cuda_oom"
    assert summary["last_step"] == 3
    text = runner.invoke(app, ["--home", str(tmp_path), "metrics", "20261122", "--summary"])
    assert text.exit_code == 1
    assert "blocks_to_swap" in text.stdout


def test_metrics_not_found(tmp_path: Path) -> None:
    result = runner.invoke(app, ["--home", str(tmp_path), "metrics", "nope"])
    assert result.exit_code == 3


def test_gpus_json_without_driver() -> None:
    result = runner.invoke(app, ["gpus", "--json"])
    report = json.loads(result.stdout.splitlines()[0])
    assert report["host"]["ram_total"] > 0
    assert result.exit_code == (0 if report["available"] else 1)
