"""Pydantic models of diffusion-pipe's dataset TOML (spec §3.1) and the cross-field rules it enforces.

Why this shape:

* Every field defaults to ``None`` meaning "not set here". diffusion-pipe resolves each directory key as
  ``directory.get(key, dataset.get(key, default))``, so "unset" and "set to the default" differ (a
  directory value overrides the dataset value only when present). The defaults diffusion-pipe falls back
  to are given in each attribute docstring; :mod:`dpipe_tui.datasets.config` applies them.
* Strict scalar types (:mod:`dpipe_tui.profiles.types`): diffusion-pipe uses TOML values as they
  come, so ``num_repeats = "2"`` or ``enable_ar_bucket = "false"`` (a true string) must not validate;
  floats accept integers as diffusion-pipe does. Lists and ``[w, h]`` pairs stay lax containers (TOML
  arrays arrive as lists) with strict elements.
* ``extra="allow"``: diffusion-pipe silently ignores unknown keys, and the profiles validator wants to
  warn about them with a "did you mean" instead of failing, so unknown keys land in ``model_extra`` and
  the known-key sets are exported (:data:`DATASET_KEYS`, :data:`DIRECTORY_KEYS`).
* Rules that pydantic types cannot express (and that diffusion-pipe enforces only at run time, often
  with an unhelpful ``KeyError`` or a silent ``quit()``) live in :func:`dataset_rules`, which returns
  plain located tuples that the profiles validator turns into findings.
"""

from __future__ import annotations

import math
from typing import Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from dpipe_tui.profiles.types import Bool, Float, Int, Str

RulesSeverity = Literal["error", "warning", "hint"]

Resolution = Float | tuple[Float, Float]
"""A side length (area = side²) or a ``[w, h]`` pair (only ``sqrt(w*h)`` matters)."""

AspectRatio = Float | tuple[Float, Float]
"""A width/height ratio, or a ``[w, h]`` pair turned into ``w / h``."""

SizeBucket = tuple[Int, Int, Int]
"""A fixed final size ``[width, height, frames]`` (Cosmos-style size buckets)."""

MAX_RESOLUTIONS = 3
"""More resolutions than this make diffusion-pipe print a warning and ``quit()`` (exit status 0)."""


class _BucketKeys(BaseModel):
    """Keys valid both at dataset level and in a ``[[directory]]`` (which overrides the dataset)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    resolutions: list[Resolution] | None = None
    """Target areas, one bucket set per entry; the dataset is effectively repeated once per entry.
    Required at dataset level unless ``size_buckets`` is used. More than 3 entries quit the run."""
    enable_ar_bucket: Bool | None = None
    """Bucket by aspect ratio. Default false: everything is centre-cropped into the AR 1.0 bucket."""
    min_ar: Float | None = None
    """Smallest w/h ratio of the geometric AR spacing (needed when AR bucketing is on without ar_buckets)."""
    max_ar: Float | None = None
    """Largest w/h ratio of the geometric AR spacing."""
    num_ar_buckets: Int | None = None
    """Number of ARs spaced geometrically (log space) over ``[min_ar, max_ar]``."""
    ar_buckets: list[AspectRatio] | None = None
    """Explicit aspect ratios (floats or ``[w, h]`` pairs); overrides min/max/num_ar_buckets."""
    frame_buckets: list[Int] | None = None
    """Frame counts at the model's fps. Default ``[1]``; 1 is always added. Videos go to the longest
    bucket not longer than the clip; a clip shorter than every bucket is skipped."""
    size_buckets: list[SizeBucket] | None = None
    """Fixed ``[w, h, frames]`` sizes; replaces resolutions and AR buckets (Cosmos style)."""
    num_repeats: Float | None = None
    """Epoch multiplier (sd-scripts semantics). Default 1; fractions truncate the length; must be > 0."""
    shuffle_tags: Bool | None = None
    """Default false. Same as ``cache_shuffle_num = 1`` when that is 0."""
    cache_shuffle_num: Int | None = None
    """Default 0. Number of tag-shuffled caption variants cached per caption (each is a training item)."""
    cache_shuffle_delimiter: Str | None = None
    """Default ``", "``. Tag delimiter used for shuffling."""
    caption_prefix: Str | None = None
    """Default ``""``. Prepended to every caption."""
    skip_empty_caption: Bool | None = None
    """Default **true**: an item without a caption is skipped; false trains it with an empty caption."""
    shuffle_metadata: Bool | None = None
    """Default true. Deterministically shuffle the file list (seed = hash of the directory path)."""
    online_captions: Bool | None = None
    """Default false. Read ``captions.json`` at training time (needs the file in the directory)."""


class DirectoryConfig(_BucketKeys):
    """One ``[[directory]]`` table: a media folder plus overrides of the dataset-level keys."""

    path: Str
    """Media folder (required). Not recursive: only its files are used; subfolders (incl. cache/) are
    ignored. A relative path resolves against diffusion-pipe's working directory (its checkout root)."""
    mask_path: Str | None = None
    """Folder of masks matched to media by file stem (any extension); the R channel is the loss weight."""
    default_mask_file: Str | None = None
    """Mask used for items that have none in ``mask_path``."""
    control_path: Str | None = None
    """Edit datasets: folder of control images matched by stem; every target needs one (else RuntimeError)."""


class DatasetConfig(_BucketKeys):
    """A whole dataset TOML file: dataset-level defaults plus the ``[[directory]]`` list."""

    subsample_ratio: Float | None = None
    """Dataset level only. Keep only the first ``int(batches * ratio)`` batches of each epoch."""
    directory: list[DirectoryConfig] = []
    """The media folders. At least one is needed."""

    @classmethod
    def known_keys(cls) -> frozenset[str]:
        """Keys diffusion-pipe reads at dataset level (anything else is silently ignored by it)."""
        return DATASET_KEYS


_SHARED = frozenset(_BucketKeys.model_fields)
DATASET_KEYS: frozenset[str] = _SHARED | {"subsample_ratio", "directory"}
"""Every key diffusion-pipe reads at the top level of a dataset TOML."""
DIRECTORY_KEYS: frozenset[str] = _SHARED | {"path", "mask_path", "default_mask_file", "control_path"}
"""Every key diffusion-pipe reads inside a ``[[directory]]`` table."""


class DatasetRule(NamedTuple):
    """One problem found by :func:`dataset_rules`; a plain 4-tuple ``(key, severity, message, fix)``."""

    key: str
    """Dotted location, e.g. ``"resolutions"`` or ``"directory.1.num_repeats"``."""
    severity: RulesSeverity
    message: str
    fix: str | None


def _effective(cfg: DatasetConfig, d: DirectoryConfig, name: str) -> tuple[object, str]:
    """The value diffusion-pipe uses for ``name`` in directory ``d``, and the key that supplied it."""
    own = getattr(d, name)
    return (own, "dir") if own is not None else (getattr(cfg, name), "ds")


def dataset_rules(cfg: DatasetConfig) -> list[DatasetRule]:
    """Cross-field checks that diffusion-pipe enforces at run time (spec §3.1 and utils/dataset.py).

    Args:
        cfg: the parsed dataset file.

    Returns:
        Located problems, in file order; empty when diffusion-pipe would accept the structure.
    """
    out: list[DatasetRule] = []
    if not cfg.directory:
        out.append(
            DatasetRule(
                "directory",
                "error",
                "the dataset has no [[directory]] table, so it would be empty",
                "add a [[directory]] table with path = '/path/to/images'",
            )
        )
    out.extend(_rules_ds_level(cfg))
    for i, d in enumerate(cfg.directory):
        out.extend(_rules_directory(cfg, i, d))
    # A dataset-level problem is found once per directory that inherits it; report it once.
    return list(dict.fromkeys(out))


def _rules_ds_level(cfg: DatasetConfig) -> list[DatasetRule]:
    out: list[DatasetRule] = []
    if cfg.subsample_ratio is not None and not 0 < cfg.subsample_ratio <= 1:
        out.append(
            DatasetRule(
                "subsample_ratio",
                "warning",
                f"subsample_ratio = {cfg.subsample_ratio} is outside (0, 1]; the epoch keeps "
                "int(batches * ratio) batches",
                "use a fraction such as 0.5, or remove the key",
            )
        )
    return out


def _rules_directory(cfg: DatasetConfig, i: int, d: DirectoryConfig) -> list[DatasetRule]:
    out: list[DatasetRule] = []
    where = f"directory.{i}"
    size_buckets, sb_from = _effective(cfg, d, "size_buckets")
    if size_buckets is None:
        # diffusion-pipe evaluates dataset_config['resolutions'] eagerly, even when the directory has its own.
        if cfg.resolutions is None:
            out.append(
                DatasetRule(
                    "resolutions",
                    "error",
                    "'resolutions' is missing at dataset level; diffusion-pipe reads it for every "
                    "directory without size_buckets, even one that sets its own "
                    "(KeyError: 'resolutions')",
                    "add e.g. resolutions = [512] at the top of the dataset file",
                )
            )
        out.extend(_rules_ar(cfg, i, d))
    else:
        out.extend(
            _rules_size_buckets(
                d.size_buckets if d.size_buckets is not None else (cfg.size_buckets or []),
                f"{where}.size_buckets" if sb_from == "dir" else "size_buckets",
            )
        )
    res, res_from = _effective(cfg, d, "resolutions")
    if isinstance(res, list) and len(res) > MAX_RESOLUTIONS:
        out.append(
            DatasetRule(
                f"{where}.resolutions" if res_from == "dir" else "resolutions",
                "error",
                f"{len(res)} resolutions: diffusion-pipe prints a warning and quits with exit status 0 "
                f"when more than {MAX_RESOLUTIONS} are set (each one repeats the whole dataset)",
                f"keep at most {MAX_RESOLUTIONS} resolutions, or launch with --i_know_what_i_am_doing",
            )
        )
    repeats, rep_from = _effective(cfg, d, "num_repeats")
    if isinstance(repeats, float | int) and repeats <= 0:
        out.append(
            DatasetRule(
                f"{where}.num_repeats" if rep_from == "dir" else "num_repeats",
                "error",
                f"num_repeats = {repeats}: diffusion-pipe raises ValueError('num_repeats must be >0')",
                "use a number greater than 0 (fractions such as 0.5 are allowed)",
            )
        )
    frames, fr_from = _effective(cfg, d, "frame_buckets")
    if isinstance(frames, list) and any(f < 1 for f in frames):
        out.append(
            DatasetRule(
                f"{where}.frame_buckets" if fr_from == "dir" else "frame_buckets",
                "error",
                "frame_buckets must be positive frame counts",
                "remove zero or negative entries (1 is always added for images)",
            )
        )
    return out


def _rules_ar(cfg: DatasetConfig, i: int, d: DirectoryConfig) -> list[DatasetRule]:
    out: list[DatasetRule] = []
    enabled, _ = _effective(cfg, d, "enable_ar_bucket")
    if not enabled:
        return out
    ars, ars_from = _effective(cfg, d, "ar_buckets")
    if ars:
        for j, ar in enumerate(ars if isinstance(ars, list) else []):
            ratio = ar[0] / ar[1] if isinstance(ar, tuple) and ar[1] else ar
            if not isinstance(ratio, float | int) or ratio <= 0:
                key = f"directory.{i}.ar_buckets.{j}" if ars_from == "dir" else f"ar_buckets.{j}"
                out.append(DatasetRule(key, "error", f"aspect ratio {ar!r} is not positive", "use w/h > 0"))
        return out
    for name in ("min_ar", "max_ar", "num_ar_buckets"):
        if getattr(cfg, name) is None:
            out.append(
                DatasetRule(
                    name,
                    "error",
                    f"'{name}' is missing at dataset level; with enable_ar_bucket and no ar_buckets, "
                    f"diffusion-pipe reads it there and fails with KeyError: '{name}'",
                    "set min_ar, max_ar and num_ar_buckets at the top of the dataset file, or use ar_buckets",
                )
            )
    for name in ("min_ar", "max_ar"):
        value, src = _effective(cfg, d, name)
        if isinstance(value, float | int) and value <= 0:
            key = f"directory.{i}.{name}" if src == "dir" else name
            out.append(
                DatasetRule(key, "error", f"{name} = {value} must be > 0 (log spacing)", "use e.g. 0.5")
            )
    num, src = _effective(cfg, d, "num_ar_buckets")
    if isinstance(num, int) and num < 1:
        key = f"directory.{i}.num_ar_buckets" if src == "dir" else "num_ar_buckets"
        out.append(DatasetRule(key, "error", f"num_ar_buckets = {num} must be at least 1", "use e.g. 7"))
    return out


def _rules_size_buckets(buckets: list[SizeBucket], key: str) -> list[DatasetRule]:
    out: list[DatasetRule] = []
    for j, (w, h, f) in enumerate(buckets):
        if w <= 0 or h <= 0 or f < 1:
            out.append(DatasetRule(f"{key}.{j}", "error", f"size bucket {[w, h, f]} must be positive", None))
    if out:
        return out
    # diffusion-pipe sorts size_buckets by frames (descending) but dedups/sorts their ARs separately, then
    # indexes the sorted bucket list with positions in the AR list. Unless both orders agree, items land in
    # a bucket other than the nearest-AR one (or are skipped as "too short").
    ordered = sorted(buckets, key=lambda t: t[-1], reverse=True)
    ars = [round(w / h, 3) for w, h, _ in ordered]
    if ars != sorted(set(ars)):
        out.append(
            DatasetRule(
                key,
                "warning",
                "diffusion-pipe pairs size buckets (sorted by frames, longest first) with their sorted "
                "unique aspect ratios by position; with this list the two orders differ, so items can land "
                "in a bucket other than the nearest-AR one or be skipped as too short",
                "list size_buckets so that, longest frames first, aspect ratios w/h strictly increase "
                "(one bucket per AR); run `dpipe-tui validate` to see where items land",
            )
        )
    return out


def resolution_side(res: Resolution) -> float:
    """The side length diffusion-pipe uses for a ``resolutions`` entry (``sqrt(w*h)`` for pairs)."""
    return math.sqrt(res[0] * res[1]) if isinstance(res, tuple) else float(res)


def aspect_ratio(ar: AspectRatio) -> float:
    """The w/h ratio diffusion-pipe uses for an ``ar_buckets`` entry."""
    return ar[0] / ar[1] if isinstance(ar, tuple) else float(ar)
