"""Editor-ready validation: an unsaved buffer of profiles/chroma-e6ai-1024.toml, as on each keystroke.

Prints the median time of :meth:`Cockpit.validate_buffer` (warm, no dataset scan) beside its goal,
then the dataset plan of a generated 2,000-image dataset: the first (scanning) call, and a cached call
(the stat-walk fingerprint only).

    .venv/bin/python benchmarks/bench_validate.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.services.datasets import plan_dataset

REPO = Path(__file__).resolve().parents[1]
GOAL_MS = 20.0


def _median_ms(fn: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    profile = REPO / "profiles" / "chroma-e6ai-1024.toml"
    text = profile.read_text()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        cockpit = Cockpit(tmp / "home")
        cockpit.validate_buffer(text, profile)  # warm: imports, pydantic schema
        buffer_ms = _median_ms(lambda: cockpit.validate_buffer(text, profile), 50)
        print(
            f"buffer validation of {profile.name} ({len(text.splitlines())} lines): {buffer_ms:.1f} ms "
            f"median of 50 (goal < {GOAL_MS:.0f} ms: {'met' if buffer_ms < GOAL_MS else 'MISSED'})"
        )
        folder = tmp / "images"
        folder.mkdir()
        for i in range(2000):
            Image.new("RGB", (64 + i % 7 * 8, 64), "gray").save(folder / f"{i}.png")
            (folder / f"{i}.txt").write_text("a gray rectangle")
        (tmp / "dataset.toml").write_text(
            f"resolutions = [64]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 7\n"
            f"[[directory]]\npath = '{folder}'\n"
        )
        main_toml = tmp / "main.toml"
        main_toml.write_text("dataset = 'dataset.toml'\nepochs = 1\n[model]\ntype = 'chroma'\n")
        t0 = time.perf_counter()
        first = plan_dataset(main_toml, base_dir=tmp)
        scan_ms = (time.perf_counter() - t0) * 1000
        cached_ms = _median_ms(lambda: plan_dataset(main_toml, base_dir=tmp), 20)
        assert first.plan is not None
        assert plan_dataset(main_toml, base_dir=tmp).cached
        print(
            f"dataset plan, 2,000 images + captions: {scan_ms:.0f} ms scanning, {cached_ms:.1f} ms from the "
            f"cache (stat-walk fingerprint) = {scan_ms / cached_ms:.0f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
