"""Entry point of the ``dpipe-tui`` command; assembles the command modules.

Each command module registers its commands on the one typer app and imports its services lazily,
inside the command function, so ``dpipe-tui --help`` and the TUI start fast and never import torch.
"""

from __future__ import annotations

import signal
from typing import Annotated

import typer

from dpipe_tui import __version__
from dpipe_tui.cli import common, helpfmt

helpfmt.install()

app = typer.Typer(
    name="dpipe-tui",
    help="A terminal cockpit for training diffusion LoRAs with diffusion-pipe.\n\n" + common.EXIT_CODES_HELP,
    no_args_is_help=False,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",  # paragraphs reflow (rich mode keeps every source line break)
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        print(f"dpipe-tui {__version__}")
        raise typer.Exit(0)


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    home: common.HomeOption = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Without a command: open the TUI on a terminal, show this help elsewhere."""
    import sys

    common.apply_home(home)
    if ctx.invoked_subcommand is None:
        if sys.stdin.isatty() and sys.stdout.isatty():
            from dpipe_tui.cli.tui_cmds import open_tui

            open_tui()
        else:
            print(ctx.get_help())


def _register_commands() -> None:
    from dpipe_tui.cli import checkpoint_cmds, profile_cmds, run_cmds, telemetry_cmds, tui_cmds

    for module in (profile_cmds, run_cmds, telemetry_cmds, checkpoint_cmds, tui_cmds):
        module.register(app)


_register_commands()


def main() -> None:
    """Run the command line.

    A closed pipe (``dpipe-tui logs RUN | head -1``) ends the command quietly with the conventional
    SIGPIPE status (141 in the shell), as ``cat`` or ``grep`` do: Click would print nothing and exit 1.
    """
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    app()
