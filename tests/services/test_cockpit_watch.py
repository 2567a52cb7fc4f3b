"""The cockpit facade and its RunWatch against real runs of the scripted trainer in a temp home."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.runs.registry import Registry
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.services.errors import Refusal, RefusalCode
from dpipe_tui.telemetry.events import EventKind

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.services.watch import RunWatch
    from dpipe_tui.telemetry.events import Event
    from tests.supervisor.conftest import ProfileFactory, Submitter


def _poll_until_ended(
    cockpit: Cockpit, run_id: str, *, console: bool = False, tail_lines: int = 0, series: bool = False
) -> tuple[list[Event], list[str], RunWatch]:
    watch = cockpit.watch(run_id, console=console, tail_lines=tail_lines, series=series)
    events: list[Event] = []
    lines: list[str] = []
    deadline = time.monotonic() + 60
    update = watch.poll()
    while True:
        events += update.events
        lines += update.lines
        if update.ended or time.monotonic() > deadline:
            break
        time.sleep(0.2)
        update = watch.poll()
    # one more poll after the end: the monitor's last lines, then nothing is ever read twice
    last = watch.poll()
    events += last.events
    lines += last.lines
    again = watch.poll()
    assert again.events == ()
    assert again.lines == ()
    return events, lines, watch


def test_watch_follows_a_run_to_its_end_reading_each_byte_once(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=30, step_time=0.05, checkpoint_every=10))
    cockpit = Cockpit(home)
    events, lines, watch = _poll_until_ended(cockpit, record.id, console=True, tail_lines=5, series=True)
    registry = Registry(home)
    assert watch.record.state.value == "completed"
    steps = [e.data["step"] for e in events if e.kind is EventKind.STEP]
    assert steps == list(range(1, 31))
    # the console lines handed out are exactly the file's lines, in order, each once
    text = registry.console_log(record.id).read_text(encoding="utf-8", errors="replace")
    assert lines == text.splitlines()[-len(lines) :]
    assert watch.console_offset == registry.console_log(record.id).stat().st_size
    xs, ys = watch.chart("loss", 10)
    assert xs
    assert len(xs) <= 12
    assert xs[-1] == 30.0
    assert all(y == y for y in ys)
    assert watch.chart("loss", 100, last_steps=5)[0][0] >= 25.0
    assert watch.chart("eval:missing", 10) == ([], [])


def test_watch_of_an_ended_run_starts_from_the_console_tail(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    record = submit_scripted(scripted_profile(steps=5, step_time=0.01))
    cockpit = Cockpit(home)
    _poll_until_ended(cockpit, record.id)
    first = cockpit.watch(record.id[:12], console=True, tail_lines=3).poll()
    assert len(first.lines) == 3
    assert first.progress.step == 5
    assert first.ended


def test_cockpit_refusals_are_typed(
    home: Path, scripted_profile: ProfileFactory, submit_scripted: Submitter
) -> None:
    cockpit = Cockpit(home)
    with pytest.raises(Refusal) as missing:
        cockpit.status("nope")
    assert missing.value.code is RefusalCode.NOT_FOUND
    a = submit_scripted(scripted_profile("alpha", steps=1, step_time=0.01), start=False)
    b = submit_scripted(scripted_profile("alpha", steps=1, step_time=0.01), start=False)
    assert a.id[:14] == b.id[:14]  # same date, minute and profile: only the suffix differs
    with pytest.raises(Refusal) as ambiguous:
        cockpit.status(a.id[:8])
    assert ambiguous.value.code is RefusalCode.AMBIGUOUS


def test_settings_are_reread_when_the_file_changes(home: Path) -> None:
    cockpit = Cockpit(home)
    assert cockpit.settings().stop_timeout_s == 600.0
    cockpit.settings_path.write_text("stop_timeout_s = 5\n")
    assert cockpit.settings().stop_timeout_s == 5.0
    cockpit.settings_path.write_text("stop_timeout_s = 'soon'\n")
    with pytest.raises(Refusal) as bad:
        cockpit.settings()
    assert bad.value.code is RefusalCode.SETTINGS
    assert "stop_timeout_s" in bad.value.message
