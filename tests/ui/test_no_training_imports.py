"""The TUI is a light client: driving every screen never imports torch, deepspeed or diffusers."""

from __future__ import annotations

import subprocess
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

SCRIPT = """
import asyncio, sys
from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.ui.app import DpipeApp
from tests.ui.test_snapshots import frozen_home
from pathlib import Path

async def main() -> None:
    app = DpipeApp(frozen_home(Path(sys.argv[1])), open_run="20261201-1100-flux-style-bb02")
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause(1.0)
        await pilot.press("p")  # the frozen profile
        await pilot.pause(0.3)
        await pilot.press("escape", "escape", "n")  # back to the dashboard, then New run
        await pilot.pause(1.5)
        await pilot.press("question_mark")
        await pilot.pause(0.3)

asyncio.run(main())
print(",".join(m for m in ("torch", "deepspeed", "diffusers", "peft") if m in sys.modules))
"""


def test_driving_the_tui_imports_no_training_stack(home: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(home)], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1:] in ([], [""]), result.stdout
