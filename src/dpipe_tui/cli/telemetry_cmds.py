"""``dpipe-tui metrics`` and ``dpipe-tui gpus``: thin commands over the services (summaries, gpus)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from dpipe_tui.cli import common

if TYPE_CHECKING:
    from dpipe_tui.services.summaries import MetricsSummary


def register(app: typer.Typer) -> None:
    """Add the telemetry commands to ``app``."""
    app.command("metrics")(metrics)
    app.command("gpus")(gpus)


def metrics(
    target: Annotated[
        str,
        typer.Argument(
            metavar="TARGET", help="Run id/prefix in the registry, a run folder, or a console log file."
        ),
    ],
    *,
    json_out: Annotated[
        bool, typer.Option("--json", help="Events as JSON lines (with --summary: the summary as JSON).")
    ] = False,
    events: Annotated[bool, typer.Option("--events", help="List the events, one a line.")] = False,
    summary: Annotated[
        bool, typer.Option("--summary", help="The summary (the default without --json/--events).")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """A run's telemetry: a summary table, or its events (--events; --json for JSON lines).

    A registry run (id, prefix or folder) is read from its metrics.jsonl, which also holds the
    TensorBoard eval and epoch losses; without one, and for a log FILE, the console log is parsed.
    Exit codes: 0, 1 when the summary shows a failed run or a log has no training lines, 3 nothing
    found.
    """
    from dpipe_tui.services import sources, summaries

    common.apply_home(home)
    try:
        source = sources.resolve_source(target, Path(home).expanduser() if home else None)
    except sources.LogNotFound as exc:
        common.fail(str(exc), common.ExitCode.NOT_FOUND)
    if (json_out or events) and not summary:
        out = sys.stdout
        for event in summaries.iter_source_events(source):
            out.write(event.to_json() if json_out else _event_text(event.kind.value, event.to_json()))
            out.write("\n")
        return
    result = summaries.summarize_source(source)
    if result.empty and result.source != "metrics.jsonl":  # a run that has not printed yet is fine
        common.fail(
            f"{result.log}: no training lines in it (diffusion-pipe's console, e.g. 'steps: 1 loss: 0.5')",
            common.ExitCode.FAILED,
        )
    if json_out:
        print(json.dumps(result.to_dict(), default=str))
        return
    for key, value in _summary_rows(result):
        print(f"{key:<12} {value}")
    if result.failure is not None:
        raise typer.Exit(int(common.ExitCode.FAILED))


def _summary_rows(result: MetricsSummary) -> list[tuple[str, str]]:
    rows = [
        ("source", f"{result.log} ({'events' if result.source == 'metrics.jsonl' else 'parsed log'})"),
        (
            "steps",
            f"{result.last_step if result.last_step is not None else '-'} ({result.steps_seen} printed)",
        ),
        ("last loss", "-" if result.last_loss is None else f"{result.last_loss:.4f}"),
        ("epoch loss", "-" if result.epoch_loss is None else f"{result.epoch_loss:.4f}"),
        (
            "eval loss",
            ", ".join(f"{name} {loss:.4f}" for name, loss in sorted(result.eval_loss.items()))
            + (f" (step {result.eval_step})" if result.eval_step is not None else "")
            or "-",
        ),
        ("it/s", "-" if result.steps_per_sec is None else f"{result.steps_per_sec:.3f}"),
        ("epoch", str(result.epoch or "-")),
        ("saves", ", ".join(result.saves) or "-"),
        ("checkpoints", ", ".join(result.checkpoints) or "-"),
        ("resumed at", str(result.resumed_at or "-")),
        ("completed", "yes" if result.completed else "no"),
        ("exit code", "-" if result.exit_code is None else str(result.exit_code)),
        ("warnings", ", ".join(f"{k}={v}" for k, v in sorted(result.warnings.items())) or "-"),
    ]
    if result.failure is not None:
        rows += [
            ("failure", f"{result.failure.cls}: {result.failure.message}"),
            ("hint", result.failure.hint),
        ]
    return rows


def _event_text(kind: str, line: str) -> str:
    return f"{kind:<10} {line}"


def gpus(
    *,
    json_out: common.JsonOption = False,
    watch: Annotated[bool, typer.Option("--watch", "-w", help="Sample repeatedly until Ctrl-C.")] = False,
    interval: Annotated[
        float,
        typer.Option(
            "--interval", "-n", min=0.1, metavar="SECONDS", help="Seconds between samples (0.1 or more)."
        ),
    ] = 2.0,
) -> None:
    """Show GPUs (NVML) and host CPU/RAM; exit code 1 when no GPU can be read."""
    from dpipe_tui.services import gpus as svc

    probe = svc.default_probe()
    try:
        while True:
            report = svc.sample(probe)
            if json_out:
                print(json.dumps(svc.report_to_dict(report)), flush=True)
            else:
                if not report.available:
                    print(f"no GPUs: {report.reason}")
                else:
                    for row in svc.report_rows(report):
                        print("  ".join(f"{cell:<10}" for cell in row).rstrip())
                print(svc.host_line(report), flush=True)
            if not watch:
                break
            time.sleep(max(interval, 0.1))
    except KeyboardInterrupt:
        raise typer.Exit(int(common.ExitCode.INTERRUPTED)) from None
    if not report.available:
        raise typer.Exit(int(common.ExitCode.FAILED))
