"""How much disk a run will write: its saves and training states, from a similar run's sizes.

Why: a 1024 Chroma LoRA's training state is gigabytes, written at every checkpoint and never deleted
by diffusion-pipe; a run that fills the disk on its fortieth checkpoint dies mid-write. Before a
launch the services compare this forecast with the free space and warn. Sizes come from the newest
save and state of an earlier run of the same profile (the same model and adapter: the only reliable
figure without loading the model); without one there is no forecast (None), never a guess.
Counts come from the profile (epochs and the ``*_every_n_epochs`` / ``*_every_n_steps`` keys),
capped by the retention counts, since a pruned item's space is freed as the run goes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dpipe_tui.checkpoints.inventory import newest_state_size, scan_run_folder

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path


@dataclass(frozen=True, slots=True)
class DiskForecast:
    """What a run is expected to write."""

    saves: int
    save_bytes: int
    states: int
    state_bytes: int
    source: Path
    """The run folder the sizes come from."""

    @property
    def total(self) -> int:
        """Bytes in all."""
        return self.saves * self.save_bytes + self.states * self.state_bytes


def _count(every: Any, length: Any) -> int:
    if isinstance(every, int) and every > 0 and isinstance(length, int) and length > 0:
        return math.ceil(length / every)
    return 0


def forecast(
    config: dict[str, Any],
    similar_run_folders: Iterable[Path],
    *,
    keep_saves: int | None = None,
    keep_states: int | None = None,
) -> DiskForecast | None:
    """The disk ``config`` (a main profile's TOML data) will write, from the first of
    ``similar_run_folders`` (newest first) that holds a save or a state; None without one."""
    for folder in similar_run_folders:
        state_bytes = newest_state_size(folder)
        inv = scan_run_folder(folder) if state_bytes or folder.is_dir() else None
        save_bytes = max((s.size for s in inv.saves), default=0) if inv is not None else 0
        if not state_bytes and not save_bytes:
            continue
        epochs, max_steps = config.get("epochs"), config.get("max_steps")
        saves = _count(config.get("save_every_n_epochs"), epochs) + _count(
            config.get("save_every_n_steps"), max_steps
        )
        states = _count(config.get("checkpoint_every_n_epochs"), epochs) + 1  # +1: the end of training
        if config.get("checkpoint_every_n_minutes") is not None and inv is not None:
            states = max(states, len(inv.states))  # timed checkpoints: as many as the similar run made
        if keep_saves is not None:
            saves = min(saves, keep_saves + 1)  # one more exists between a save and its prune
        if keep_states is not None:
            states = min(states, keep_states + 1)
        return DiskForecast(saves, save_bytes, states, state_bytes, folder)
    return None
