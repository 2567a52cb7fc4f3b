"""Notifications sent by the run's monitor: completed, failed, stopped, auto-resumed, low disk.

Why the monitor sends them: it is the one process alive for the whole run, when no TUI or CLI is
(the user closed the laptop hours ago). Targets come from ``[notify]`` in ``HOME/settings.toml``: a
shell command that receives the event as one JSON object on stdin, and webhook URLs — ntfy topics get
a plain-text message with a title, Slack and Discord webhooks their JSON shape, any other URL the
event itself. Delivery must never block or break the monitor: each target runs in a daemon thread
with a hard timeout, :meth:`Notifier.wait` is bounded by that timeout, and every error is logged
with the URL's secrets redacted.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dpipe_tui import present
from dpipe_tui.runs.redact import redact_url

if TYPE_CHECKING:
    from dpipe_tui.runs.model import RunRecord
    from dpipe_tui.settings import NotifySettings

log = logging.getLogger(__name__)


def build_event(kind: str, record: RunRecord, **extra: Any) -> dict[str, Any]:
    """The event as sent: what happened, to which run, how far it got, and how long it took."""
    started, ended = record.started_at, record.ended_at or time.time()
    duration = ended - started if started else None
    event: dict[str, Any] = {
        "event": kind,
        "run_id": record.id,
        "state": record.state.value,
        "profile": record.profile_stem,
        "profile_path": record.profile_path,
        "engine": record.engine,
        "gpus": list(record.gpus),
        "step": record.last_step,
        "total_steps": record.total_steps,
        "loss": record.last_loss,
        "attempt": record.attempt,
        "duration_s": round(duration, 1) if duration is not None else None,
        "duration": present.duration(duration),
        "host": socket.gethostname(),
        "time": time.time(),
    }
    if record.failure_class:
        event.update(
            failure_class=record.failure_class, message=record.failure_message, hint=record.failure_hint
        )
    event.update(extra)
    return event


def summary(event: dict[str, Any]) -> tuple[str, str]:
    """(title, body) for people: ``run X failed`` / ``step 130/500, loss 0.1234, 12m05s: hint…``."""
    title = f"dpipe-tui: {event['run_id']} {event['event'].replace('_', ' ')}"
    parts = [f"on {event['host']}"]
    if event.get("step") is not None:
        parts.append(f"step {present.step_text(event['step'], event.get('total_steps'), percent=False)}")
    if event.get("loss") is not None:
        parts.append(f"loss {present.loss_text(event['loss'])}")
    if event.get("duration_s") is not None:
        parts.append(f"after {event['duration']}")
    if event.get("failure_class"):
        parts.append(f"{event['failure_class']}: {event.get('message') or ''}")
        if event.get("hint"):
            parts.append(f"hint: {event['hint']}")
    if event["event"] == "auto_resumed":
        parts.append(f"attempt {event['attempt']} from {event.get('tag', '?')}")
    if event["event"] == "low_disk":
        parts.append(f"{event.get('free_gib', 0):.1f} GiB free in {event.get('path', '?')}")
    return title, "; ".join(parts)


def request_for(url: str, event: dict[str, Any]) -> urllib.request.Request:
    """The HTTP request for one webhook, shaped for the service the URL belongs to.

    ntfy (a host containing ``ntfy``): a plain-text body with Title, Priority and Tags headers.
    Slack (``hooks.slack.com``): ``{"text": …}``. Discord (``/api/webhooks/``): ``{"content": …}``.
    Anything else: the event object itself, plus ``text`` (Slack-compatible receivers show it).
    """
    title, body = summary(event)
    host = urlsplit(url).hostname or ""
    failed = event["event"] in ("failed", "low_disk")
    if "ntfy" in host:
        headers = {
            "Title": title,
            "Priority": "high" if failed else "default",
            "Tags": "x" if failed else "white_check_mark",
        }
        return urllib.request.Request(url, data=body.encode("utf-8"), headers=headers, method="POST")
    if host == "hooks.slack.com":
        payload: dict[str, Any] = {"text": f"*{title}*\n{body}"}
    elif "/api/webhooks/" in url and "discord" in host:
        payload = {"content": f"**{title}**\n{body}"}
    else:
        payload = {**event, "text": f"{title}: {body}"}
    data = json.dumps(payload).encode("utf-8")
    return urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")


@dataclass
class Notifier:
    """Sends events to the configured targets, each in its own daemon thread."""

    settings: NotifySettings
    threads: list[threading.Thread] = field(default_factory=list)

    def send(self, event: dict[str, Any]) -> None:
        """Start delivering ``event`` (returns at once)."""
        if not self.settings.active or event["event"] not in self.settings.on:
            return
        targets: list[tuple[str, Any]] = [("url", u) for u in self.settings.urls]
        if self.settings.command:
            targets.append(("command", self.settings.command))
        for kind, target in targets:
            run = self._post if kind == "url" else self._command
            thread = threading.Thread(target=run, args=(target, event), daemon=True, name=f"notify-{kind}")
            thread.start()
            self.threads.append(thread)

    def wait(self) -> None:
        """Let deliveries finish, for at most the configured timeout (plus a moment) in all."""
        deadline = time.monotonic() + self.settings.timeout_s + 1.0
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self.threads = [t for t in self.threads if t.is_alive()]

    def _post(self, url: str, event: dict[str, Any]) -> None:
        shown = redact_url(url)
        try:
            with urllib.request.urlopen(request_for(url, event), timeout=self.settings.timeout_s) as reply:
                log.info("notified %s of %s (HTTP %s)", shown, event["event"], reply.status)
        except Exception as exc:  # a dead endpoint is logged, never raised
            log.warning("notifying %s of %s failed: %s", shown, event["event"], _redacted(str(exc), url))

    def _command(self, command: str, event: dict[str, Any]) -> None:
        try:
            proc = subprocess.Popen(
                command,
                shell=True,
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            log.warning("notify command could not start: %s", exc)
            return
        try:
            _, err = proc.communicate(
                (json.dumps(event) + "\n").encode("utf-8"), timeout=self.settings.timeout_s
            )
        except subprocess.TimeoutExpired:
            _kill_group(proc.pid)
            proc.wait()
            log.warning("notify command killed after %.0fs", self.settings.timeout_s)
            return
        if proc.returncode:
            log.warning(
                "notify command exited %d: %s", proc.returncode, err.decode("utf-8", "replace")[-300:]
            )
        else:
            log.info("notify command ran for %s", event["event"])


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _redacted(text: str, url: str) -> str:
    return text.replace(url, redact_url(url))
