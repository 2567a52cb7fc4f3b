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


def _registry_run(home: Path) -> Path:
    """A registry run as the monitor leaves it: console.log plus metrics.jsonl with TensorBoard events."""
    from dpipe_tui.telemetry import ConsoleParser, Event, EventKind

    run = home / "runs" / "20261122-1830-demo-3f2a"
    run.mkdir(parents=True)
    shutil.copy(DATA / "single_gpu_complete.log", run / "console.log")
    parser = ConsoleParser(lambda: 100.0)
    events = parser.feed((run / "console.log").read_bytes()) + parser.flush()
    events += [
        Event(EventKind.EVAL, 101.0, {"name": "eval", "step": 30, "loss": 0.1234, "quantiles": {"0.1": 0.2}}),
        Event(EventKind.SCALAR, 101.0, {"tag": "train/epoch_loss", "step": 3, "value": 0.0567}),
    ]
    (run / "metrics.jsonl").write_text("".join(e.to_json() + "\n" for e in events) + '{"t": 1, "ki')
    return run


def test_metrics_of_a_registry_run_reads_metrics_jsonl(tmp_path: Path) -> None:
    run = _registry_run(tmp_path)
    table = runner.invoke(app, ["--home", str(tmp_path), "metrics", "20261122"])
    assert table.exit_code == 0, table.output
    rows = {line[:12].strip(): line[13:] for line in table.stdout.splitlines()}
    assert rows["source"].endswith("metrics.jsonl (events)")
    assert "eval 0.1234 (step 30)" in table.stdout  # only TensorBoard has these (spec §5.4)
    assert "0.0567" in table.stdout
    assert rows["completed"].strip() == "yes"
    lines = runner.invoke(app, ["--home", str(tmp_path), "metrics", "20261122", "--json"]).stdout.splitlines()
    kinds = [json.loads(line)["kind"] for line in lines]  # the partial last line is skipped
    assert kinds.count("step") == 30
    assert kinds[-2:] == ["eval", "scalar"]
    listing = runner.invoke(app, ["metrics", str(run), "--events"]).stdout.splitlines()
    assert len(listing) == len(lines)
    assert listing[-2].startswith("eval ")
    (run / "metrics.jsonl").unlink()  # no metrics.jsonl: the console is parsed instead
    fallback = runner.invoke(app, ["--home", str(tmp_path), "metrics", "20261122", "--summary", "--json"])
    summary = json.loads(fallback.stdout)
    assert summary["source"] == "console.log"
    assert summary["eval_loss"] == {}
    assert summary["last_step"] == 30


def test_metrics_of_a_log_file_is_a_summary_table_by_default() -> None:
    result = runner.invoke(app, ["metrics", str(DATA / "cuda_oom.log")])
    assert result.exit_code == 1
    assert "cuda_oom.log (parsed log)" in result.stdout
    assert "cuda_oom" in result.stdout
    assert not any(line.startswith("step ") for line in result.stdout.splitlines())
