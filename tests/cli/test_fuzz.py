"""Every command against careless input: a clean one-line error and the documented exit code (README:
0 success, 1 the thing failed, 2 usage error, 3 not found), never a traceback.

A table of real ``dpipe-tui`` processes over the inputs people get wrong (missing, binary, empty,
directory, FIFO, file-as-folder, corrupt registry records, bad option values, ambiguous run ids), then
hypothesis, in-process, over arbitrary profile bytes and arbitrary run references.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from dpipe_tui.cli.main import app

if TYPE_CHECKING:
    from pathlib import Path

EXE = os.path.join(os.path.dirname(sys.executable), "dpipe-tui")
OK, FAILED, USAGE, NOT_FOUND = 0, 1, 2, 3
BROKEN = "20261201-0000-broken-aaaa"
EMPTY_RECORD = "20261201-0000-broken-aaab"

CASES: list[tuple[list[str], int, str]] = [
    # profiles: missing, unreadable, not TOML, wrong kind of file
    (["validate", "nosuch.toml"], FAILED, "No such file"),
    (["validate", "bin.toml"], FAILED, "cannot read the file"),
    (["validate", "adir.toml"], FAILED, "cannot read the file"),
    (["validate", "fifo.toml"], FAILED, "cannot read the file"),
    (["validate", "empty.toml"], FAILED, "model"),
    (["validate", "--gpus", "0", "empty.toml"], USAGE, "--gpus"),
    (["validate", "--gpus", "abc", "empty.toml"], USAGE, "--gpus"),
    (["validate"], USAGE, "Missing argument"),
    (["run", "nosuch.toml"], NOT_FOUND, "no such profile"),
    (["run", "adir.toml"], FAILED, "a directory"),
    (["run", "bin.toml"], FAILED, "not UTF-8"),
    (["run", "fifo.toml"], FAILED, "cannot read the profile"),
    (["run", "empty.toml"], FAILED, "model"),
    (["run", "empty.toml", "--engine", "bogus"], USAGE, "choose builtin or diffusion-pipe"),
    (["run", "empty.toml", "--gpus", "abc"], USAGE, "--gpus"),
    (["run", "empty.toml", "--gpus", "0,0"], USAGE, "twice"),
    (["run", "empty.toml", "--gpus", "-1"], USAGE, "0 or more"),
    (["run", "empty.toml", "--auto-resume", "-1"], USAGE, "--auto-resume"),
    (["edit", "bin.toml"], FAILED, "cannot edit it: not UTF-8"),
    (["edit", "adir.toml"], FAILED, "a directory"),
    (["edit", "fifo.toml"], FAILED, "not a regular file"),
    (["edit", "empty.toml"], FAILED, "needs a terminal"),  # editable, but not without a terminal
    (["edit"], USAGE, "Missing argument"),
    # new: names, recipes, destinations
    (["new", "../x", "--recipe", "chroma"], USAGE, "invalid profile name"),
    (["new", "", "--recipe", "chroma"], USAGE, "invalid profile name"),
    (["new", "ok", "--recipe", "nosuch"], USAGE, "unknown recipe"),
    (["new", "ok", "--recipe", "chroma", "--dir", "afile"], FAILED, "cannot write into"),
    (["new", "ok", "--recipe", "chroma", "--dir", "/proc/nope"], FAILED, "cannot write into"),
    (["new", "exists", "--recipe", "chroma"], FAILED, "already exists"),
    # runs: unknown, ambiguous, corrupt records
    *[
        ([cmd, "nosuch"], NOT_FOUND, "no run matches 'nosuch'")
        for cmd in ("status", "logs", "stop", "save", "resume", "rm", "follow")
    ],
    (["status", "20261201"], USAGE, "matches 2 runs"),
    (["status", BROKEN], FAILED, "not valid JSON"),
    (["status", EMPTY_RECORD], FAILED, "run.json"),
    (["resume", EMPTY_RECORD], FAILED, "run.json"),
    (["follow", EMPTY_RECORD], FAILED, "run.json"),
    (["ls"], OK, f"unreadable run {BROKEN}"),
    (["logs", "nosuch", "-n", "-1"], USAGE, "--lines"),
    (["stop", "nosuch", "--timeout", "-5"], USAGE, "--timeout"),
    (["stop", "nosuch", "--timeout", "abc"], USAGE, "--timeout"),
    (["status"], USAGE, "Missing argument"),
    # telemetry
    (["metrics", "nosuch"], NOT_FOUND, "no log file or run"),
    (["metrics", "bin.toml"], FAILED, "no training lines"),
    (["metrics", "empty.toml"], FAILED, "no training lines"),
    (["gpus", "--interval", "abc"], USAGE, "--interval"),
    (["gpus", "--watch", "--interval", "0"], USAGE, "--interval"),
    # the app itself
    (["nosuchcommand"], USAGE, "No such command"),
    (["--home", "afile", "ls"], USAGE, "cannot create it"),
    (["--home", "/proc/nope", "ls"], USAGE, "cannot create it"),
    (["tui"], FAILED, "needs a terminal"),
]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("fuzz")
    (work / "bin.toml").write_bytes(bytes(range(256)) * 4)
    (work / "empty.toml").write_text("")
    (work / "adir.toml").mkdir()
    os.mkfifo(work / "fifo.toml")
    (work / "afile").write_text("not a folder\n")
    (work / "exists.toml").write_text("# the user's own text\n")
    runs = work / "home" / "runs"
    for run_id, text in ((BROKEN, "\x00garbage"), (EMPTY_RECORD, "{}")):
        (runs / run_id).mkdir(parents=True)
        (runs / run_id / "run.json").write_text(text)
    return work


def _cli(workspace: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPIPE_TUI_HOME": str(workspace / "home"), "COLUMNS": "200"}
    return subprocess.run(
        [EXE, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
        stdin=subprocess.DEVNULL,
        timeout=60,
    )


@pytest.mark.parametrize(("args", "code", "says"), CASES, ids=[" ".join(c[0]) or "-" for c in CASES])
def test_careless_input_gets_a_clean_error_and_the_documented_code(
    workspace: Path, args: list[str], code: int, says: str
) -> None:
    result = _cli(workspace, args)
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out
    assert result.returncode == code, (result.returncode, out)
    assert says in out, out
    if code != OK and args[0] != "validate":  # validate's report is its output (stdout)
        assert result.stderr.strip(), "a failure says why on stderr"
    assert (workspace / "exists.toml").read_text() == "# the user's own text\n"  # never overwritten


def _in_process(args: list[str], home: Path) -> tuple[int, BaseException | None]:
    result = CliRunner().invoke(app, ["--home", str(home), *args], catch_exceptions=True)
    error = result.exception if not isinstance(result.exception, SystemExit) else None
    return result.exit_code, error


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.one_of(st.binary(max_size=2048), st.text(max_size=2048).map(str.encode)))
def test_any_profile_bytes_get_a_clean_refusal(tmp_path: Path, content: bytes) -> None:
    profile = tmp_path / "p.toml"
    profile.write_bytes(content)
    for command in (["validate", str(profile)], ["run", str(profile), "--detach"]):
        code, error = _in_process(command, tmp_path / "home")
        assert error is None, (command, content, error)
        assert code == FAILED, (command, content, code)  # nothing of that is a valid profile


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=st.text(min_size=1, max_size=80).filter(lambda s: not s.startswith("-")))
def test_any_run_reference_is_found_or_not_found(tmp_path: Path, ref: str) -> None:
    home = tmp_path / "home"
    (home / "runs").mkdir(parents=True, exist_ok=True)
    for command in ("status", "logs", "rm", "save"):
        code, error = _in_process([command, ref], home)
        assert error is None, (command, ref, error)
        assert code in (NOT_FOUND, USAGE), (command, ref, code)
    assert json.loads(CliRunner().invoke(app, ["--home", str(home), "ls", "--json"]).stdout)["runs"] == []
