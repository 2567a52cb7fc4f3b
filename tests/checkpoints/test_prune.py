"""Prune: the plan (counts, pins, latest, live runs, abandoned items) and a crash-safe removal."""

from __future__ import annotations

import hashlib
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from dpipe_tui.checkpoints.inventory import TRASH_PREFIX, scan_run_folder
from dpipe_tui.checkpoints.prune import Policy, execute, plan_prune
from tests.checkpoints import shapes


def _run(tmp_path: Path, saves: int = 6, states: int = 5) -> Path:
    run = tmp_path / "20260101_10-00-00"
    for i in range(1, saves + 1):
        shapes.comfy_save(run / f"epoch{i}")
        for f in [*(run / f"epoch{i}").iterdir(), run / f"epoch{i}"]:
            shapes.touch(f, 1000 + 10 * i)
    for i in range(1, states + 1):
        shapes.state(run / f"global_step{100 * i}")
        for f in [*(run / f"global_step{100 * i}").iterdir(), run / f"global_step{100 * i}"]:
            shapes.touch(f, 1000 + 10 * i)
    (run / "latest").write_text(f"global_step{100 * states}")
    return run


def test_counts_keep_the_newest_and_the_multiples_separately_for_saves_and_states(tmp_path: Path) -> None:
    run = _run(tmp_path)
    inv = scan_run_folder(run)
    plan = plan_prune(inv, Policy(keep_last=2, keep_every=3, states=2))
    gone = sorted(r.name for r in plan.remove)
    assert gone == ["epoch1", "epoch2", "epoch4", "global_step100", "global_step200", "global_step300"]
    assert plan.frees == sum(r.size for r in plan.remove) > 0
    only_states = plan_prune(inv, Policy(states=4))
    assert [r.name for r in only_states.remove] == ["global_step100"]  # saves untouched without a save count


def test_pinned_latest_and_a_live_runs_newest_are_never_removed(tmp_path: Path) -> None:
    run = _run(tmp_path)
    (run / "latest").write_text("global_step200")
    inv = scan_run_folder(run)
    plan = plan_prune(inv, Policy(keep_last=0, states=0), pinned=[run / "epoch3"], live=True)
    kept = {k.name: k.why for k in plan.protected}
    assert kept == {
        "epoch3": "pinned",
        "epoch6": "the live run's newest save",
        "global_step200": "named by latest (the next resume loads it)",
        "global_step500": "the live run's newest state",
    }
    assert {r.name for r in plan.remove} == {
        "epoch1",
        "epoch2",
        "epoch4",
        "epoch5",
        "global_step100",
        "global_step300",
        "global_step400",
    }


def test_abandoned_items_can_be_pruned_on_their_own(tmp_path: Path) -> None:
    run = tmp_path / "20260101_10-00-00"
    run.mkdir()
    shapes.launch_file(run, 1000)
    for step, t in ((100, 1100), (200, 1200), (300, 1300)):
        shapes.state(run / f"global_step{step}")
        for f in [*(run / f"global_step{step}").iterdir(), run / f"global_step{step}"]:
            shapes.touch(f, t)
    shapes.launch_file(run, 2000)
    shapes.state(run / "global_step150")
    (run / "latest").write_text("global_step150")
    plan = plan_prune(scan_run_folder(run), Policy(abandoned=True))
    assert sorted(r.name for r in plan.remove) == ["global_step200", "global_step300"]
    assert all("abandoned timeline" in r.why for r in plan.remove)


def _digests(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from dpipe_tui.checkpoints.inventory import scan_run_folder
    from dpipe_tui.checkpoints.prune import Policy, execute, plan_prune

    run, at = Path(sys.argv[1]), int(sys.argv[2])

    def hook(trash, index):
        if index == at:  # renamed to the trash, part-deleted, then killed
            victim = sorted(p for p in trash.rglob("*") if p.is_file())[0]
            victim.unlink()
            os.kill(os.getpid(), signal.SIGKILL)

    execute(plan_prune(scan_run_folder(run), Policy(keep_last=2, states=1)), before_delete=hook)
    """
)


def test_a_prune_killed_mid_way_loses_nothing_kept_and_leaves_no_half_folder(tmp_path: Path) -> None:
    run = _run(tmp_path)
    before = _digests(run)
    plan = plan_prune(scan_run_folder(run), Policy(keep_last=2, states=1))
    to_remove = {r.name for r in plan.remove}
    proc = subprocess.run([sys.executable, "-c", KILLER, str(run), "2"], check=False, cwd=Path.cwd())
    assert proc.returncode == -signal.SIGKILL
    after = _digests(run)
    names = {p.name for p in run.iterdir()}
    trash = [n for n in names if n.startswith(TRASH_PREFIX)]
    assert len(trash) == 1  # the one being deleted when the kill came
    for key, digest in before.items():  # every file of a kept item is whole
        top = key.split("/")[0]
        if top not in to_remove:
            assert after.get(key) == digest, key
    for name in names - set(trash):  # nothing under a real name is half there
        if name in to_remove:
            assert {k: v for k, v in after.items() if k.startswith(name + "/")} == {
                k: v for k, v in before.items() if k.startswith(name + "/")
            }
    inv = scan_run_folder(run)
    assert any("interrupted prune" in line for line in inv.leftovers)
    execute(plan_prune(inv, Policy(keep_last=2, states=1)))
    assert not [p for p in run.iterdir() if p.name.startswith(TRASH_PREFIX)]  # the next prune ends the trash
    left = {p.name for p in run.iterdir()}
    assert left == {"epoch5", "epoch6", "global_step500", "latest"}
    assert _digests(run) == {k: v for k, v in before.items() if k.split("/")[0] in left}
