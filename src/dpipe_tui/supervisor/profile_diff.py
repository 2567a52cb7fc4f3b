"""What changed between the profile a checkpoint was trained with and the profile a resume will use.

Why (spec §5.6 step 5): diffusion-pipe resumes with the config on the command line, not the copy in
the run folder. Changing the model, the adapter or ``pipeline_stages`` makes the checkpoint fail to
load; changing the dataset, batch sizes, gradient accumulation or the GPU count makes the saved
dataloader position meaningless (``--reset_dataloader``). Both sides are compared in frozen form
(absolute paths), so moving a relative path to its absolute spelling is not a change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BREAKS_LOADING = ("model", "adapter", "pipeline_stages")
MOVES_DATALOADER = (
    "micro_batch_size_per_gpu",
    "image_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
)


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """One change that matters to a resume.

    Attributes:
        key: the top-level key (or ``dataset``/``gpus``).
        breaks_loading: True when the checkpoint will not load; False when only the dataloader
            position becomes meaningless.
        message: what changed and what to do.
    """

    key: str
    breaks_loading: bool
    message: str


def _load(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _dataset_of(main: dict[str, Any], main_path: Path) -> dict[str, Any]:
    value = main.get("dataset")
    if not isinstance(value, str):
        return {}
    path = Path(value)
    return _load(path if path.is_absolute() else main_path.parent / path)


def compare(
    old_main: Path, new_main: Path, *, old_gpus: int | None = None, new_gpus: int | None = None
) -> list[ProfileChange]:
    """Compare two frozen main TOMLs (and their dataset TOMLs) for resume-relevant changes."""
    old, new = _load(old_main), _load(new_main)
    changes: list[ProfileChange] = []
    for key in BREAKS_LOADING:
        if old.get(key) != new.get(key):
            changes.append(
                ProfileChange(
                    key,
                    True,
                    f"[{key}] changed since the checkpoint: DeepSpeed cannot load it into a different "
                    f"model/adapter/pipeline layout. Start a new run instead.",
                )
            )
    for key in MOVES_DATALOADER:
        if old.get(key) != new.get(key):
            changes.append(
                ProfileChange(
                    key,
                    False,
                    f"{key} changed ({old.get(key)} -> {new.get(key)}): the saved dataloader "
                    "position no longer matches; consider --reset_dataloader.",
                )
            )
    if _dataset_of(old, old_main) != _dataset_of(new, new_main):
        changes.append(
            ProfileChange(
                "dataset",
                False,
                "the dataset config changed: the saved dataloader position no longer matches; "
                "consider --reset_dataloader.",
            )
        )
    if old_gpus is not None and new_gpus is not None and old_gpus != new_gpus:
        changes.append(
            ProfileChange(
                "gpus",
                False,
                f"GPU count changed ({old_gpus} -> {new_gpus}): the data-parallel degree and the "
                "dataloader position change; consider --reset_dataloader.",
            )
        )
    return changes
