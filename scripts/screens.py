"""Render the TUI's screens to SVG (and PNG with rsvg-convert) from a real temp home with real runs.

Starts three scripted runs (one completes, one fails, one keeps training), then saves the dashboard,
a run view and the help screen at 80x24 and 160x48 into OUT (default: ./screens). For looking at the
screens before calling them done, and for README's screenshot.

    .venv/bin/python scripts/screens.py [OUT]
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.supervisor.conftest import copy_freezer, stand_in_checkout  # noqa: E402
from tests.ui.conftest import ScriptedProbe  # noqa: E402

from dpipe_tui.runs.registry import Registry  # noqa: E402
from dpipe_tui.services.cockpit import Cockpit  # noqa: E402
from dpipe_tui.supervisor.submit import SubmitSpec, submit  # noqa: E402
from dpipe_tui.ui.app import DpipeApp  # noqa: E402


def _setup(tmp: Path) -> tuple[Path, list[str]]:
    checkout = tmp / "dp"
    shim = stand_in_checkout(checkout)
    home = tmp / "home"
    ids = []
    for name, gpus, scripted in (
        ("chroma-e6ai-512", (0,), "steps = 40\nstep_time = 0.02\ncheckpoint_every = 10\n"),
        ("flux-style", (1,), "steps = 60\nstep_time = 0.02\nfail_at = 25\nexit_code = 1\n"),
        ("chroma-e6ai-1024", (0,), "steps = 5000\nstep_time = 0.08\ncheckpoint_every = 50\n"),
    ):
        profile = tmp / f"{name}.toml"
        profile.write_text(f'output_dir = "{tmp / ("out-" + name)}"\nepochs = 4\n[scripted]\n{scripted}')
        spec = SubmitSpec(
            profile=profile,
            engine="diffusion-pipe",
            base_dir=checkout,
            cwd=checkout,
            launcher=str(shim),
            gpus=gpus,
        )
        ids.append(submit(Registry(home), spec, freezer=copy_freezer).id)
        time.sleep(1.5 if name != "chroma-e6ai-1024" else 0)
    time.sleep(8)
    return home, ids


async def _shoot(cockpit: Cockpit, out: Path, size: tuple[int, int], run_id: str) -> None:
    app = DpipeApp(cockpit)
    tag = f"{size[0]}x{size[1]}"
    async with app.run_test(size=size) as pilot:
        await pilot.pause(2.5)
        app.save_screenshot(str(out / f"dashboard-{tag}.svg"))
        app.action_open_run(run_id)
        await pilot.pause(3.0)
        app.save_screenshot(str(out / f"run-{tag}.svg"))
        await pilot.press("question_mark")
        await pilot.pause(0.5)
        app.save_screenshot(str(out / f"help-{tag}.svg"))


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "screens").resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as name:
        home, ids = _setup(Path(name))
        cockpit = Cockpit(home, probe=ScriptedProbe())
        try:
            for size in ((80, 24), (160, 48)):
                asyncio.run(_shoot(cockpit, out, size, ids[2]))
            asyncio.run(_shoot_failed(cockpit, out, ids[1]))
        finally:
            cockpit.stop(ids[2], now=True)
    if shutil.which("rsvg-convert"):
        for svg in out.glob("*.svg"):
            subprocess.run(["rsvg-convert", str(svg), "-o", str(svg.with_suffix(".png"))], check=True)
    print(f"screens in {out}")
    return 0


async def _shoot_failed(cockpit: Cockpit, out: Path, run_id: str) -> None:
    app = DpipeApp(cockpit, open_run=run_id)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(2.5)
        app.save_screenshot(str(out / "run-failed-80x24.svg"))


if __name__ == "__main__":
    sys.exit(main())
