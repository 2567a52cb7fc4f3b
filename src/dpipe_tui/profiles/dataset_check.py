"""Validation of a dataset TOML (spec §3.1) into located findings.

Why a thin layer: the schema and diffusion-pipe's run-time rules belong to the datasets side
(:mod:`dpipe_tui.profiles.dataset_schema`); this module turns them into findings with positions,
adds unknown-key warnings with "did you mean", and probes the folders the file names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from dpipe_tui.profiles import dataset_schema as ds
from dpipe_tui.profiles.context import Context, add_pydantic_errors, did_you_mean
from dpipe_tui.profiles.findings import Severity
from dpipe_tui.profiles.pathchecks import check_path

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.profiles.positions import KeyPath

_SEVERITY = {"error": Severity.ERROR, "warning": Severity.WARNING, "hint": Severity.HINT}


def _rule_path(key: str) -> KeyPath:
    return tuple(int(p) if p.isdigit() else p for p in key.split(".")) if key else ()


def _unknown(ctx: Context, path: KeyPath, key: str, known: frozenset[str], where: str) -> None:
    guess = did_you_mean(key, known)
    ctx.warning(
        (*path, key),
        f"unknown key in {where}; diffusion-pipe ignores it",
        code="unknown-key",
        fix=f"did you mean {guess}?" if guess else "remove it, or check the spelling",
    )


def check_dataset(
    ctx: Context, data: Mapping[str, Any], *, base_dir: Path | None, demo: bool
) -> ds.DatasetConfig | None:
    """Validate dataset config ``data``; probe its folders unless ``base_dir`` is None."""
    for key in data:
        if key not in ds.DATASET_KEYS:
            _unknown(ctx, (), key, ds.DATASET_KEYS, "the dataset config")
    dirs = data.get("directory")
    if isinstance(dirs, list):
        for i, entry in enumerate(dirs):
            if isinstance(entry, Mapping):
                for key in entry:
                    if key not in ds.DIRECTORY_KEYS:
                        _unknown(ctx, ("directory", i), key, ds.DIRECTORY_KEYS, "[[directory]]")
                if "subsample_ratio" in entry:
                    ctx.warning(
                        ("directory", i, "subsample_ratio"),
                        "subsample_ratio is read at dataset level only",
                        code="ignored-key",
                        fix="move it to the top of the dataset file",
                    )
                if base_dir is not None:
                    for key, kind in (
                        ("path", "dir"),
                        ("mask_path", "dir"),
                        ("control_path", "dir"),
                        ("default_mask_file", "file"),
                    ):
                        check_path(
                            ctx,
                            ("directory", i, key),
                            entry.get(key),
                            base_dir,
                            demo=demo,
                            kind=kind,
                            what="folder" if kind == "dir" else "path",  # the key is the finding's own
                        )
    elif "directory" in data:
        ctx.error(("directory",), "directory must be an array of tables ([[directory]])", code="type")
    try:
        cfg = ds.DatasetConfig.model_validate(dict(data))
    except ValidationError as exc:
        add_pydantic_errors(ctx, exc, data)
        return None
    for rule in ds.dataset_rules(cfg):
        ctx.add(
            _SEVERITY[rule.severity], _rule_path(rule.key), rule.message, code="dataset-rule", fix=rule.fix
        )
    return cfg
