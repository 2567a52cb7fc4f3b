"""The models a run has saved (``epochN/`` and ``stepN/`` in its engine run folder), newest first.

Why: a finished run should say where its result is. diffusion-pipe writes each save as a folder named
by epoch or step (spec §5.2) holding the LoRA (``adapter_model.safetensors`` with its
``adapter_config.json``, or Diffusers/Kohya names) or, for a full fine-tune, the model; the newest is
the run's result. Only names and sizes are read (``stat``), never the tensors.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dpipe_tui.checkpoints.resume import named_folders

SAVE_DIR = re.compile(r"^(epoch|step)(\d+)$")
WEIGHT_FILES = (
    "adapter_model.safetensors",
    "pytorch_lora_weights.safetensors",
    "lora.safetensors",
    "model.safetensors",
)
"""The main weights file of a save folder, in the order they are looked for."""


@dataclass(frozen=True, slots=True)
class SavedModel:
    """One save: its folder name (``epoch50``), the weights file (or the folder), its size in bytes."""

    name: str
    path: Path
    size: int
    mtime: float


def saved_models(run_folder: Path | str | None) -> list[SavedModel]:
    """Every save folder of ``run_folder``, newest first (by write time); empty when there is none."""
    if not run_folder:
        return []
    out: list[SavedModel] = []
    for entry, _m in named_folders(run_folder, SAVE_DIR):
        folder = Path(entry.path)
        weights = next((folder / n for n in WEIGHT_FILES if (folder / n).is_file()), None)
        try:
            if weights is not None:
                st = weights.stat()
                out.append(SavedModel(entry.name, weights, st.st_size, st.st_mtime))
            else:
                files = [f for f in os.scandir(folder) if f.is_file()]
                size = sum(f.stat().st_size for f in files)
                out.append(SavedModel(entry.name, folder, size, entry.stat().st_mtime))
        except OSError:
            continue
    out.sort(key=lambda m: m.mtime, reverse=True)
    return out


def last_saved_model(run_folder: Path | str | None) -> SavedModel | None:
    """The newest save of ``run_folder``, or None."""
    found = saved_models(run_folder)
    return found[0] if found else None
