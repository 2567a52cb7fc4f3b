"""How an attempt ended, decided from three facts: the exit status, the failure class, the stop request.

Why a pure function: the monitor's most consequential decision — completed, failed or stopped — used
to sit inside a registry update with everything else; as a function of plain values it is tested as
a table (every class, with and without a stop request), and any reader can apply the same rule.
"""

from __future__ import annotations

from dpipe_tui.runs.model import RunState

STOP_CLASSES = frozenset({"save_quit", "user_stop"})
"""Failure classes that mean the engine was asked to quit (its own ``Manually quitting``, a signal)."""


def decide(exit_code: int | None, failure_class: str | None, stop_requested: bool) -> RunState:
    """The terminal state of an attempt.

    Args:
        exit_code: the engine's exit status (None: it never started, or no status was seen).
        failure_class: the classifier's verdict (None: ``TRAINING COMPLETE!`` seen and a clean exit).
        stop_requested: a stop was requested for this attempt (``dpipe-tui stop``, the TUI).

    Returns:
        ``completed`` when the classifier found no failure and the exit was clean (a run that
        finished while a stop was on its way did finish); ``stopped`` when a stop was requested or
        the engine quit on request; ``failed`` otherwise (a non-zero exit without a class is still a
        failure, never a completion).
    """
    if failure_class is None and exit_code in (0, None):
        return RunState.COMPLETED
    if stop_requested or failure_class in STOP_CLASSES:
        return RunState.STOPPED
    return RunState.FAILED
