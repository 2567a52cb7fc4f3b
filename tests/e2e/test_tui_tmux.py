"""End to end in a real terminal: the TUI in a detached tmux session at 80x24, driven by keys.

A person's path: open dpipe-tui, press n, see the demo profile validated, press l, watch the run reach
``completed``. Then a second, longer run; the TUI is SIGKILLed mid-run (an SSH drop, a closed pane);
a new TUI shows the run still running, and it really is (the registry and the OS agree).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.services.cockpit import Cockpit

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from tests.supervisor.conftest import BuiltinProfileFactory

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

DPIPE_TUI = os.path.join(os.path.dirname(sys.executable), "dpipe-tui")


class Tmux:
    """A private tmux server with one 80x24 session."""

    def __init__(self, env: dict[str, str]) -> None:
        self.socket = f"dpipe-test-{uuid.uuid4().hex[:8]}"
        self.env = env

    def cmd(self, *args: str) -> str:
        result = subprocess.run(
            ["tmux", "-L", self.socket, *args], capture_output=True, text=True, check=True, env=self.env
        )
        return result.stdout

    def start(self, command: str, name: str) -> None:
        self.cmd("new-session", "-d", "-s", name, "-x", "80", "-y", "24", command)

    def keys(self, target: str, *keys: str) -> None:
        self.cmd("send-keys", "-t", target, *keys)

    def screen(self, target: str) -> str:
        return self.cmd("capture-pane", "-p", "-t", target)

    def wait_for(self, target: str, text: str, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen(target)
            if text in screen:
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"{text!r} not on screen after {timeout}s:\n{screen}")
            time.sleep(0.2)

    def pane_pid(self, target: str) -> int:
        return int(self.cmd("display-message", "-p", "-t", target, "#{pane_pid}").strip())

    def kill(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, check=False)


@pytest.fixture
def tmux(home: Path) -> Iterator[Tmux]:
    env = {**os.environ, "DPIPE_TUI_HOME": str(home), "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    server = Tmux(env)
    yield server
    server.kill()


def test_launch_watch_kill_and_reattach(
    tmux: Tmux, home: Path, builtin_profile: BuiltinProfileFactory, tmp_path: Path
) -> None:
    folder = tmp_path / "e2e-profiles"
    folder.mkdir()
    for name, epochs in (("a-demo", "4"), ("b-long", "2000")):
        made = builtin_profile(epochs=epochs, output_dir=repr(str(tmp_path / name)))
        # beside the shared demo assets (relative paths), under a name of its own
        target = made.with_name(f"e2e-{name}-{tmp_path.name}.toml")
        made.rename(target)
        (folder / f"{name}.toml").symlink_to(target)
    tui = f"{DPIPE_TUI} tui --profiles {folder}"
    tmux.start(tui, "one")
    tmux.wait_for("one", "no runs yet", 30)
    tmux.keys("one", "n")
    tmux.wait_for("one", "ready to launch", 90)
    tmux.keys("one", "l")
    tmux.wait_for("one", "loss (whole run)", 60)  # the run view of the new run
    screen = tmux.wait_for("one", "completed", 120)
    assert "e2e-a-demo" in screen
    cockpit = Cockpit(home)
    first = cockpit.runs().runs
    assert [s.record.state.value for s in first] == ["completed"]

    # a long run, then the TUI dies mid-run
    tmux.keys("one", "Escape")
    tmux.wait_for("one", "1 runs", 10)
    tmux.keys("one", "n")
    tmux.wait_for("one", "b-long", 30)
    tmux.keys("one", "End")
    tmux.wait_for("one", "ready to launch", 90)
    tmux.keys("one", "l")
    tmux.wait_for("one", "running", 60)
    long_run = next(s.record for s in cockpit.runs().runs if s.record.state.value == "running")
    deadline = time.monotonic() + 60
    while (cockpit.status(long_run.id).record.last_step or 0) < 5:
        assert time.monotonic() < deadline, "the long run never reached step 5"
        time.sleep(0.5)
    shell = tmux.pane_pid("one")
    os.kill(shell, signal.SIGKILL)  # the pane's process is the TUI itself (tmux runs the command)
    time.sleep(1.0)
    status = cockpit.status(long_run.id)
    assert status.record.state.value == "running"
    assert status.engine_alive
    step_at_kill = status.record.last_step or 0

    tmux.start(tui, "two")
    screen = tmux.wait_for("two", "running", 30)
    assert long_run.id[-4:] in screen  # the run ids keep their unique end at 80 columns
    time.sleep(2.0)
    later = cockpit.status(long_run.id)
    assert later.record.state.value == "running"
    assert (later.record.last_step or 0) > step_at_kill  # still training, not just shown so
    stopped = cockpit.stop(long_run.id, now=True)  # request, then follow until the monitor ended it
    assert stopped.record.state.is_terminal
    assert stopped.leftovers == ()


def test_the_run_progress_line_fits_80_columns(
    tmux: Tmux, home: Path, builtin_profile: BuiltinProfileFactory, tmp_path: Path
) -> None:
    # A long run (12,000 steps) shows a measured ETA however fast the machine trains (the rate window
    # needs 5 s of steps), and is stopped once seen; `sleep` keeps the pane for the final line.
    long_profile = builtin_profile(epochs="2000", output_dir=repr(str(tmp_path / "long")))
    tmux.start(f"{DPIPE_TUI} run {long_profile}; sleep 600", "run")
    deadline = time.monotonic() + 120
    line = ""
    while not re.search(r"eta \d", line):  # a measured ETA, once the rate window has filled
        assert time.monotonic() < deadline, tmux.screen("run")
        time.sleep(0.3)
        line = next((ln for ln in tmux.screen("run").splitlines() if ln.startswith("▶ running")), "")
    # state, bar, step/total, percent, elapsed and ETA all fit, on one line (capture-pane splits a wrap)
    assert re.match(r"▶ running [━─]{10,} \d+/\d+ \d+% \S+ eta \S+", line), line
    assert len(line) <= 80
    cockpit = Cockpit(home)
    (running,) = cockpit.runs().runs
    assert cockpit.stop(running.record.id).record.state.value == "stopped"
    screen = tmux.wait_for("run", "checkpoint saved", 60)
    final = next(ln for ln in screen.splitlines() if ln.startswith("■ stopped"))
    assert re.match(r"■ stopped [━─]+ \d+/12000 \d+% ", final), final
    assert "eta" not in final  # nothing is left to wait for once it ended

    short_profile = builtin_profile(epochs="4", output_dir=repr(str(tmp_path / "short")))
    tmux.start(f"{DPIPE_TUI} run {short_profile}; sleep 600", "short")
    screen = tmux.wait_for("short", "saved: ", 120)
    final = next(ln for ln in screen.splitlines() if ln.startswith("✔ completed"))
    assert re.match(r"✔ completed ━+ (\d+)/\1 100% ", final), final  # no phase or ETA once it ended
    assert "eta" not in final
