"""``dpipe-tui validate`` and ``dpipe-tui new``: thin commands over :mod:`dpipe_tui.services.profiles`."""

from __future__ import annotations

import json
from pathlib import Path  # typer reads the annotations at runtime
from typing import Annotated

import typer

from dpipe_tui.cli import common


def validate(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help="Main or dataset config files (kind is detected).")
    ],
    no_paths: Annotated[bool, typer.Option("--no-paths", help="Skip every filesystem check.")] = False,
    as_json: common.JsonOption = False,
    gpus: Annotated[
        int | None,
        typer.Option(
            "--gpus",
            min=1,
            metavar="COUNT",
            help="GPU count of the planned run, at least 1 (parallelism rules, steps per epoch); default: "
            "the length of gpus in the profile's dpipe_tui table.",
        ),
    ] = None,
) -> None:
    """Validate profiles; a main config also validates its dataset configs and shows the dataset plan.

    Exit codes: 0 no error (warnings allowed), 1 an error was found, 2 usage error.
    """
    from dpipe_tui.services.cockpit import Cockpit

    run = Cockpit().validate(list(files), check_paths=not no_paths, gpu_count=gpus)
    if as_json:
        print(json.dumps([f.to_json() for f in run.findings], indent=2))
    else:
        for fv in run.files:
            for finding in fv.report.findings:
                print(finding.format())
            if fv.dataset_summary:
                print(f"{fv.path}: dataset plan:")
                for line in fv.dataset_summary:
                    print(f"  {line}")
            elif fv.summary_error:
                print(f"{fv.path}: {fv.summary_error}")
        counts = run.counts()
        print(
            f"{'ok' if run.ok else 'FAILED'}: {counts['error']} error(s), {counts['warning']} warning(s), "
            f"{counts['hint']} hint(s) in {len(run.files)} file(s)"
        )
    raise typer.Exit(int(common.ExitCode.OK if run.ok else common.ExitCode.FAILED))


def new(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Profile name (letters, digits, . _ -).")],
    recipe: Annotated[
        str, typer.Option("--recipe", metavar="MODEL", help="Recipe (model family), e.g. chroma, flux, wan.")
    ],
    directory: Annotated[
        Path | None,
        typer.Option("--dir", metavar="DIR", help="Destination folder (default: the current folder)."),
    ] = None,
) -> None:
    """Create NAME.toml and NAME.dataset.toml from a recipe (never overwrites).

    Exit codes: 0 created, 1 a file already exists (or cannot be written), 2 bad name or unknown recipe.
    """
    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.services.errors import Refusal, RefusalCode

    try:  # into the current folder unless --dir says otherwise (not the checkout's profiles/)
        created = Cockpit().new_profile(recipe, name, directory or Path.cwd())
    except Refusal as exc:
        usage = exc.code is RefusalCode.NOT_FOUND  # an unknown recipe or a bad name
        common.fail(exc.message, common.ExitCode.USAGE if usage else common.ExitCode.FAILED)
    print(f"created {created.main}")
    print(f"created {created.dataset}")
    print("next: replace the /path/to/... placeholders, then run: dpipe-tui validate " + str(created.main))


def register(app: typer.Typer) -> None:
    """Add the profile commands to the app."""
    app.command("validate")(validate)
    app.command("new")(new)
