"""App-level messages: what the thread workers learned from the cockpit, delivered to the UI thread.

Why messages: a worker thread must never touch a widget; it posts one of these (``post_message`` is
thread-safe) and the screen applies it. Bursts collapse: a newer listing replaces an unhandled older
one (``can_replace``), so a slow repaint never builds a backlog.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.services.gpus import GpuReport
    from dpipe_tui.services.runs import RunListing


@dataclass
class RunsRefreshed(Message):
    """A fresh listing of every run (reconciled with the OS, live runs with progress)."""

    listing: RunListing

    def can_replace(self, message: Message) -> bool:
        """A newer listing makes an unhandled older one pointless."""
        return isinstance(message, RunsRefreshed)


@dataclass
class GpuSampled(Message):
    """A fresh GPU (and host) sample."""

    report: GpuReport

    def can_replace(self, message: Message) -> bool:
        """A newer sample makes an unhandled older one pointless."""
        return isinstance(message, GpuSampled)


@dataclass
class ServiceFailed(Message):
    """A cockpit call in a worker failed; the screen shows ``text`` (a refusal's message, or the error)."""

    text: str


@dataclass
class OpenRun(Message):
    """Request: open the run view of ``run_id`` (handled by the app)."""

    run_id: str


@dataclass
class OpenNewRun(Message):
    """Request: open the New run screen (handled by the app)."""


@dataclass
class OpenEditor(Message):
    """Request: open the profile editor on ``path`` (handled by the app)."""

    path: Path
    read_only: bool = False
    title: str = ""
