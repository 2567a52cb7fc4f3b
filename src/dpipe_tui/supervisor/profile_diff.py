"""What changed between the profile a checkpoint was trained with and the profile a resume will use.

Why (spec §5.6 step 5): diffusion-pipe resumes with the config on the command line, not the copy in
the run folder. Only some changes make the checkpoint fail to load: another model type or other
model weights (any ``[model]`` ``*path`` key), another adapter type or rank (the LoRA tensors change
shape), another ``pipeline_stages`` (the layer partition changes). Those refuse a resume. Every other
``[model]``/``[adapter]`` change (``blocks_to_swap``, the OOM hint's own remedy; dtypes; timestep
sampling ...) still loads and comes back as a warning, as do changes of the dataset, batch sizes,
gradient accumulation or the GPU count, which make the saved dataloader position meaningless
(``--reset_dataloader``). Both sides are compared in frozen form (absolute paths), so moving a
relative path to its absolute spelling is not a change.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ADAPTER_SHAPE_KEYS = ("type", "rank")
MOVES_DATALOADER = (
    "micro_batch_size_per_gpu",
    "image_micro_batch_size_per_gpu",
    "gradient_accumulation_steps",
)


@dataclass(frozen=True, slots=True)
class ProfileChange:
    """One change that matters to a resume.

    Attributes:
        key: the top-level key (``model.type``, ``adapter.rank`` ... for table keys, or
            ``dataset``/``gpus``).
        breaks_loading: True when the checkpoint will not load; False when it loads but the
            training or the dataloader position changes.
        message: what changed and what to do.
    """

    key: str
    breaks_loading: bool
    message: str


@dataclass(frozen=True, slots=True)
class ConfigSnapshot:
    """The resume-relevant content of one attempt's frozen configs (main and dataset TOML, GPU count)."""

    main: dict[str, Any]
    dataset: dict[str, Any]
    gpus: int | None = None

    @classmethod
    def of(cls, main_path: Path, gpus: int | None = None) -> ConfigSnapshot:
        """Read a frozen main TOML and the dataset TOML it names."""
        main = _load(main_path)
        return cls(main, _dataset_of(main, main_path), gpus)


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


def _table(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _breaks(table: str, key: str) -> bool:
    if table == "model":
        return key == "type" or key.endswith("path")  # the model itself, or its weights
    return key in ADAPTER_SHAPE_KEYS


def _table_changes(table: str, old: dict[str, Any], new: dict[str, Any]) -> list[ProfileChange]:
    changes: list[ProfileChange] = []
    for key in sorted(set(old) | set(new)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        what = f"[{table}] {key} changed ({before!r} -> {after!r})"
        if _breaks(table, key):
            message = (
                f"{what}: DeepSpeed cannot load the checkpoint into a different "
                f"{'model' if table == 'model' else 'adapter shape'}. Start a new run instead."
            )
        else:
            message = f"{what}: the checkpoint still loads; the change applies from the resumed step."
        changes.append(ProfileChange(f"{table}.{key}", _breaks(table, key), message))
    return changes


def compare_snapshots(old: ConfigSnapshot, new: ConfigSnapshot) -> list[ProfileChange]:
    """The resume-relevant changes from ``old`` (the checkpoint's configs) to ``new``."""
    changes: list[ProfileChange] = []
    for table in ("model", "adapter"):
        changes += _table_changes(table, _table(old.main, table), _table(new.main, table))
    if old.main.get("pipeline_stages") != new.main.get("pipeline_stages"):
        changes.append(
            ProfileChange(
                "pipeline_stages",
                True,
                f"pipeline_stages changed ({old.main.get('pipeline_stages')} -> "
                f"{new.main.get('pipeline_stages')}): DeepSpeed cannot load the checkpoint into a "
                "different pipeline layout. Start a new run instead.",
            )
        )
    for key in MOVES_DATALOADER:
        if old.main.get(key) != new.main.get(key):
            changes.append(
                ProfileChange(
                    key,
                    False,
                    f"{key} changed ({old.main.get(key)} -> {new.main.get(key)}): the saved dataloader "
                    "position no longer matches; consider --reset_dataloader.",
                )
            )
    if old.dataset != new.dataset:
        changes.append(
            ProfileChange(
                "dataset",
                False,
                "the dataset config changed: the saved dataloader position no longer matches; "
                "consider --reset_dataloader.",
            )
        )
    if old.gpus is not None and new.gpus is not None and old.gpus != new.gpus:
        changes.append(
            ProfileChange(
                "gpus",
                False,
                f"GPU count changed ({old.gpus} -> {new.gpus}): the data-parallel degree and the "
                "dataloader position change; consider --reset_dataloader.",
            )
        )
    return changes
