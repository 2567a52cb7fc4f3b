"""``python -m dpipe_tui.services.plan_job PROFILE BASE_DIR GPUS``: a dataset plan in its own process.

Why a process: the header scan is Python work that holds the GIL; run in a thread of the TUI it
shares one core's worth of interpreter with the app building and drawing its widgets, and both slow
down (measured: the editor's dataset panel took twice as long as ``dpipe-tui validate``). Here it has
an interpreter of its own. It prints ``progress DONE TOTAL`` lines while scanning, then one
``result BASE64`` line: the pickled plan and summary (read only by the process that started it).
"""

from __future__ import annotations

import base64
import pickle
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    """Plan and print; exit 0 (a plan or its error are both results), 2 on bad arguments."""
    if len(argv) != 3:
        print("usage: python -m dpipe_tui.services.plan_job PROFILE BASE_DIR GPUS", file=sys.stderr)
        return 2
    from dpipe_tui.datasets import PlanError, plan_for_profile, summary_lines
    from dpipe_tui.datasets.settings import DatasetConfigError

    def progress(done: int, total: int) -> None:
        print(f"progress {done} {total}", flush=True)

    try:
        plan = plan_for_profile(
            Path(argv[0]), base_dir=Path(argv[1]), world_size=int(argv[2]), progress=progress
        )
        payload: tuple[object, ...] = ("ok", plan, tuple(summary_lines(plan)))
    except (PlanError, DatasetConfigError, OSError, ValueError) as exc:
        payload = ("error", f"no dataset plan: {exc}")
    print("result " + base64.b64encode(pickle.dumps(payload)).decode("ascii"), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
