"""Every filesystem location dpipe-tui uses, in one place.

Why one module: the TUI, the CLI, the per-run monitor and the tests must agree on where the
registry lives, and a test must be able to point everything at a temp dir with one variable
(``DPIPE_TUI_HOME``). Nothing here creates directories except :func:`ensure_private_dir`, which
creates them private to the user (0700) because GPU servers are shared (design.md).

Resolution of the home directory, first match wins:

1. an explicit ``home`` argument (the CLI's ``--home``),
2. ``$DPIPE_TUI_HOME``,
3. the source checkout this package runs from (``<repo>/`` when ``<repo>/pyproject.toml`` names
   dpipe-tui), so that ``runs/`` sits at the top of the repository as design.md lays out,
4. ``$XDG_STATE_HOME/dpipe-tui`` (default ``~/.local/state/dpipe-tui``) for an installed package.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

HOME_ENV = "DPIPE_TUI_HOME"
DIFFUSION_PIPE_ENV = "DIFFUSION_PIPE_PATH"

_PACKAGE_DIR = Path(__file__).resolve().parent


def source_checkout() -> Path | None:
    """Return the repository root when running from a dpipe-tui source checkout, else None."""
    candidate = _PACKAGE_DIR.parent.parent
    pyproject = candidate / "pyproject.toml"
    try:
        if pyproject.is_file() and 'name = "dpipe-tui"' in pyproject.read_text(encoding="utf-8"):
            return candidate
    except OSError:
        return None
    return None


def home(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the dpipe-tui home directory (not created)."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get(HOME_ENV)
    if env:
        return Path(env).expanduser().resolve()
    checkout = source_checkout()
    if checkout is not None:
        return checkout
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state).expanduser().resolve() / "dpipe-tui"


def runs_dir(home_dir: Path) -> Path:
    """The run registry: one folder per run (design.md)."""
    return home_dir / "runs"


def settings_file(home_dir: Path) -> Path:
    """User settings (engine paths, defaults), TOML."""
    return home_dir / "settings.toml"


def state_dir(home_dir: Path) -> Path:
    """Locks, the TUI's log file and other private state that is not a run."""
    return home_dir / "state"


def demo_dir(home_dir: Path) -> Path:
    """Generated assets of the tiny CPU demo (model, dataset); created on first use."""
    return home_dir / ".demo"


PACKAGED_DATA = _PACKAGE_DIR / "_data"
"""Where a wheel carries ``recipes/`` and ``profiles/`` (pyproject's hatch ``force-include``)."""


def bundled_dir(name: str) -> Path | None:
    """Return ``profiles/`` or ``recipes/``: the source checkout's, else the installed package's copy.

    The packaged copy lives inside the installed package: read it, never write into it (new
    profiles go to the home's ``profiles/``).
    """
    return find_bundled(name, source_checkout(), PACKAGED_DATA)


def find_bundled(name: str, checkout: Path | None, data_dir: Path) -> Path | None:
    """``checkout/name`` when running from a checkout, else ``data_dir/name``; None when neither exists."""
    for folder in (checkout, None if checkout is not None else data_dir):
        if folder is not None and (folder / name).is_dir():
            return folder / name
    return None


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for the directories this call creates."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
    return path
