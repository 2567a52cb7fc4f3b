"""The monitor's one seam to the telemetry package (console parser and failure classifier).

Why a seam: the monitor must never die because of telemetry. Parsing happens through
``dpipe_tui.telemetry`` (the same parser serves ``dpipe-tui metrics`` and the TUI, design.md); if
that import fails the monitor still supervises with a tiny parser that knows the few lines the
supervisor itself depends on (steps, ``TRAINING COMPLETE!``, ``Manually quitting``, exit codes).
"""

from __future__ import annotations

import logging
import re
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from dpipe_tui.telemetry.events import Event, EventKind, Phase

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

log = logging.getLogger(__name__)


class Parser(Protocol):
    """What the monitor needs from a console parser."""

    def feed(self, data: str | bytes) -> list[Event]:
        """Parse a chunk; return completed events."""
        ...

    def flush(self) -> list[Event]:
        """Parse the rest at end of output."""
        ...


@dataclass(frozen=True, slots=True)
class FailureInfo:
    """Why an attempt failed (mirrors telemetry's ``Failure``)."""

    cls: str
    message: str
    hint: str


_STEP = re.compile(r"^steps: (\d+) loss: (\S+)")
_EXIT = re.compile(r"exits with return code = (-?\d+)")


class _MiniParser:
    """Fallback parser: only the markers the supervisor's own decisions depend on."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._buf = ""
        self._training = False

    def feed(self, data: str | bytes) -> list[Event]:
        text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
        parts = (self._buf + text).replace("\r", "\n").split("\n")
        self._buf = parts.pop()
        out: list[Event] = []
        for line in parts:
            out.extend(self._line(line))
        return out

    def flush(self) -> list[Event]:
        rest, self._buf = self._buf, ""
        return self._line(rest) if rest else []

    def _line(self, line: str) -> list[Event]:
        now = self._clock()
        if m := _STEP.match(line):
            try:
                loss = float(m[2])
            except ValueError:
                loss = float("nan")
            events = [] if self._training else [Event(EventKind.PHASE, now, {"phase": Phase.TRAINING.value})]
            self._training = True
            return [*events, Event(EventKind.STEP, now, {"step": int(m[1]), "loss": loss})]
        if "TRAINING COMPLETE!" in line:
            return [Event(EventKind.COMPLETE, now, {})]
        if "Manually quitting" in line:
            return [Event(EventKind.QUIT, now, {})]
        if m := _EXIT.search(line):
            return [Event(EventKind.EXIT, now, {"code": int(m[1])})]
        return []


def make_parser() -> Parser:
    """The telemetry package's ``ConsoleParser``, or the fallback when it cannot be imported."""
    try:
        from dpipe_tui.telemetry.parse import ConsoleParser
    except ImportError:
        log.warning("telemetry parser unavailable; using the supervisor's minimal parser")
        return _MiniParser()
    parser: Parser = ConsoleParser()
    return parser


def frozen_config(config_path: str | Path | None) -> dict[str, Any] | None:
    """The frozen main TOML as a mapping (failure hints, progress plans); None: absent or unreadable."""
    if not config_path:
        return None
    try:
        return tomllib.loads(Path(config_path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        log.info("cannot read the frozen profile %s: %s", config_path, exc)
        return None


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
        from dpipe_tui.telemetry.failures import classify_failure

        found = classify_failure(exit_code, events, tail, config=frozen_config(config_path))
    except Exception:  # the monitor must record an outcome whatever telemetry does
        log.exception("classify_failure unavailable or failed; using the fallback")
    else:
        return None if found is None else FailureInfo(found.cls, found.message, found.hint)
    if any(e.kind is EventKind.COMPLETE for e in events):
        return None
    if any(e.kind is EventKind.QUIT for e in events):
        return FailureInfo("save_quit", "Stopped on request after saving.", "Resume from the checkpoint.")
    return FailureInfo(
        "exit_code", f"Exited with code {exit_code}.", "Read the console (dpipe-tui logs RUN)."
    )
