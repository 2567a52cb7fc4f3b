"""Where a run's events come from, for ``dpipe-tui metrics``: a log file, a run folder, or a run id.

Why its own module: a target may be a console log saved from tmux scrollback, a registry run folder,
or a run id; resolving it is one job (run ids through the registry's own prefix rules), reading
and summarising the events another (:mod:`dpipe_tui.services.summaries`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from dpipe_tui import paths


class LogNotFound(LookupError):
    """Neither a file nor a run matching the argument exists."""


@dataclass(frozen=True, slots=True)
class MetricsSource:
    """Where a target's events come from: ``metrics`` (a registry run's events) else ``console``."""

    console: Path | None
    metrics: Path | None = None

    @property
    def path(self) -> Path:
        """The file the events are read from."""
        found = self.metrics or self.console
        assert found is not None
        return found


def _run_folder_source(folder: Path) -> MetricsSource | None:
    metrics, console = folder / "metrics.jsonl", folder / "console.log"
    has_metrics, has_console = metrics.is_file(), console.is_file()
    if not (has_metrics or has_console):
        return None
    return MetricsSource(console if has_console else None, metrics if has_metrics else None)


def resolve_source(target: str, home: Path | None = None) -> MetricsSource:
    """Find what ``target`` means: a log file, a run folder, or a registry run id / unique prefix.

    A run folder's ``metrics.jsonl`` is preferred (it holds TensorBoard eval/epoch losses too); its
    ``console.log`` is parsed when that file is absent. A file argument is always parsed as a log.
    Run ids resolve as every other command resolves them (:meth:`Registry.resolve`).

    Raises:
        LogNotFound: nothing matches, or a prefix matches several runs.
    """
    from dpipe_tui.runs.registry import AmbiguousRun, Registry, RunNotFound

    path = Path(target).expanduser()
    if path.is_file():
        return MetricsSource(path)
    if path.is_dir() and (found := _run_folder_source(path)) is not None:
        return found
    registry = Registry(home or paths.home())
    if "/" not in target:
        try:
            run_id = registry.resolve(target)
        except AmbiguousRun as exc:
            raise LogNotFound(str(exc)) from exc
        except RunNotFound:
            pass
        else:
            found = _run_folder_source(registry.run_dir(run_id))
            if found is not None:
                return found
    raise LogNotFound(f"no log file or run {target!r} (registry: {registry.root})")
