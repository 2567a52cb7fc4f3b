"""The monitor's one seam to the telemetry package (console parser and failure classifier).

Why a seam: the monitor must record an outcome whatever telemetry does. Parsing goes through
``dpipe_tui.telemetry`` (the same parser serves ``dpipe-tui metrics`` and the TUI, design.md), and a
classifier that raises is logged and replaced by the plain facts (complete, quit on request, exit
code), so a telemetry bug can never leave a run without a state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpipe_tui.profiles.frozen import frozen_config
from dpipe_tui.telemetry.events import Event, EventKind
from dpipe_tui.telemetry.failures import classify_failure
from dpipe_tui.telemetry.parse import ConsoleParser

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """Why an attempt failed (mirrors telemetry's ``Failure``)."""

    cls: str
    message: str
    hint: str


def make_parser() -> ConsoleParser:
    """The console parser the monitor feeds (the one ``dpipe-tui metrics`` and the TUI use too)."""
    return ConsoleParser()


def classify(
    exit_code: int | None,
    events: Sequence[Event],
    tail: Sequence[str],
    *,
    config_path: str | Path | None = None,
) -> FailureInfo | None:
    """Classify an ended attempt; None means it completed (``TRAINING COMPLETE!`` seen).

    ``config_path`` is the run's frozen profile: the CUDA OOM hint skips the levers it already uses
    (e.g. ``blocks_to_swap``).
    """
    try:
        found = classify_failure(exit_code, events, tail, config=frozen_config(config_path))
    except Exception:  # the monitor must record an outcome whatever telemetry does
        log.exception("classify_failure failed; recording the plain facts")
    else:
        return None if found is None else FailureInfo(found.cls, found.message, found.hint)
    if any(e.kind is EventKind.COMPLETE for e in events):
        return None
    if any(e.kind is EventKind.QUIT for e in events):
        return FailureInfo("save_quit", "Stopped on request after saving.", "Resume from the checkpoint.")
    return FailureInfo(
        "exit_code", f"Exited with code {exit_code}.", "Read the console (dpipe-tui logs RUN)."
    )
