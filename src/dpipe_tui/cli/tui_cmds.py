"""``dpipe-tui tui`` (and ``dpipe-tui`` alone on a terminal): open the Textual cockpit.

Why here and lazy: the CLI is the only place allowed to import the UI (style.md §2), and only when a
person asks for it, so ``dpipe-tui ls`` never pays for importing Textual.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path  # noqa: TC003  # typer reads the annotations at runtime
from typing import Annotated

import typer

from dpipe_tui import paths
from dpipe_tui.cli import common


def open_tui(
    *,
    no_mouse: bool = False,
    ascii_only: bool = False,
    open_run: str | None = None,
    profiles: Path | None = None,
    edit: Path | None = None,
) -> None:
    """Run the app on this terminal until the user quits (the runs go on without it)."""
    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.ui.app import DpipeApp, setup_logging

    home = paths.home()
    setup_logging(paths.state_dir(home))
    ascii_only = ascii_only or os.environ.get("DPIPE_TUI_ASCII") == "1"
    cockpit = Cockpit(home, profile_dirs=[profiles.expanduser().resolve()] if profiles else None)
    app = DpipeApp(cockpit, ascii_only=ascii_only, open_run=open_run, edit=edit)
    app.run(mouse=not no_mouse)


def tui(
    no_mouse: Annotated[
        bool, typer.Option("--no-mouse", help="Do not capture the mouse (keeps the terminal's copy/paste).")
    ] = False,
    ascii_only: Annotated[
        bool, typer.Option("--ascii", help="No braille or block characters (ASCII charts and bars).")
    ] = False,
    run_ref: Annotated[
        str | None, typer.Option("--run", metavar="RUN", help="Open this run's view at start.")
    ] = None,
    profiles: Annotated[
        Path | None,
        typer.Option("--profiles", metavar="DIR", help="Profile folder for New run (default: profiles/)."),
    ] = None,
    home: common.HomeOption = None,
) -> None:
    """Open the terminal cockpit: runs, GPUs, run views, new runs. Quitting it never stops a run."""
    common.apply_home(home)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        common.fail("the TUI needs a terminal (stdin and stdout); use the commands (dpipe-tui --help)")
    open_tui(no_mouse=no_mouse, ascii_only=ascii_only, open_run=run_ref, profiles=profiles)


def edit(
    path: Annotated[
        Path, typer.Argument(metavar="PATH", help="Main or dataset TOML (a new file is created on save).")
    ],
    no_mouse: Annotated[
        bool, typer.Option("--no-mouse", help="Do not capture the mouse (keeps the terminal's copy/paste).")
    ] = False,
    home: common.HomeOption = None,
) -> None:
    """Edit a profile: form and raw TOML, validated as you type, comments kept; ctrl+s saves.

    Exit codes: 0 closed, 1 the file cannot be edited (a directory, binary, unreadable) or no terminal.
    """
    from dpipe_tui.services.cockpit import Cockpit
    from dpipe_tui.services.errors import Refusal

    common.apply_home(home)
    try:  # refuse what cannot be edited before taking over the terminal
        Cockpit.open_profile(path)
    except Refusal as exc:
        common.fail(exc.message)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        common.fail("the editor needs a terminal (stdin and stdout); dpipe-tui validate checks a file")
    open_tui(no_mouse=no_mouse, edit=path.expanduser().absolute())


def register(app: typer.Typer) -> None:
    """Add the ``tui`` and ``edit`` commands."""
    app.command("tui")(tui)
    app.command("edit")(edit)
