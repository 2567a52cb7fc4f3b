"""``--help`` reads like a well-kept CLI's, and README's synopsis lists every option of every command."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main

from dpipe_tui.cli.main import app

README = Path(__file__).resolve().parents[2] / "README.md"
COMMAND = typer.main.get_command(app)
NAMES = sorted(COMMAND.commands)  # type: ignore[attr-defined]


def _help(*args: str) -> str:
    env = {**os.environ, "COLUMNS": "80", "NO_COLOR": "1", "TERM": "dumb"}
    cmd = [sys.executable, "-m", "dpipe_tui", *args, "--help"]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("name", ["", *NAMES])
def test_help_shows_metavars_not_python_types(name: str) -> None:
    text = _help(*([name] if name else []))
    assert not re.search(r"<(bool|str|int|float|path|list)[^>]*>", text), text  # was "--json <bool>"
    assert "{" not in text, text  # was "{files}..."
    assert "x>=" not in text, text
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert usage.split("[OPTIONS]", 1)[1] == usage.split("[OPTIONS]", 1)[1].upper(), usage  # RUN, not run_ref
    prose = [line.strip() for line in text.split("╭", 1)[0].splitlines()]
    for line, after in itertools.pairwise(prose):  # paragraphs reflow; never broken mid-sentence
        assert not (0 < len(line) < 40 and after), f"a paragraph broken after {line!r}:\n{text}"


def _synopsis() -> dict[str, str]:
    block = README.read_text().split("## CLI", 1)[1].split("```", 2)[1]
    lines: dict[str, str] = {}
    for line in block.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "dpipe-tui":
            lines[words[1]] = lines.get(words[1], "") + " " + line
    return lines


@pytest.mark.parametrize("name", NAMES)
def test_readme_synopsis_lists_every_option(name: str) -> None:
    line = _synopsis().get(name)
    assert line is not None, f"README's CLI block has no `dpipe-tui {name}` line"
    command = COMMAND.commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        if param.name in ("home", "help") or not getattr(param, "opts", None):
            continue  # said once for every command below the block
        long = [o for o in param.opts if o.startswith("--")]
        if long:
            assert any(o in line for o in long), f"{name}: {long} missing from README: {line}"
