"""Telemetry: console parsing, failure classification, TensorBoard reading, metrics and progress.

The core API is re-exported here; heavier parts (tfevents, store, progress) are imported by path.
"""

from __future__ import annotations

from dpipe_tui.telemetry.events import Event, EventKind, Phase
from dpipe_tui.telemetry.failures import Failure, classify_failure
from dpipe_tui.telemetry.parse import ConsoleParser, parse_text

__all__ = ["ConsoleParser", "Event", "EventKind", "Failure", "Phase", "classify_failure", "parse_text"]
