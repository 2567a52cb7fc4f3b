"""Notifications from the monitor: a real local HTTP server and a real shell command at a run's end."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any

import pytest

from dpipe_tui.runs.model import RunRecord, RunState
from dpipe_tui.runs.redact import redact_url
from dpipe_tui.runs.registry import Registry
from dpipe_tui.settings import SettingsError, load_settings
from dpipe_tui.supervisor.notify import build_event, request_for
from tests.supervisor.conftest import ProfileFactory, Submitter, wait_for

if TYPE_CHECKING:
    import urllib.request
    from pathlib import Path


class Receiver:
    """A local HTTP endpoint that records what it is sent."""

    def __init__(self) -> None:
        received: list[tuple[str, dict[str, str], bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                received.append((self.path, dict(self.headers), body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture
def receiver() -> Any:
    r = Receiver()
    yield r
    r.close()


def _settings(home: Path, text: str) -> None:
    (home / "settings.toml").write_text(text)


def test_completed_and_failed_runs_notify_a_webhook_and_a_command(
    home: Path,
    scripted_profile: ProfileFactory,
    submit_scripted: Submitter,
    receiver: Receiver,
    tmp_path: Path,
) -> None:
    out = tmp_path / "events.jsonl"
    _settings(
        home,
        f'[notify]\ncommand = "cat >> {out}"\nurls = ["{receiver.url}/hook?token=s3cr3t"]\ntimeout_s = 3\n',
    )
    ok = submit_scripted(scripted_profile("ok", steps=3, step_time=0.01))
    wait_for(lambda: Registry(home).load(ok.id).state.is_terminal, 30)
    bad = submit_scripted(scripted_profile("bad", steps=10, step_time=0.01, fail_at=2, exit_code=1))
    wait_for(
        lambda: len(receiver.received) >= 2 and out.is_file() and len(out.read_text().splitlines()) >= 2, 30
    )
    sent = [json.loads(body) for _, _, body in receiver.received]
    by_run = {e["run_id"]: e for e in sent}
    assert by_run[ok.id]["event"] == "completed"
    assert by_run[ok.id]["step"] == 3
    assert by_run[bad.id]["event"] == "failed"
    assert by_run[bad.id]["failure_class"]
    assert "hint" in by_run[bad.id]
    assert all("text" in e for e in sent)  # Slack-compatible receivers show it
    piped = [json.loads(line) for line in out.read_text().splitlines()]
    assert {e["event"] for e in piped} == {"completed", "failed"}
    log = (Registry(home).run_dir(bad.id) / "monitor.log").read_text()
    assert "s3cr3t" not in log  # the URL is logged redacted
    assert "token=***" in log


def test_a_dead_endpoint_does_not_delay_the_run_end_beyond_its_timeout(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter, tmp_path: Path
) -> None:
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))
    dead.listen(5)  # accepts connections, never answers
    port = dead.getsockname()[1]
    _settings(
        home,
        f'[notify]\ncommand = "sleep 30"\nurls = ["http://127.0.0.1:{port}/"]\ntimeout_s = 1\n',
    )
    try:
        record = submit_scripted(scripted_profile(steps=2, step_time=0.01))
        wait_for(lambda: Registry(home).load(record.id).state.is_terminal, 30)
        ended = time.monotonic()
        monitor = Registry(home).load(record.id)
        from dpipe_tui.supervisor import procs

        wait_for(lambda: not procs.is_alive(monitor.monitor_pid, monitor.monitor_started), 10)
        assert time.monotonic() - ended < 1 + 1 + 2.0  # timeout, the join slack, a margin
        assert Registry(home).load(record.id).state is RunState.COMPLETED
        log = (Registry(home).run_dir(record.id) / "monitor.log").read_text()
        assert "notify command killed after 1s" in log
        assert "failed" in log  # the dead URL, logged
    finally:
        dead.close()


def _record(**changes: Any) -> RunRecord:
    base = RunRecord(id="20261202-1200-chroma-abcd", profile_path="/p/chroma.toml", engine="builtin")
    import dataclasses

    return dataclasses.replace(base, **changes)


def _body(request: urllib.request.Request) -> bytes:
    assert isinstance(request.data, bytes)
    return request.data


def test_payloads_per_service() -> None:
    record = _record(state=RunState.FAILED, last_step=130, total_steps=500, failure_class="cuda_oom")
    event = build_event("failed", record)
    ntfy = request_for("https://ntfy.sh/my-topic", event)
    assert ntfy.headers["Title"] == "dpipe-tui: 20261202-1200-chroma-abcd failed"
    assert ntfy.headers["Priority"] == "high"
    assert b"step 130/500" in _body(ntfy)
    slack = json.loads(_body(request_for("https://hooks.slack.com/services/T1/B2/xyz", event)))
    assert set(slack) == {"text"}
    discord = json.loads(_body(request_for("https://discord.com/api/webhooks/1/tok", event)))
    assert set(discord) == {"content"}
    generic = json.loads(_body(request_for("https://example.org/hook", event)))
    assert generic["run_id"] == record.id
    assert generic["failure_class"] == "cuda_oom"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://ntfy.sh/topic", "https://ntfy.sh/topic"),
        ("https://user:pw@ntfy.example/t?auth=abc&x=1", "https://***@ntfy.example/t?auth=***&x=1"),
        (
            "https://hooks.slack.com/services/T00/B00/XXXXsecret",
            "https://hooks.slack.com/services/T00/B00/***",
        ),
        ("https://discord.com/api/webhooks/123/tokenvalue", "https://discord.com/api/webhooks/123/***"),
        ("https://x.org/h?access_token=abc", "https://x.org/h?access_token=***"),
    ],
)
def test_urls_are_redacted_wherever_shown(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[notify]\nurls = 'https://x'\n", "notify.urls"),
        ("[notify]\nurls = ['ftp://x']\n", "notify.urls"),
        ("[notify]\non = ['exploded']\n", "notify.on"),
        ("[notify]\ntimeout_s = -1\n", "timeout_s"),
        ("[notify]\nbel = true\n", "notify.bel"),
        ("notify = 3\n", "[notify]"),
    ],
)
def test_bad_notify_settings_name_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    (tmp_path / "settings.toml").write_text(text)
    with pytest.raises(SettingsError) as err:
        load_settings(tmp_path)
    assert str(tmp_path / "settings.toml") in str(err.value)
    assert key in str(err.value)
