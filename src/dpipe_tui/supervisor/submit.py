"""Creating a run in the registry: id, private folder, frozen profile, first record, then dispatch.

Why freeze: the user keeps editing the profile while a run trains; the run must keep the exact TOML
it was launched with (design.md), with relative paths made absolute (diffusion-pipe resolves them
against its cwd, spec §1.4) and the W&B key blanked. The engine is then pointed at the frozen copy.
No validation happens here (that is the launch service's pre-flight); this is the mechanism.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.profiles.frozen import frozen_config
from dpipe_tui.runs.model import RunRecord, new_run_id
from dpipe_tui.supervisor.queue import SpawnMonitor, dispatch, spawn_monitor

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from dpipe_tui.runs.registry import Registry

log = logging.getLogger(__name__)

PROFILE = "profile.toml"
DATASET = "dataset.toml"


@dataclass(frozen=True, slots=True)
class SubmitSpec:
    """Everything needed to create a run (already validated by the caller).

    Attributes:
        profile: the user's main TOML.
        engine: ``builtin`` or ``diffusion-pipe``.
        base_dir: what relative paths in the profile resolve against (profile dir or checkout).
        cwd: the engine's working directory.
        launcher: python (builtin) or the ``deepspeed`` executable (diffusion-pipe).
        gpus: device ids (CPU slots when ``cpu``).
        cpu: no NVIDIA GPU: ``DS_ACCELERATOR=cpu``.
        extra_args: extra train.py flags (e.g. ``--trust_cache``).
        auto_resume: how many automatic resumes after a crash.
        total_steps: planned total steps, when known (for progress/ETA).
        steps_per_epoch: planned steps per epoch, when known (epoch progress even when max_steps caps
            the total).
    """

    profile: Path
    engine: str
    base_dir: Path
    cwd: Path
    launcher: str | None = None
    gpus: tuple[int, ...] = (0,)
    cpu: bool = False
    extra_args: tuple[str, ...] = ()
    auto_resume: int = 0
    total_steps: int | None = None
    steps_per_epoch: int | None = None


def freeze(
    profile: Path, dest_dir: Path, base_dir: Path, *, read: Callable[[Path], str] | None = None
) -> Path:
    """Write the frozen ``profile.toml`` (+ ``dataset.toml``) into ``dest_dir``; return the main copy.

    ``read``: where the texts come from — a launch passes the snapshot it validated, so the frozen
    copy is exactly what was validated even if the files changed on disk meanwhile.
    """
    from dpipe_tui.profiles import freeze_profile

    frozen = freeze_profile(profile, dest_dir, base_dir=base_dir, read=read)
    for path in (frozen.main, frozen.dataset, *frozen.evals):
        os.chmod(path, 0o600)
    return Path(frozen.main)


def _model_type(config: Mapping[str, Any]) -> str | None:
    model = config.get("model")
    value = model.get("type") if isinstance(model, dict) else None
    return value if isinstance(value, str) and value else None


def output_dir_in(config: Mapping[str, Any], base_dir: Path) -> Path | None:
    """``output_dir`` of a parsed main TOML, absolute (relative paths resolve against ``base_dir``)."""
    value = config.get("output_dir")
    if not isinstance(value, str) or not value:
        return None
    path = Path(value).expanduser()
    return Path(os.path.normpath(path if path.is_absolute() else base_dir / path))


def submit(
    registry: Registry,
    spec: SubmitSpec,
    *,
    spawn: SpawnMonitor = spawn_monitor,
    freezer: Callable[[Path, Path, Path], Path] = freeze,
    start: bool = True,
) -> RunRecord:
    """Create the run (state ``queued``) and dispatch the queue; return the record after dispatch."""
    now = time.time()
    stem = spec.profile.stem
    run_id = new_run_id(stem, now=now)
    while registry.run_dir(run_id).exists():
        run_id = new_run_id(stem, now=now)
    record = RunRecord(
        id=run_id,
        profile_path=str(spec.profile.resolve()),
        engine=spec.engine,
        created_at=now,
        queued_at=now,
        base_dir=str(spec.base_dir),
        cwd=str(spec.cwd),
        launcher=spec.launcher or (sys.executable if spec.engine == "builtin" else None),
        gpus=spec.gpus,
        cpu=spec.cpu,
        extra_args=spec.extra_args,
        auto_resume=spec.auto_resume,
        total_steps=spec.total_steps,
        steps_per_epoch=spec.steps_per_epoch,
        config_path=None,
    )
    run_dir = registry.create(record)
    try:
        config = freezer(spec.profile, run_dir, spec.base_dir)
    except BaseException:
        registry.delete(run_id)
        raise
    frozen = frozen_config(config) or {}  # read once for both facts
    out = output_dir_in(frozen, spec.base_dir)
    record = registry.update(
        run_id,
        lambda cur: _with(
            cur,
            config_path=str(config),
            output_dir=str(out) if out else None,
            model_type=_model_type(frozen),
        ),
    )
    if start:
        dispatch(registry, spawn=spawn)
    return registry.load(run_id)


def _with(record: RunRecord, **changes: Any) -> RunRecord:
    import dataclasses

    return dataclasses.replace(record, **changes)
