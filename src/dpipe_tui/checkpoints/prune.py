"""Retention: which saves and states to remove, and removing them so that a kill never hurts.

Why: diffusion-pipe never deletes a ``global_stepN/`` (gigabytes each for a 1024 LoRA) and keeps
every save, so disks fill. A prune is planned first (:func:`plan_prune`: what goes, what stays and
why, bytes freed) and carried out second (:func:`execute`). Removal renames the folder to a trash
name in the same folder (atomic, so no folder under a real name is ever half-deleted), then deletes
the trash; a kill in between leaves only trash, which the next prune (or :func:`empty_trash`) ends.

Never removed: pinned items, the state ``latest`` names, and for a live run its newest save and
state and anything still being written.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.checkpoints.inventory import TRASH_PREFIX, RunFolderInventory, SavedItem, StateItem

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Sequence


@dataclass(frozen=True, slots=True)
class Policy:
    """What to keep. A count left None does not prune that kind.

    Attributes:
        keep_last: saved models to keep, newest first.
        keep_every: also keep saves whose epoch/step number is a multiple of this.
        states: training states to keep, newest step first.
        abandoned: remove the items of abandoned timelines (on their own, or with the counts).
    """

    keep_last: int | None = None
    keep_every: int | None = None
    states: int | None = None
    abandoned: bool = False

    @property
    def empty(self) -> bool:
        """Nothing would be pruned."""
        return (
            self.keep_last is None and self.keep_every is None and self.states is None and not self.abandoned
        )


@dataclass(frozen=True, slots=True)
class Removal:
    """One item a prune removes."""

    name: str
    path: Path
    size: int
    why: str


@dataclass(frozen=True, slots=True)
class Kept:
    """One item a prune keeps although the counts would remove it, and why."""

    name: str
    why: str


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """What a prune of one run folder does."""

    folder: Path
    remove: tuple[Removal, ...]
    protected: tuple[Kept, ...]
    trash: tuple[Path, ...]
    """An interrupted prune's trash, emptied first."""

    @property
    def frees(self) -> int:
        """Bytes the removals free (the trash's not counted)."""
        return sum(r.size for r in self.remove)


def plan_prune(
    inventory: RunFolderInventory,
    policy: Policy,
    *,
    pinned: Collection[Path] = (),
    live: bool = False,
) -> PrunePlan:
    """What ``policy`` removes from ``inventory``'s folder.

    Args:
        pinned: paths of pinned items (never removed).
        live: the run is training now: its newest save and state and unfinished items stay.
    """
    pins = {Path(p) for p in pinned}
    remove: list[Removal] = []
    protected: list[Kept] = []
    newest_save = inventory.saves[0].name if inventory.saves else None
    newest_state = inventory.states[0].tag if inventory.states else None

    def guard_save(item: SavedItem) -> str | None:
        if item.path in pins:
            return "pinned"
        if live and (item.name == newest_save or item.problem):
            return "the live run's newest save" if item.name == newest_save else _WRITING
        return None

    def guard_state(item: StateItem) -> str | None:
        if item.path in pins:
            return "pinned"
        if item.is_latest:
            return "named by latest (the next resume loads it)"
        if live and (item.tag == newest_state or not item.complete):
            return "the live run's newest state" if item.tag == newest_state else _WRITING
        return None

    kept_saves: set[str] = set()
    if policy.keep_last is not None:
        live_saves = [s for s in inventory.saves if not s.abandoned]
        kept_saves.update(s.name for s in live_saves[: max(policy.keep_last, 0)])
    if policy.keep_every:
        kept_saves.update(
            s.name for s in inventory.saves if s.number % policy.keep_every == 0 and not s.abandoned
        )
    counting_saves = policy.keep_last is not None or policy.keep_every is not None
    for save in inventory.saves:
        why: str | None = None
        if policy.abandoned and save.abandoned:
            why = _abandoned(save.attempt)
        elif counting_saves and save.name not in kept_saves:
            why = _save_reason(policy)
        if why is None:
            continue
        guard = guard_save(save)
        if guard is not None:
            protected.append(Kept(save.name, guard))
        else:
            remove.append(Removal(save.name, save.path, save.size, why))
    kept_states = {
        s.tag for s in [s for s in inventory.states if not s.abandoned][: max(policy.states or 0, 0)]
    }
    for state in inventory.states:
        why = None
        if policy.abandoned and state.abandoned:
            why = _abandoned(state.attempt)
        elif policy.states is not None and state.tag not in kept_states:
            why = f"beyond the newest {policy.states} training state(s)"
        if why is None:
            continue
        guard = guard_state(state)
        if guard is not None:
            protected.append(Kept(state.tag, guard))
        else:
            remove.append(Removal(state.tag, state.path, state.size, why))
    return PrunePlan(inventory.path, tuple(remove), tuple(protected), inventory.trash)


_WRITING = "the live run may be writing it"


def _abandoned(attempt: int) -> str:
    return f"abandoned timeline (written by attempt {attempt} after the state a later attempt resumed from)"


def _save_reason(policy: Policy) -> str:
    parts = []
    if policy.keep_last is not None:
        parts.append(f"not among the newest {policy.keep_last}")
    if policy.keep_every:
        parts.append(f"not a multiple of {policy.keep_every}")
    return " and ".join(parts) + " saved model(s)" if parts else "pruned"


def trash_name(path: Path) -> Path:
    """The name ``path`` takes in the trash (same folder, hidden, never a save/state name)."""
    return path.with_name(f"{TRASH_PREFIX}{path.name}.{os.getpid()}")


def empty_trash(folder: Path, trash: Sequence[Path] | None = None) -> int:
    """Delete an interrupted prune's trash in ``folder``; the bytes freed."""
    if trash is None:
        try:
            trash = [Path(e.path) for e in os.scandir(folder) if e.name.startswith(TRASH_PREFIX)]
        except OSError:
            return 0
    freed = 0
    for path in trash:
        freed += _tree_size(path)
        _delete(path)
    return freed


def execute(
    plan: PrunePlan,
    *,
    before_delete: Callable[[Path, int], None] | None = None,
) -> list[Removal]:
    """Carry out ``plan``: empty the old trash, then rename each removal to the trash and delete it.

    Args:
        before_delete: test hook, called with each trash path and its index before it is deleted
            (a fault-injection test kills the process there, or mid-way through several).

    Returns:
        The removals done (an item already gone is skipped).
    """
    empty_trash(plan.folder, plan.trash)
    done: list[Removal] = []
    for index, removal in enumerate(plan.remove):
        trash = trash_name(removal.path)
        try:
            os.rename(removal.path, trash)  # atomic: the real name is whole or gone
        except FileNotFoundError:
            continue
        if before_delete is not None:
            before_delete(trash, index)
        _delete(trash)
        done.append(removal)
    return done


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
    return total
