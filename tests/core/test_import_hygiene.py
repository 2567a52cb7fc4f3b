"""Layering is enforced at run time too: no domain module imports Textual or torch, even lazily."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import pytest

import dpipe_tui

DOMAIN_PACKAGES = (
    "profiles",
    "datasets",
    "runs",
    "supervisor",
    "telemetry",
    "gpu",
    "checkpoints",
    "services",
)


def _domain_modules() -> list[str]:
    names = ["dpipe_tui.paths", "dpipe_tui.fsutil", "dpipe_tui.cli.main"]
    for info in pkgutil.walk_packages(dpipe_tui.__path__, "dpipe_tui."):
        top = info.name.split(".")[1]
        if top in DOMAIN_PACKAGES:
            names.append(info.name)
    return sorted(set(names))


@pytest.mark.parametrize("module", _domain_modules())
def test_domain_module_imports_neither_textual_nor_torch(module: str) -> None:
    code = (
        "import importlib, sys\n"
        f"importlib.import_module({module!r})\n"
        "bad = [m for m in ('textual', 'torch', 'deepspeed') if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"
