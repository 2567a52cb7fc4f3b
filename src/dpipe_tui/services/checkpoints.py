"""Checkpoint services for the front ends: list, pin, prune and export a run's saves and states.

A target is a run (id or prefix: its engine run folder, its telemetry, its live state) or a folder:
an engine run folder or a whole ``output_dir``, of any run, started with dpipe-tui or not. Front
ends call these through :class:`dpipe_tui.services.cockpit.Cockpit`.
"""

from __future__ import annotations

import hashlib
import json
import time
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui import __version__
from dpipe_tui.checkpoints.export import ExportError, export_file
from dpipe_tui.checkpoints.export import ExportResult as ExportResult  # re-exported for the front ends
from dpipe_tui.checkpoints.inventory import (
    RunFolderInventory,
    SavedItem,
    SaveTelemetry,
    looks_like_run_folder,
    run_folders,
    scan_run_folder,
)
from dpipe_tui.checkpoints.pins import Pins
from dpipe_tui.checkpoints.prune import Policy as Policy  # re-exported for the front ends
from dpipe_tui.checkpoints.prune import PrunePlan, Removal, execute, plan_prune
from dpipe_tui.runs.registry import Registry
from dpipe_tui.services.errors import Refusal, RefusalCode
from dpipe_tui.supervisor.reconcile import reconcile
from dpipe_tui.telemetry.events import EventKind
from dpipe_tui.telemetry.store import MetricsTail

if TYPE_CHECKING:
    from collections.abc import Callable

    from dpipe_tui.runs.model import RunRecord


@dataclass(frozen=True, slots=True)
class CheckpointListing:
    """What a target holds: one inventory per engine run folder, oldest first."""

    target: str
    folders: tuple[RunFolderInventory, ...]
    pinned: frozenset[Path]
    run_id: str | None = None
    live: bool = False
    note: str | None = None
    """Why the listing is empty, when it is (no run folder yet...)."""

    @property
    def size(self) -> int:
        """Bytes held by every save and state listed."""
        return sum(f.size for f in self.folders)


@dataclass(frozen=True, slots=True)
class PruneOutcome:
    """A prune of one run folder: the plan, and what was removed (empty on a dry run)."""

    plan: PrunePlan
    removed: tuple[Removal, ...] = ()
    dry_run: bool = True


@dataclass(frozen=True, slots=True)
class _Target:
    folders: list[Path]
    record: RunRecord | None = None
    note: str | None = None
    telemetry: dict[Path, SaveTelemetry] = field(default_factory=dict)


def _resolve(home: Path, ref: str) -> _Target:
    path = Path(ref).expanduser()
    if path.is_dir():
        if looks_like_run_folder(path):
            return _Target([path.absolute()])
        folders = run_folders(path)
        note = None if folders else f"{path} holds no diffusion-pipe run folder"
        return _Target([f.absolute() for f in folders], note=note)
    registry = Registry(home)
    try:
        run_id = registry.resolve(ref)
    except Exception as exc:
        raise Refusal(
            RefusalCode.NOT_FOUND,
            f"{ref!r} is neither a folder nor a run ({exc.args[0] if exc.args else exc})",
        ) from None
    record = reconcile(registry, registry.load(run_id))
    if not record.engine_run_dir:
        return _Target([], record, note=f"run {run_id} has no engine run folder yet (nothing saved)")
    folder = Path(record.engine_run_dir)
    return _Target([folder], record, telemetry={folder: save_telemetry(registry.metrics(run_id))})


def save_telemetry(metrics: Path) -> SaveTelemetry:
    """Steps and losses of the saves, and the resume steps, from a run's ``metrics.jsonl``."""
    if not metrics.exists():
        return SaveTelemetry()
    events = MetricsTail(metrics).catch_up(
        frozenset({EventKind.SAVE.value, EventKind.RESUME.value, EventKind.CHECKPOINT.value}),
        recent_kind="step",
        recent=0,
    )
    saves: dict[str, tuple[int | None, float | None]] = {}
    resumes: list[tuple[float, int]] = []
    states: dict[str, tuple[int | None, int | None]] = {}
    for event in events:
        if event.kind is EventKind.SAVE:
            name = str(event.data.get("dir", ""))
            step, loss = event.data.get("step"), event.data.get("loss")
            saves[name] = (
                step if isinstance(step, int) else None,
                float(loss) if isinstance(loss, int | float) else None,
            )
        elif event.kind is EventKind.CHECKPOINT:
            epoch, examples = event.data.get("epoch"), event.data.get("examples")
            states[str(event.data.get("tag", ""))] = (
                epoch if isinstance(epoch, int) else None,
                examples if isinstance(examples, int) else None,
            )
        elif event.kind is EventKind.RESUME:
            step = event.data.get("step")
            if isinstance(step, int):
                resumes.append((event.t, step - 1))  # it prints the step it goes on with
    return SaveTelemetry(saves, resumes, states)


def _stages(record: RunRecord | None) -> int | None:
    if record is None or not record.config_path:
        return None
    try:
        data = tomllib.loads(Path(record.config_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = data.get("pipeline_stages", 1)
    return value if isinstance(value, int) and value > 0 else 1


def listing(home: Path, ref: str) -> CheckpointListing:
    """Everything ``ref`` (a run, a run folder or an output_dir) has saved."""
    target = _resolve(home, ref)
    stages = _stages(target.record)
    inventories = tuple(
        scan_run_folder(f, pipeline_stages=stages, telemetry=target.telemetry.get(f)) for f in target.folders
    )
    return CheckpointListing(
        target=ref,
        folders=inventories,
        pinned=frozenset(Pins(home).load()),
        run_id=target.record.id if target.record else None,
        live=bool(target.record and target.record.state.is_live),
        note=target.note,
    )


def _find_item(found: CheckpointListing, name: str) -> tuple[RunFolderInventory, Path]:
    for inv in reversed(found.folders):  # the newest run folder first
        save = inv.save(name)
        if save is not None:
            return inv, save.path
        state = inv.state(name)
        if state is not None:
            return inv, state.path
    known = sorted(
        {s.name for f in found.folders for s in f.saves} | {s.tag for f in found.folders for s in f.states}
    )
    raise Refusal(
        RefusalCode.NOT_FOUND,
        f"{name!r} is not a save or state of {found.target} (there are: {', '.join(known) or 'none'})",
    )


def pin(home: Path, ref: str, name: str, *, pinned: bool = True) -> tuple[Path, bool]:
    """Pin (or unpin) the save or state ``name`` of ``ref``; the item's path and whether it changed."""
    found = listing(home, ref)
    _, path = _find_item(found, name)
    try:
        changed = Pins(home).set(path, pinned)
    except OSError as exc:
        raise Refusal(RefusalCode.IO, f"cannot record the pin in {home}: {exc.strerror or exc}") from exc
    return path, changed


def prune(
    home: Path,
    ref: str,
    policy: Policy,
    *,
    dry_run: bool = False,
    before_delete: Callable[[Path, int], None] | None = None,
) -> list[PruneOutcome]:
    """Plan (and unless ``dry_run`` carry out) ``policy`` on every run folder of ``ref``."""
    if policy.empty:
        raise Refusal(
            RefusalCode.WRONG_STATE,
            "nothing to prune by: give --keep-last N, --keep-every K, --states M or --abandoned",
        )
    found = listing(home, ref)
    outcomes: list[PruneOutcome] = []
    for inv in found.folders:
        plan = plan_prune(inv, policy, pinned=found.pinned, live=found.live)
        if dry_run:
            outcomes.append(PruneOutcome(plan))
            continue
        try:
            removed = execute(plan, before_delete=before_delete)
        except OSError as exc:
            raise Refusal(RefusalCode.IO, f"prune of {inv.path} stopped: {exc}") from exc
        outcomes.append(PruneOutcome(plan, tuple(removed), dry_run=False))
    return outcomes


def export(
    home: Path,
    ref: str,
    save_name: str,
    to: Path,
    *,
    name: str | None = None,
    trigger: str | None = None,
    force: bool = False,
) -> ExportResult:
    """Copy the LoRA ``save_name`` of ``ref`` to ``to`` (a folder) with training metadata in its header."""
    found = listing(home, ref)
    inv, _ = _find_item(found, save_name)
    save = inv.save(save_name)
    if save is None:
        raise Refusal(
            RefusalCode.WRONG_STATE, f"{save_name} is a training state, not a saved model: pick a save"
        )
    if save.weights is None or save.problem:
        raise Refusal(RefusalCode.UNREADABLE, f"{save.path} cannot be exported: {save.problem}")
    record = Registry(home).load(found.run_id) if found.run_id else None
    stem = name or _default_name(record, inv, save)
    dest = Path(to).expanduser() / (stem if stem.endswith(".safetensors") else f"{stem}.safetensors")
    try:
        return export_file(
            save.weights, dest, export_metadata(record, inv, save, stem, trigger), overwrite=force
        )
    except ExportError as exc:
        raise Refusal(RefusalCode.IO, str(exc)) from exc


def _default_name(record: RunRecord | None, inv: RunFolderInventory, save: SavedItem) -> str:
    base = Path(record.profile_path).stem if record else inv.path.parent.name or inv.path.name
    return f"{base}-{save.name}"


def _profile_data(record: RunRecord | None, inv: RunFolderInventory) -> tuple[dict[str, Any], bytes]:
    candidates = [Path(record.config_path)] if record and record.config_path else []
    candidates += sorted(inv.path.glob("*.toml"))
    for path in candidates:
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode("utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data.get("model"), dict):
            return data, raw
    return {}, b""


def export_metadata(
    record: RunRecord | None, inv: RunFolderInventory, save: SavedItem, title: str, trigger: str | None
) -> dict[str, str]:
    """The ``ss_*`` (kohya) and ``modelspec.*`` keys ComfyUI/kohya tools read, and dpipe-tui's own."""
    profile, raw = _profile_data(record, inv)
    model = profile.get("model") if isinstance(profile.get("model"), dict) else {}
    assert isinstance(model, dict)
    base = next(
        (
            str(model[k])
            for k in ("transformer_path", "diffusers_path", "checkpoint_path", "ckpt_path")
            if model.get(k)
        ),
        "",
    )
    optimizer = profile.get("optimizer") if isinstance(profile.get("optimizer"), dict) else {}
    assert isinstance(optimizer, dict)
    meta: dict[str, str] = {
        "ss_output_name": title,
        "ss_network_module": "lycoris.kohya" if save.format == "lokr" else "networks.lora",
        "ss_base_model_version": str(model.get("type", "")),
        "ss_sd_model_name": Path(base).name if base else "",
        "modelspec.title": title,
        "modelspec.architecture": str(model.get("type", "")),
        "dpipe_tui.version": __version__,
        "dpipe_tui.format": save.format,
        "dpipe_tui.source": str(save.weights),
    }
    if save.rank is not None:
        meta["ss_network_dim"] = str(save.rank)
    if save.alpha is not None:
        meta["ss_network_alpha"] = f"{save.alpha:g}"
    if save.step is not None:
        meta["ss_steps"] = str(save.step)
    if save.kind == "epoch":
        meta["ss_epoch"] = str(save.number)
    if save.loss is not None:
        meta["dpipe_tui.loss"] = f"{save.loss:.6g}"
    if optimizer.get("lr") is not None:
        meta["ss_learning_rate"] = str(optimizer["lr"])
    if optimizer.get("type"):
        meta["ss_optimizer"] = str(optimizer["type"])
    dataset = _dataset_summary(record, inv, profile)
    if dataset:
        meta["ss_dataset_dirs"] = json.dumps(dataset["dirs"])
        if dataset.get("resolutions"):
            meta["ss_resolution"] = json.dumps(dataset["resolutions"])
    if raw:
        meta["dpipe_tui.profile_sha256"] = hashlib.sha256(raw).hexdigest()
    if record is not None:
        meta["dpipe_tui.run_id"] = record.id
        meta["ss_training_started_at"] = f"{record.created_at:.0f}"
    if trigger:
        meta["modelspec.trigger_phrase"] = trigger
        meta["ss_tag_frequency"] = json.dumps(
            {"trigger": {w.strip(): 1 for w in trigger.split(",") if w.strip()}}
        )
    meta["modelspec.date"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(save.mtime))
    return {k: v for k, v in meta.items() if v != ""}


def _dataset_summary(
    record: RunRecord | None, inv: RunFolderInventory, profile: dict[str, Any]
) -> dict[str, Any] | None:
    names: list[Path] = []
    if record and record.config_path:
        names.append(Path(record.config_path).with_name("dataset.toml"))
    dataset = profile.get("dataset")
    if isinstance(dataset, str):
        names.append(inv.path / Path(dataset).name)
    for path in names:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        dirs = {}
        for entry in data.get("directory", []) or []:
            if isinstance(entry, dict) and entry.get("path"):
                dirs[Path(str(entry["path"])).name] = {"n_repeats": int(entry.get("num_repeats", 1) or 1)}
        return {"dirs": dirs, "resolutions": data.get("resolutions")}
    return None
