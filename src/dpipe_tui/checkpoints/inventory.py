"""Everything a diffusion-pipe run has saved, read from its folders (spec §5, §6).

Why: diffusion-pipe never deletes a ``global_stepN/`` training state, resumes whatever ``latest``
names, and after a resume from an older state leaves the abandoned attempt's saves and states mixed
with the new ones, looking the same. This module reads an engine run folder (or every run folder of
an ``output_dir``, including runs started outside dpipe-tui) into one :class:`RunFolderInventory`:

- saved models (``epochN/``, ``stepN/``): format, size, rank/alpha/dtype/tensor count from the
  safetensors header (:mod:`dpipe_tui.checkpoints.header`; never the tensors);
- training states (``global_stepN/``): step, size, complete or not for the run's pipeline stages,
  the one ``latest`` names;
- leftovers: a save's ``tmp/`` (cut off mid-write), ``latest`` naming a missing folder, states
  saved with another number of pipeline stages, a prune's trash;
- timelines: which launch (attempt) wrote each item, from the TensorBoard event files (one per
  launch, named by its start time) and, for dpipe-tui runs, the resume events of its telemetry; items
  written after the state a later launch resumed from, and before that launch, are *abandoned*.

Nothing here writes; sizes come from ``scandir`` stats.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

from dpipe_tui.checkpoints.header import HeaderError, read_alpha, read_header
from dpipe_tui.checkpoints.resume import LATEST, read_latest

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

SAVE_DIR: Final = re.compile(r"^(epoch|step)(\d+)$")
STATE_DIR: Final = re.compile(r"^global_step(\d+)$")
RUN_FOLDER: Final = re.compile(r"^\d{8}_\d{2}-\d{2}-\d{2}$")
TRASH_PREFIX: Final = ".dpipe-trash."
"""A prune renames what it removes to ``<TRASH_PREFIX><name>.<pid>`` in the same folder, then deletes it."""
SAME_STEP_S: Final = 60.0
"""An item of unknown step written within this many seconds after a state counts as that state's
step: diffusion-pipe writes the state first, then the epoch's model, at an epoch's end."""
_TFEVENTS: Final = re.compile(r"^events\.out\.tfevents\.(\d+)\.")
_MP_RANK: Final = re.compile(r"^mp_rank_(\d+)_model_states\.pt$")
_LAYER: Final = re.compile(r"^layer_(\d+)-model_states\.pt$")

FORMATS: Final = {
    "adapter_model.safetensors": "comfyui",
    "pytorch_lora_weights.safetensors": "diffusers",
    "lora.safetensors": "kohya",
    "model.safetensors": "full",
}
"""Weights file name -> format (spec §6); looked for in this order."""
FORMAT_LABELS: Final = {
    "comfyui": "ComfyUI/PEFT LoRA",
    "lokr": "ComfyUI/PEFT LoKr",
    "diffusers": "Diffusers LoRA",
    "kohya": "Kohya LoRA",
    "full": "full model",
    "unknown": "unknown",
}


@dataclass(frozen=True, slots=True)
class SaveTelemetry:
    """What a run's telemetry says about its saves and launches (dpipe-tui runs; empty otherwise).

    Attributes:
        saves: save folder name -> (step, loss) of the newest ``Saving model to directory`` event.
        resumes: (wall time, state step) per resume, in order: the step of the state it loaded.
    """

    saves: Mapping[str, tuple[int | None, float | None]] = field(default_factory=dict)
    resumes: Sequence[tuple[float, int]] = ()
    states: Mapping[str, tuple[int | None, int | None]] = field(default_factory=dict)
    """State tag -> (epoch, examples seen) when it was written (see :class:`StateItem`)."""


@dataclass(frozen=True, slots=True)
class SavedItem:
    """One saved model folder (``epoch50``, ``step500``)."""

    name: str
    kind: str
    """``epoch`` or ``step``."""
    number: int
    path: Path
    weights: Path | None
    format: str
    """A key of :data:`FORMAT_LABELS`."""
    size: int
    mtime: float
    rank: int | None = None
    alpha: float | None = None
    dtype: str | None = None
    tensors: int | None = None
    step: int | None = None
    """The training step it was saved at (``stepN``: N; ``epochN``: from telemetry)."""
    loss: float | None = None
    problem: str | None = None
    attempt: int = 1
    abandoned: bool = False

    @property
    def label(self) -> str:
        """The format in words."""
        return FORMAT_LABELS.get(self.format, self.format)


@dataclass(frozen=True, slots=True)
class StateItem:
    """One DeepSpeed training state folder (``global_stepN``)."""

    tag: str
    step: int
    path: Path
    size: int
    mtime: float
    stages: int
    """How many ``mp_rank_SS_model_states.pt`` files (one per pipeline stage) it holds."""
    layers: int
    complete: bool
    is_latest: bool = False
    problem: str | None = None
    attempt: int = 1
    abandoned: bool = False
    epoch: int | None = None
    """The last epoch started when it was written (telemetry's ``Started new epoch``); a state
    written at an epoch's end resumes at the start of the next one."""
    examples: int | None = None
    """Examples seen when it was written (step x global batch size, from telemetry)."""


@dataclass(frozen=True, slots=True)
class RunFolderInventory:
    """One engine run folder: its saves and states (newest first), ``latest``, launches, leftovers."""

    path: Path
    saves: tuple[SavedItem, ...]
    states: tuple[StateItem, ...]
    latest: str | None
    launches: tuple[float, ...]
    """Start times of the launches that wrote here (TensorBoard event files), oldest first."""
    pipeline_stages: int | None
    leftovers: tuple[str, ...] = ()
    trash: tuple[Path, ...] = ()

    @property
    def size(self) -> int:
        """Bytes held by its saves and states."""
        return sum(s.size for s in self.saves) + sum(s.size for s in self.states)

    def state(self, tag: str) -> StateItem | None:
        """The state named ``tag`` (``global_stepN``), or None."""
        return next((s for s in self.states if s.tag == tag), None)

    def save(self, name: str) -> SavedItem | None:
        """The save named ``name`` (``epoch50``), or None."""
        return next((s for s in self.saves if s.name == name), None)

    def later_than(self, tag: str) -> tuple[list[SavedItem], list[StateItem]]:
        """The items of the live timeline a resume from ``tag`` would abandon (written after it)."""
        point = self.state(tag)
        if point is None:
            return [], []
        saves = [
            s
            for s in self.saves
            if not s.abandoned
            and (s.step > point.step if s.step is not None else s.mtime > point.mtime + SAME_STEP_S)
        ]
        states = [s for s in self.states if not s.abandoned and s.step > point.step]
        return saves, states


def _folder_size(path: str) -> tuple[int, list[str], float]:
    """Bytes of the files in ``path`` and below (links not followed), the top-level names, and the
    newest write time of the folder and its top-level files (a save or state written again over an
    old one rewrites its files in place, which leaves the folder's own mtime as it was)."""
    total = 0
    names: list[str] = []
    newest = 0.0
    try:
        newest = os.stat(path).st_mtime
        with os.scandir(path) as it:
            entries = list(it)
    except OSError:
        return 0, names, newest
    for entry in entries:
        names.append(entry.name)
        try:
            if entry.is_dir(follow_symlinks=False):
                total += _folder_size(entry.path)[0]
            else:
                st = entry.stat(follow_symlinks=False)
                total += st.st_size
                newest = max(newest, st.st_mtime)
        except OSError:
            continue
    return total, names, newest


def _adapter_config(folder: Path) -> dict[str, object] | None:
    try:
        data = json.loads((folder / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _read_save(entry: os.DirEntry[str], kind: str, number: int) -> SavedItem:
    folder = Path(entry.path)
    size, names, mtime = _folder_size(entry.path)
    present = set(names)
    weights_name = next((n for n in FORMATS if n in present), None)
    item = SavedItem(
        name=entry.name,
        kind=kind,
        number=number,
        path=folder,
        weights=folder / weights_name if weights_name else None,
        format=FORMATS[weights_name] if weights_name else "unknown",
        size=size,
        mtime=mtime,
        step=number if kind == "step" else None,
    )
    problems: list[str] = []
    if "tmp" in present:
        problems.append("cut off mid-write: a tmp/ folder is left (the next save of this name fails)")
    if weights_name is None:
        problems.append("no weights file (" + ", ".join(FORMATS) + ")")
        return replace(item, problem="; ".join(problems))
    weights = folder / weights_name
    try:
        info = read_header(weights)
    except HeaderError as exc:
        problems.append(str(exc))
        return replace(item, problem="; ".join(problems))
    rank: int | None = info.rank
    alpha: float | None = None
    fmt = item.format
    if fmt == "comfyui":
        config = _adapter_config(folder)
        if config is not None:
            if str(config.get("peft_type", "")).upper() == "LOKR" or info.lokr:
                fmt = "lokr"
            r, a = config.get("r"), config.get("lora_alpha")
            rank = int(r) if isinstance(r, int | float) else rank
            alpha = float(a) if isinstance(a, int | float) else None
        elif info.lokr:
            fmt = "lokr"
    elif fmt == "kohya":
        alpha = read_alpha(weights, info)
    if fmt in ("comfyui", "diffusers") and alpha is None and rank is not None:
        alpha = float(rank)  # no alpha key: diffusion-pipe's alpha = rank convention (spec §6)
    if fmt == "full":
        rank = None
    return replace(
        item,
        format=fmt,
        rank=rank,
        alpha=alpha,
        dtype=info.dtype,
        tensors=info.tensors,
        problem="; ".join(problems) or None,
    )


def _read_state(entry: os.DirEntry[str], step: int, stages: int | None) -> StateItem:
    size, names, mtime = _folder_size(entry.path)
    ranks = {int(m[1]) for n in names if (m := _MP_RANK.match(n))}
    layers = sum(1 for n in names if _LAYER.match(n))
    want = stages or 1
    problem: str | None = None
    complete = bool(ranks) and layers > 0
    if not ranks:
        problem = "incomplete: no mp_rank_*_model_states.pt (cut off mid-write?)"
    elif layers == 0:
        problem = "incomplete: no layer_*-model_states.pt"
    elif stages is not None and ranks != set(range(want)):
        complete = len(ranks) == max(ranks) + 1
        problem = (
            f"saved with {len(ranks)} pipeline stage(s); the run's config has pipeline_stages = {want}"
            " (it cannot be loaded with this config)"
        )
    elif len(ranks) != max(ranks) + 1:
        complete = False
        problem = f"incomplete: stage files {sorted(ranks)} (one is missing)"
    return StateItem(
        tag=entry.name,
        step=step,
        path=Path(entry.path),
        size=size,
        mtime=mtime,
        stages=len(ranks),
        layers=layers,
        complete=complete,
        problem=problem,
    )


def newest_state_size(run_folder: Path) -> int:
    """Bytes of the newest (highest step) ``global_stepN`` of ``run_folder``; 0 when there is none."""
    states = named_states(run_folder)
    return _folder_size(str(max(states)[1]))[0] if states else 0


def named_states(run_folder: Path) -> list[tuple[int, Path]]:
    """(step, path) of every ``global_stepN`` folder of ``run_folder``."""
    try:
        with os.scandir(run_folder) as it:
            return [(int(m[1]), Path(e.path)) for e in it if (m := STATE_DIR.match(e.name)) and e.is_dir()]
    except OSError:
        return []


def state_stages(state: Path) -> int:
    """How many pipeline stages a ``global_stepN`` folder was saved with (its ``mp_rank_SS`` files)."""
    try:
        return sum(1 for n in os.listdir(state) if _MP_RANK.match(n))
    except OSError:
        return 0


def config_stages(run_folder: Path) -> int | None:
    """``pipeline_stages`` of the main config diffusion-pipe copied into the run folder (1 when unset)."""
    try:
        tomls = sorted(p for p in run_folder.glob("*.toml") if p.is_file())
    except OSError:
        return None
    for path in tomls:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            continue
        if isinstance(data.get("model"), dict):  # the main config, not a dataset config
            value = data.get("pipeline_stages", 1)
            return value if isinstance(value, int) and value > 0 else 1
    return None


def scan_run_folder(
    run_folder: Path | str,
    *,
    pipeline_stages: int | None = None,
    telemetry: SaveTelemetry | None = None,
) -> RunFolderInventory:
    """Read one engine run folder.

    Args:
        run_folder: ``<output_dir>/<timestamp>``.
        pipeline_stages: the stages the run trains with (its profile); read from the config copy
            in the folder when None.
        telemetry: steps and losses of saves and the resume steps, when the run has telemetry.
    """
    folder = Path(run_folder)
    stages = pipeline_stages if pipeline_stages is not None else config_stages(folder)
    telemetry = telemetry or SaveTelemetry()
    try:
        with os.scandir(folder) as it:
            entries = list(it)
    except OSError:
        entries = []
    saves: list[SavedItem] = []
    states: list[StateItem] = []
    launches: list[float] = []
    trash: list[Path] = []
    for entry in entries:
        name = entry.name
        if name.startswith(TRASH_PREFIX):
            trash.append(Path(entry.path))
            continue
        if (m := _TFEVENTS.match(name)) is not None:
            launches.append(float(m[1]))
            continue
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            continue
        if not is_dir:
            continue
        if (m := SAVE_DIR.match(name)) is not None:
            item = _read_save(entry, m[1], int(m[2]))
            known = telemetry.saves.get(name)
            if known is not None:
                step, loss = known
                item = replace(item, step=item.step if item.step is not None else step, loss=loss)
            saves.append(item)
        elif (m := STATE_DIR.match(name)) is not None:
            state = _read_state(entry, int(m[1]), stages)
            told = telemetry.states.get(name)
            if told is not None:
                state = replace(state, epoch=told[0], examples=told[1])
            states.append(state)
    latest = read_latest(folder)
    leftovers: list[str] = []
    if latest is not None:
        if not any(s.tag == latest for s in states):
            leftovers.append(f"{LATEST} names {latest!r}, which does not exist (a resume would fail)")
        states = [replace(s, is_latest=s.tag == latest) for s in states]
    if trash:
        leftovers.append(
            f"{len(trash)} item(s) of an interrupted prune in the trash (the next prune ends it)"
        )
    leftovers += [f"{s.name}: {s.problem}" for s in saves if s.problem]
    leftovers += [f"{s.tag}: {s.problem}" for s in states if s.problem]
    launches.sort()
    saves, states = _timelines(saves, states, launches, telemetry.resumes)
    saves.sort(key=lambda s: (s.mtime, s.number), reverse=True)
    states.sort(key=lambda s: s.step, reverse=True)
    return RunFolderInventory(
        path=folder,
        saves=tuple(saves),
        states=tuple(states),
        latest=latest,
        launches=tuple(launches),
        pipeline_stages=stages,
        leftovers=tuple(leftovers),
        trash=tuple(sorted(trash)),
    )


def _timelines(
    saves: list[SavedItem],
    states: list[StateItem],
    launches: list[float],
    resumes: Sequence[tuple[float, int]],
) -> tuple[list[SavedItem], list[StateItem]]:
    """Attempt numbers and abandoned flags.

    An item's attempt is the number of launches started before it was written. Launch k > 1
    resumed from a state: the telemetry's resume step when known (the resume nearest after that
    launch's start), else the newest state written before the launch and below every step the
    launch wrote itself (a bare resume when it wrote nothing yet). Items
    written before launch k but after that state (by step when the item's step is known, else by
    write time, more than :data:`SAME_STEP_S` after the state) belong to a timeline launch k
    abandoned.
    """

    def attempt(mtime: float) -> int:
        return max(1, sum(1 for t in launches if t <= mtime))

    by_step = {s.step: s for s in states}
    cuts: list[tuple[float, int, float]] = []  # (launch time, resumed step, resumed state's mtime)
    for k, start in enumerate(launches[1:], start=1):
        nxt = launches[k + 1] if k + 1 < len(launches) else float("inf")
        told = [step for t, step in resumes if start <= t < nxt]
        if told:
            step = told[0]
        else:
            # the launch resumed from a state written before it; the steps it wrote itself (a
            # state or stepN save written again) say it started below them
            before = [s for s in states if s.mtime < start]
            own = [s.step for s in states if start <= s.mtime < nxt]
            own += [s.step for s in saves if s.step is not None and start <= s.mtime < nxt]
            if own:
                before = [s for s in before if s.step < min(own)]
            if not before:
                continue
            step = max(before, key=lambda s: s.step).step
        point = by_step.get(step)
        cuts.append((start, step, point.mtime if point is not None else float("-inf")))

    def abandoned(mtime: float, step: int | None) -> bool:
        for start, resumed, resumed_mtime in cuts:
            if mtime >= start:
                continue
            if step is not None and step > resumed:
                return True
            if step is None and mtime > resumed_mtime + SAME_STEP_S:
                return True
        return False

    out_saves = [replace(s, attempt=attempt(s.mtime), abandoned=abandoned(s.mtime, s.step)) for s in saves]
    out_states = [replace(s, attempt=attempt(s.mtime), abandoned=abandoned(s.mtime, s.step)) for s in states]
    return out_saves, out_states


def looks_like_run_folder(path: Path) -> bool:
    """A diffusion-pipe run folder: a timestamp name, or a ``latest``, save or state inside."""
    if RUN_FOLDER.match(path.name):
        return True
    try:
        with os.scandir(path) as it:
            return any(e.name == LATEST or SAVE_DIR.match(e.name) or STATE_DIR.match(e.name) for e in it)
    except OSError:
        return False


def run_folders(output_dir: Path | str) -> list[Path]:
    """The run folders of an ``output_dir``, newest name last (diffusion-pipe's own order)."""
    try:
        with os.scandir(output_dir) as it:
            dirs = [Path(e.path) for e in it if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []
    return sorted(d for d in dirs if looks_like_run_folder(d))


def scan_output_dir(
    output_dir: Path | str, *, pipeline_stages: int | None = None
) -> list[RunFolderInventory]:
    """Every run folder of ``output_dir``, oldest first (runs started outside dpipe-tui included)."""
    return [scan_run_folder(p, pipeline_stages=pipeline_stages) for p in run_folders(output_dir)]


def saved_items(inventories: Iterable[RunFolderInventory]) -> list[SavedItem]:
    """All saves of several run folders, newest first."""
    return sorted((s for inv in inventories for s in inv.saves), key=lambda s: s.mtime, reverse=True)
