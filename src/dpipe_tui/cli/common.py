"""Pieces every CLI command module shares: exit codes, the ``--home`` option, one-line errors.

Why: every command must agree on exit codes (design.md: 0 ok, 1 the thing failed, 2 usage) and on how
diagnostics look (one plain line on stderr, data on stdout), so scripts can rely on them.
"""

from __future__ import annotations

import os
import sys
from enum import IntEnum
from typing import Annotated, NoReturn

import typer

from dpipe_tui import paths


class ExitCode(IntEnum):
    """Exit codes of every ``dpipe-tui`` command."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    INTERRUPTED = 130


EXIT_CODES_HELP = "Exit codes: 0 success, 1 the thing failed, 2 usage error, 3 not found, 130 interrupted."

HomeOption = Annotated[
    str | None,
    typer.Option(
        "--home",
        metavar="DIR",
        help=f"dpipe-tui home (registry in HOME/runs). Default: ${paths.HOME_ENV} or the checkout.",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON to stdout.")]


def apply_home(home: str | None) -> None:
    """Make ``--home`` the home for this process and the processes it starts."""
    if home:
        resolved = paths.home(home)
        if not resolved.is_dir():
            try:  # an empty new home is fine; one that cannot exist is an error, not "no runs"
                resolved.mkdir(parents=True, mode=0o700)
            except OSError as exc:
                fail(f"--home {home}: cannot create it ({exc.strerror or exc})", ExitCode.USAGE)
        os.environ[paths.HOME_ENV] = str(resolved)


def fail(message: str, code: ExitCode = ExitCode.FAILED) -> NoReturn:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    print(f"dpipe-tui: {message}", file=sys.stderr)
    raise typer.Exit(int(code))
