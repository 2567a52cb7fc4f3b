"""Pre-flight probes for a launch: the profile's ``[dpipe_tui]`` table, the demo preparation step,
GPUs present, free disk (the step plan comes from validation's dataset scan: one scan a launch).

Why separate from the launch use case: each probe touches the outside world (a subprocess, NVML, the
filesystem, a dataset scan) and must degrade to a clear message rather than a traceback; the
launch service composes them into one typed decision.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


class PreflightError(ValueError):
    """A pre-flight probe cannot proceed (e.g. unreadable profile)."""


def profile_table(profile: Path, read: Callable[[Path], str] | None = None) -> dict[str, Any]:
    """The ``[dpipe_tui]`` table of a main profile (empty when absent).

    Raises:
        PreflightError: the profile cannot be read as a TOML text file (binary, a directory, a FIFO,
            too big, unreadable) — the message names the file and says what is wrong.
    """
    from dpipe_tui.profiles.snapshot import read_profile_text

    try:
        data = tomllib.loads((read or read_profile_text)(profile))
    except UnicodeDecodeError:
        raise PreflightError(
            f"{profile}: cannot read the profile: not UTF-8 text (is it a TOML file?)"
        ) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise PreflightError(f"{profile}: cannot read the profile: {reason}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PreflightError(f"{profile}: cannot read the profile: {exc}") from exc
    table = data.get("dpipe_tui", {})
    return table if isinstance(table, dict) else {}


def prepare_demo(profile: Path) -> str | None:
    """Run ``python -m dpipe_tui.engine.demo --profile PATH``; return an error message or None."""
    proc = subprocess.run(
        [sys.executable, "-m", "dpipe_tui.engine.demo", "--profile", str(profile)],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        return f"preparing the demo failed (exit {proc.returncode}): {' | '.join(tail)}"
    return None


def gpus_available() -> tuple[bool, tuple[int, ...], str | None]:
    """(has NVIDIA GPUs, their indices, reason when none)."""
    try:
        from dpipe_tui.gpu.probe import default_probe

        report = default_probe().sample()
    except Exception as exc:  # no probe is no GPU, never a crash
        return False, (), str(exc)
    if not report.available or not report.gpus:
        return False, (), report.reason or "no NVIDIA GPU found"
    return True, tuple(g.index for g in report.gpus), None


def free_gib(path: Path) -> float:
    """Free disk space (GiB) on the filesystem that holds ``path`` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    return shutil.disk_usage(probe).free / 2**30
