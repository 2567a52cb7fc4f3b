"""The layering contracts in pyproject bite: lint-imports fails on a copy of the tree with one bad import."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _copy_tree(dest: Path) -> Path:
    shutil.copytree(REPO / "src", dest / "src", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")
    return dest


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root / "src")}  # the copy shadows the editable install
    return subprocess.run(
        [str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        (
            "cli/common.py",
            "from dpipe_tui.supervisor import procs",
            "Front ends call the services facade only",
        ),
        ("cli/common.py", "import subprocess", "Front ends call the services facade only"),
        ("telemetry/events.py", "import dpipe_tui.services.cockpit", "Layers"),
        ("runs/model.py", "import textual", "Domain packages know nothing of the UI"),
    ],
)
def test_a_deliberate_violation_breaks_a_contract(
    tmp_path: Path, module: str, bad_import: str, contract: str
) -> None:
    root = _copy_tree(tmp_path)
    target = root / "src" / "dpipe_tui" / module
    text = target.read_text(encoding="utf-8")
    anchor = "from __future__ import annotations\n"
    target.write_text(text.replace(anchor, anchor + bad_import + "  # noqa\n", 1), encoding="utf-8")
    result = _lint(root)
    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout
    assert "dpipe_tui." + module.replace("/", ".").removesuffix(".py") in result.stdout


def test_the_tree_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    result = _lint(_copy_tree(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:]
    assert " 0 broken" in result.stdout
