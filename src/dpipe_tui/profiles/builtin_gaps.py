"""What the built-in engine does not do that diffusion-pipe does, said where the key is written.

Why a list of its own: with ``[dpipe_tui] engine = 'builtin'`` a key diffusion-pipe honours must
never be dropped without a word. The built-in engine honours every Chroma key except these; each
finding names the engine, what it does instead, and the fix. (One diffusion-pipe behaviour is
warned about for both engines: it merges ``fuse_adapters`` entries at weight 1 for Chroma.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dpipe_tui.profiles.context import Context
from dpipe_tui.profiles.findings import Severity

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.profiles.findings import Finding
    from dpipe_tui.profiles.positions import PositionIndex

CODE = "builtin-ignores"
_SWITCH = "or set [dpipe_tui] engine = 'diffusion-pipe'"

MAIN_GAPS: dict[str, tuple[str, str, Severity]] = {
    "compile": (
        "on the CPU it trains uncompiled (on a GPU it compiles the pipeline as train.py does)",
        "remove the key for CPU runs",
        Severity.HINT,
    ),
    "map_num_proc": (
        "it caches in one process (the same cache, no parallel preprocessing)",
        "remove the key",
        Severity.HINT,
    ),
}
"""Top-level keys: (what the built-in engine does instead, the fix, how loud)."""

DIRECTORY_GAPS: dict[str, tuple[str, str]] = {
    "control_path": ("it trains no edit (control) datasets", f"remove the key, {_SWITCH}"),
}
"""``[[directory]]`` keys (every dataset-level key is honoured: masks, captions.json, ``.tar``
archives and ``size_buckets`` included)."""


def _message(key: str, instead: str) -> str:
    return f"the built-in engine does not honour {key}: {instead}"


def is_builtin(data: Mapping[str, Any]) -> bool:
    """Whether a main config trains with the built-in engine."""
    table = data.get("dpipe_tui")
    return isinstance(table, Mapping) and table.get("engine") == "builtin"


def check_main_gaps(ctx: Context, data: Mapping[str, Any]) -> None:
    """Warn on main-config keys the built-in engine (when chosen) does not honour."""
    model = data.get("model")
    adapter = data.get("adapter")
    fuse = adapter.get("fuse_adapters") if isinstance(adapter, Mapping) else None
    if isinstance(model, Mapping) and model.get("type") == "chroma" and isinstance(fuse, list):
        for i, entry in enumerate(fuse):
            if isinstance(entry, Mapping) and entry.get("weight", 1.0) != 1.0:
                ctx.warning(
                    ("adapter", "fuse_adapters", i, "weight"),
                    "diffusion-pipe merges Chroma's fuse_adapters at weight 1 (only Flux reads weight); "
                    "so does the built-in engine",
                    code="ignored-key",
                    fix="scale the LoRA file itself, or remove weight",
                )
    if not is_builtin(data):
        return
    for key, (instead, fix, severity) in MAIN_GAPS.items():
        if data.get(key):
            ctx.add(severity, (key,), _message(key, instead), code=CODE, fix=fix)


def dataset_gaps(path: Path | None, index: PositionIndex, data: Mapping[str, Any]) -> list[Finding]:
    """Warnings on a dataset config's keys the built-in engine does not honour."""
    ctx = Context(path, index)
    directories = data.get("directory")
    for i, entry in enumerate(directories if isinstance(directories, list) else []):
        if not isinstance(entry, Mapping):
            continue
        for key, (instead, fix) in DIRECTORY_GAPS.items():
            if entry.get(key):
                ctx.add(Severity.WARNING, ("directory", i, key), _message(key, instead), code=CODE, fix=fix)
    return ctx.findings
