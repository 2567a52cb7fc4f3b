"""``dpipe-tui checkpoints / pin / unpin / prune / export``: a run's saves and states, through the cockpit."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path  # noqa: TC003  # typer reads the annotations at runtime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from dpipe_tui import present
from dpipe_tui.cli import common  # noqa: TC001  # typer reads the annotations at runtime
from dpipe_tui.cli.run_cmds import _cockpit, _service

if TYPE_CHECKING:
    from dpipe_tui.services.checkpoints import CheckpointListing

TargetArg = Annotated[
    str,
    typer.Argument(
        metavar="RUN_OR_DIR", help="Run id/prefix, an engine run folder, or an output_dir (any run's)."
    ),
]
ItemArg = Annotated[
    str, typer.Argument(metavar="ITEM", help="A save (epoch50, step500) or a state (global_step500).")
]


def register(app: typer.Typer) -> None:
    """Add the checkpoint commands to ``app``."""
    for name, fn in (
        ("checkpoints", checkpoints),
        ("pin", pin),
        ("unpin", unpin),
        ("prune", prune),
        ("export", export),
    ):
        app.command(name)(fn)


def checkpoints(
    target: TargetArg,
    json_out: Annotated[bool, typer.Option("--json", help="The listing as JSON.")] = False,
    home: common.HomeOption = None,
) -> None:
    """Saved models and training states of a run, with format, rank, size, attempt and leftovers.

    Read from the safetensors headers and folder listings only (never the tensors). Items of an
    abandoned timeline (written after the state a later attempt resumed from) are marked.
    Exit codes: 0, 3 not found.
    """
    cockpit = _cockpit(home)
    found = _service(lambda: cockpit.checkpoints(target))
    if json_out:
        print(json.dumps(_listing_dict(found), default=str))
        return
    width = shutil.get_terminal_size((120, 24)).columns
    if not found.folders:
        print(found.note or f"{target}: nothing saved")
        return
    for index, inv in enumerate(found.folders):
        if index:
            print()
        launches = f"{len(inv.launches)} launch(es)" if inv.launches else "no launch recorded"
        latest = f"latest: {inv.latest}" if inv.latest else "no latest"
        stages = f", pipeline_stages {inv.pipeline_stages}" if inv.pipeline_stages else ""
        print(f"{inv.path}  ({launches}, {latest}{stages}; {present.size(inv.size)})")
        if inv.saves:
            rows = [present.save_row(s, pinned=s.path in found.pinned) for s in inv.saves]
            print("\n".join(present.table_lines(present.SAVE_COLUMNS, rows, width)))
        if inv.states:
            rows = [present.state_row(s, pinned=s.path in found.pinned) for s in inv.states]
            print("\n".join(present.table_lines(present.STATE_COLUMNS, rows, width)))
        if not inv.saves and not inv.states:
            print("  nothing saved yet")
        for line in inv.leftovers:
            print(f"  ! {line}")


def _listing_dict(found: CheckpointListing) -> dict[str, Any]:
    def item(obj: Any) -> dict[str, Any]:
        data = {k: getattr(obj, k) for k in obj.__slots__}
        data["path"] = str(obj.path)
        data["pinned"] = obj.path in found.pinned
        if "weights" in data:
            data["weights"] = str(obj.weights) if obj.weights else None
        return data

    return {
        "target": found.target,
        "run_id": found.run_id,
        "live": found.live,
        "note": found.note,
        "folders": [
            {
                "path": str(inv.path),
                "latest": inv.latest,
                "launches": list(inv.launches),
                "pipeline_stages": inv.pipeline_stages,
                "size": inv.size,
                "leftovers": list(inv.leftovers),
                "saves": [item(s) for s in inv.saves],
                "states": [item(s) for s in inv.states],
            }
            for inv in found.folders
        ],
    }


def pin(target: TargetArg, item: ItemArg, home: common.HomeOption = None) -> None:
    """Pin a save or state: no prune removes it (recorded in dpipe-tui's home, not in output_dir)."""
    cockpit = _cockpit(home)
    path, changed = _service(lambda: cockpit.pin(target, item, pinned=True))
    print(f"pinned {path}" if changed else f"{path} was already pinned")


def unpin(target: TargetArg, item: ItemArg, home: common.HomeOption = None) -> None:
    """Unpin a save or state."""
    cockpit = _cockpit(home)
    path, changed = _service(lambda: cockpit.pin(target, item, pinned=False))
    print(f"unpinned {path}" if changed else f"{path} was not pinned")


def prune(
    target: TargetArg,
    keep_last: Annotated[
        int | None,
        typer.Option("--keep-last", min=0, metavar="N", help="Saved models to keep, newest first."),
    ] = None,
    keep_every: Annotated[
        int | None,
        typer.Option(
            "--keep-every", min=1, metavar="K", help="Also keep saves whose epoch/step is a multiple of K."
        ),
    ] = None,
    states: Annotated[
        int | None,
        typer.Option("--states", min=0, metavar="M", help="Training states to keep, newest first."),
    ] = None,
    abandoned: Annotated[
        bool, typer.Option("--abandoned", help="Remove the items of abandoned timelines.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would go; remove nothing.")] = False,
    home: common.HomeOption = None,
) -> None:
    """Remove saved models and training states beyond the counts given (each count on its own kind).

    Never removed: pinned items, the state `latest` names, a live run's newest save and state.
    Each item is renamed to a trash name in its folder, then deleted: a kill mid-way leaves only
    trash, which the next prune ends. Exit codes: 0, 1 refused, 3 not found.
    """
    from dpipe_tui.services.checkpoints import Policy

    policy = Policy(keep_last=keep_last, keep_every=keep_every, states=states, abandoned=abandoned)
    cockpit = _cockpit(home)
    outcomes = _service(lambda: cockpit.prune(target, policy, dry_run=dry_run))
    total = 0
    for outcome in outcomes:
        plan = outcome.plan
        print(f"{plan.folder}:")
        done = {r.name for r in outcome.removed}
        for removal in plan.remove:
            verb = "would remove" if dry_run else ("removed" if removal.name in done else "gone already")
            print(f"  {verb} {removal.name} ({present.size(removal.size)}): {removal.why}")
        for kept in plan.protected:
            print(f"  kept {kept.name}: {kept.why}")
        if plan.trash:
            verb = "would finish" if dry_run else "finished"
            print(f"  {verb} an interrupted prune ({len(plan.trash)} in trash)")
        if not plan.remove and not plan.trash:
            print("  nothing to remove")
        total += plan.frees if dry_run else sum(r.size for r in outcome.removed)
    print(f"{'would free' if dry_run else 'freed'} {present.size(total)}")


def export(
    target: TargetArg,
    save: Annotated[str, typer.Argument(metavar="SAVE", help="The save to export, e.g. epoch50.")],
    to: Annotated[
        Path, typer.Option("--to", metavar="DIR", help="Folder to copy into (e.g. ComfyUI/models/loras).")
    ],
    name: Annotated[
        str | None, typer.Option("--name", metavar="NAME", help="File name (default: <profile>-<save>).")
    ] = None,
    trigger: Annotated[
        str | None,
        typer.Option("--trigger", metavar="WORDS", help="Trigger words to record in the metadata."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file of that name.")] = False,
    home: common.HomeOption = None,
) -> None:
    """Copy a saved LoRA under a readable name with training metadata in its safetensors header.

    The metadata uses the ss_* keys kohya and ComfyUI tools read (rank, alpha, base model, steps,
    epoch, dataset, trigger words) plus the profile's hash; the tensors are copied byte for byte
    and checked. Exit codes: 0, 1 refused (exists, unreadable), 3 not found.
    """
    cockpit = _cockpit(home)
    result = _service(lambda: cockpit.export(target, save, to, name=name, trigger=trigger, force=force))
    digest = result.data_sha256[:12]
    print(f"exported {result.path} ({present.size(result.size)}; tensor data verified, sha256 {digest})")
    keys = ", ".join(k for k in sorted(result.metadata) if k != "format")
    print(f"metadata: {keys}", file=sys.stderr)
