"""The checkpoint services and commands on a real run folder written by the built-in engine (CPU):
listing with telemetry, export checked against safetensors, pin + prune, a resume from an older
state that names what it abandons, and the second attempt seen in the listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.runs.registry import Registry
from dpipe_tui.services import runs
from dpipe_tui.services.checkpoints import Policy
from dpipe_tui.services.cockpit import Cockpit
from tests.supervisor.conftest import builtin_profile, home, wait_for  # noqa: F401 - fixtures used below

if TYPE_CHECKING:
    from tests.supervisor.conftest import BuiltinProfileFactory

pytestmark = pytest.mark.slow
TIMEOUT = 300


def _cli(home_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DPIPE_TUI_HOME": str(home_dir)}
    return subprocess.run(
        [sys.executable, "-m", "dpipe_tui", *args], capture_output=True, text=True, env=env, check=False
    )


def test_a_real_runs_checkpoints_listed_exported_pruned_and_resumed(
    home: Path,  # noqa: F811 - the fixture
    builtin_profile: BuiltinProfileFactory,  # noqa: F811 - the fixture
    tmp_path: Path,
) -> None:
    # 200 epochs (1,200 steps): a fast machine must not finish before the stop below
    profile = builtin_profile(epochs="200", save_every_n_epochs="3", checkpoint_every_n_epochs="4")
    launched = runs.launch(home, runs.LaunchRequest(profile=profile))
    assert launched.record is not None, launched.error
    run_id = launched.record.id
    registry = Registry(home)

    def folder_has(prefix: str) -> int:
        folder = registry.load(run_id).engine_run_dir
        return len(list(Path(folder).glob(prefix))) if folder else 0

    wait_for(lambda: folder_has("global_step*") >= 3 and folder_has("epoch*") >= 4, TIMEOUT, 0.2)
    cockpit = Cockpit(home)
    cockpit.stop(run_id)  # save_quit: one more state, and a run that can resume
    assert registry.load(run_id).state.value == "stopped"
    found = cockpit.checkpoints(run_id)
    (inv,) = found.folders
    newest = inv.saves[0]
    assert len(inv.saves) >= 4
    assert inv.save("epoch3") is not None
    assert {s.format for s in inv.saves} == {"comfyui"}
    assert all(s.rank and s.alpha and s.tensors and s.dtype for s in inv.saves)
    assert all(s.step is not None and s.loss is not None for s in inv.saves)  # from the run's telemetry
    assert [s.step for s in sorted(inv.saves, key=lambda s: s.number)] == sorted(
        s.step for s in inv.saves if s.step is not None
    )
    assert all(s.complete and s.problem is None for s in inv.states)
    assert all(s.epoch is not None and s.examples is not None for s in inv.states)  # from telemetry
    assert len(inv.states) >= 4
    assert [s.tag for s in inv.states if s.is_latest] == [inv.latest]
    assert len(inv.launches) == 1

    listed = _cli(home, "checkpoints", run_id)
    assert listed.returncode == 0, listed.stderr
    assert newest.name in listed.stdout
    assert "ComfyUI" in listed.stdout
    assert "latest" in listed.stdout
    as_json = json.loads(_cli(home, "checkpoints", run_id, "--json").stdout)
    assert len(as_json["folders"][0]["saves"]) == len(inv.saves)

    from safetensors import safe_open
    from safetensors.torch import load_file

    loras = tmp_path / "loras"
    loras.mkdir()
    exported = _cli(home, "export", run_id, newest.name, "--to", str(loras), "--trigger", "shapez")
    assert exported.returncode == 0, exported.stderr
    (copy,) = loras.glob("*.safetensors")
    source = newest
    assert source.weights is not None
    with safe_open(str(copy), "pt") as fh:
        meta = fh.metadata()
    assert meta["format"] == "pt"
    assert meta["ss_network_dim"] == str(source.rank)
    assert meta["ss_epoch"] == str(newest.number)
    assert meta["ss_steps"] == str(source.step)
    assert meta["ss_base_model_version"] == "chroma"
    assert meta["modelspec.trigger_phrase"] == "shapez"
    assert len(meta["dpipe_tui.profile_sha256"]) == 64
    a, b = load_file(str(copy)), load_file(str(source.weights))
    assert a.keys() == b.keys()
    assert all(a[k].equal(b[k]) for k in a)
    again = _cli(home, "export", run_id, newest.name, "--to", str(loras), "--name", copy.stem)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    cockpit.pin(run_id, "epoch3")
    preview = _cli(home, "prune", run_id, "--keep-last", "1", "--states", "1", "--dry-run")
    assert preview.returncode == 0, preview.stderr
    middle = [s.name for s in inv.saves if s.name not in (newest.name, "epoch3")]
    assert all(f"would remove {name}" in preview.stdout for name in middle)
    assert "kept epoch3: pinned" in preview.stdout
    assert len(list(inv.path.glob("epoch*"))) == len(inv.saves)  # a dry run removes nothing
    oldest = min(inv.states, key=lambda s: s.step)
    cockpit.pin(run_id, oldest.tag)
    outcomes = cockpit.prune(run_id, Policy(keep_last=1, states=1))
    removed = {r.name for o in outcomes for r in o.removed}
    assert removed == set(middle) | {s.tag for s in inv.states if s.tag not in (oldest.tag, inv.latest)}
    after = cockpit.checkpoints(run_id).folders[0]
    assert sorted(s.name for s in after.saves) == sorted(["epoch3", newest.name])
    assert sorted(s.tag for s in after.states) == sorted({oldest.tag, inv.latest or ""})

    resumed = cockpit.resume(run_id, from_tag=str(oldest.step))  # digits complete to global_stepN
    assert resumed.tag == oldest.tag
    warning = next(w for w in resumed.warnings if "abandons" in w)
    assert f"resuming from {oldest.tag} abandons 1 later save(s) and 1 later state(s)" in warning
    following = f"global_step{2 * oldest.step}"  # a state every 4 epochs: attempt 2's first
    # the folder, not the record: run.json is written once a second, and a state comes every 24 steps
    wait_for(lambda: (inv.path / following).is_dir(), TIMEOUT, 0.1)
    cockpit.stop(run_id)  # attempt 2 wrote a state of its own: enough timeline
    final = cockpit.checkpoints(run_id).folders[0]
    assert len(final.launches) == 2
    assert 2 in {s.attempt for s in final.states}
    abandoned = {s.name for s in final.saves if s.abandoned} | {s.tag for s in final.states if s.abandoned}
    assert abandoned  # attempt 1's newest save and its save_quit state, unless attempt 2 wrote them again
    assert abandoned <= {newest.name, inv.latest}
    assert all(s.attempt == 1 for s in final.saves if s.abandoned)
    assert all(s.attempt == 1 for s in final.states if s.abandoned)
