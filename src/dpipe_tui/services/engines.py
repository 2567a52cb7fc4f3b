"""Which engine a profile runs on, and where its relative paths resolve.

Why one function: ``run`` and ``validate`` must agree on the base directory of a profile's relative
paths (the diffusion-pipe checkout for that engine, spec §1.4; the profile's folder for the builtin
one, or for any engine with ``[dpipe_tui] relative_paths = 'profile'``: the frozen copies hand the
trainer absolute paths), or a profile could validate clean and then fail at launch. Precedence: the
explicit request, the profile's ``[dpipe_tui] engine``, the settings' ``default_engine``, then ``builtin``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpipe_tui import paths
from dpipe_tui.supervisor.launch import BUILTIN, DIFFUSION_PIPE, ENGINES, resolve_deepspeed

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

    from dpipe_tui.settings import Settings


class EngineError(ValueError):
    """The chosen engine cannot run here (unknown name, no diffusion-pipe checkout)."""


@dataclass(frozen=True, slots=True)
class EngineChoice:
    """The engine of a run and the places it runs from."""

    engine: str
    base_dir: Path
    """What relative paths in the profile resolve against."""
    cwd: Path
    """The engine's working directory."""
    launcher: str
    """The program to execute (``deepspeed`` of the checkout, or this Python for the builtin engine)."""


def choose_engine(
    settings: Settings, home: Path, profile: Path, table: Mapping[str, Any], requested: str | None = None
) -> EngineChoice:
    """Pick the engine for ``profile`` and its working directory.

    Args:
        settings: the user's settings.
        home: the dpipe-tui home (named in error messages).
        profile: the main profile (absolute).
        table: the profile's ``[dpipe_tui]`` table.
        requested: the engine asked for on the command line, if any.

    Raises:
        EngineError: unknown engine, or diffusion-pipe without a usable checkout.
    """
    engine = requested or table.get("engine") or settings.default_engine or BUILTIN
    if engine not in ENGINES:
        raise EngineError(f"unknown engine {engine!r} (choose {' or '.join(ENGINES)})")
    if engine != DIFFUSION_PIPE:
        return EngineChoice(engine, profile.parent, profile.parent, sys.executable)
    if settings.diffusion_pipe_path is None:
        raise EngineError(
            f"the diffusion-pipe engine needs a checkout: set ${paths.DIFFUSION_PIPE_ENV} "
            f"or [diffusion_pipe] path in {paths.settings_file(home)}"
        )
    checkout = settings.diffusion_pipe_path.resolve()
    if not (checkout / "train.py").is_file():
        raise EngineError(f"{checkout} is not a diffusion-pipe checkout (no train.py)")
    base = profile.parent if table.get("relative_paths") == "profile" else checkout
    return EngineChoice(engine, base, checkout, resolve_deepspeed(checkout, settings.deepspeed))
