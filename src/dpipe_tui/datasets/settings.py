"""Effective per-directory settings: the dataset TOML resolved the way diffusion-pipe resolves it.

Why separate from the schema: the schema keeps "unset" distinct from "default" (so the editor can show
inheritance); the scan needs the final values. Each key is ``directory.get(k, dataset.get(k, default))``
with the eager-evaluation quirks noted in :func:`dpipe_tui.profiles.dataset_schema.dataset_rules`, and
the AR list / resolution list built exactly like ``DirectoryDataset.__init__``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from dpipe_tui.datasets.buckets import SizeBucketIndex, dedup_and_sort, geomspace
from dpipe_tui.profiles.dataset_schema import (
    DatasetConfig,
    DirectoryConfig,
    aspect_ratio,
    resolution_side,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping


class DatasetConfigError(Exception):
    """The dataset TOML cannot be read or does not match the schema."""


@dataclass(frozen=True)
class DirectorySettings:
    """The values diffusion-pipe uses for one ``[[directory]]``."""

    index: int
    path: Path
    mask_path: Path | None
    default_mask_file: Path | None
    control_path: Path | None
    resolutions: tuple[float, ...]
    """Sorted unique side lengths (empty in size-bucket mode)."""
    ars: tuple[float, ...]
    """Sorted unique rounded aspect ratios (AR mode)."""
    frame_buckets: tuple[int, ...]
    size_index: SizeBucketIndex | None
    """Set in size-bucket mode."""
    num_repeats: float
    captions_multiplier: int
    """Cached caption variants per caption: ``cache_shuffle_num`` (or 1 via shuffle_tags), else 1."""
    skip_empty_caption: bool
    online_captions: bool


def load_dataset_config(path: Path, *, read: Callable[[Path], str] | None = None) -> DatasetConfig:
    """Parse and validate a dataset TOML (``read``: where its text comes from; the disk by default).

    Raises:
        DatasetConfigError: unreadable file, TOML syntax error or schema mismatch.
    """
    try:
        raw = tomllib.loads(read(path) if read is not None else path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise DatasetConfigError(f"{path}: cannot read: not UTF-8 text ({e.reason})") from e
    except OSError as e:
        raise DatasetConfigError(f"{path}: cannot read: {e.strerror or e}") from e
    except tomllib.TOMLDecodeError as e:
        raise DatasetConfigError(f"{path}: TOML syntax error: {e}") from e
    return dataset_config_from_mapping(raw, source=path)


def dataset_config_from_mapping(raw: Mapping[str, object], *, source: Path | None = None) -> DatasetConfig:
    """Validate an already parsed dataset table (e.g. from a frozen profile)."""
    try:
        return DatasetConfig.model_validate(raw)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise DatasetConfigError(f"{source or 'dataset'}: {where}: {first['msg']}") from e


def _pick(cfg: DatasetConfig, d: DirectoryConfig, name: str, default: object) -> object:
    own = getattr(d, name)
    if own is not None:
        return own
    top = getattr(cfg, name)
    return default if top is None else top


def _resolve(base: Path, value: str | None) -> Path | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def directory_settings(cfg: DatasetConfig, index: int, base_dir: Path) -> DirectorySettings:
    """Resolve one directory's effective settings; relative paths resolve against ``base_dir``.

    Raises:
        DatasetConfigError: a key diffusion-pipe needs is missing (it would raise KeyError).
    """
    d = cfg.directory[index]
    size_buckets = d.size_buckets if d.size_buckets is not None else cfg.size_buckets
    size_index = None
    resolutions: list[float] = []
    ars: list[float] = [1.0]
    if size_buckets is not None:
        size_index = SizeBucketIndex.build(list(size_buckets))
        ars = []
    else:
        if cfg.resolutions is None:
            raise DatasetConfigError("'resolutions' is missing at dataset level (KeyError in diffusion-pipe)")
        raw_res = d.resolutions if d.resolutions is not None else cfg.resolutions
        resolutions = dedup_and_sort([resolution_side(r) for r in raw_res])
        if _pick(cfg, d, "enable_ar_bucket", False):
            ars = _ar_list(cfg, d)
    frames = [int(f) for f in _as_list(_pick(cfg, d, "frame_buckets", [1]))]
    if 1 not in frames:
        frames.append(1)
    repeats = _num(_pick(cfg, d, "num_repeats", 1))
    if repeats <= 0:
        raise DatasetConfigError(f"num_repeats must be >0, was {repeats:g} (ValueError in diffusion-pipe)")
    shuffle = int(_num(_pick(cfg, d, "cache_shuffle_num", 0)))
    if shuffle == 0 and _pick(cfg, d, "shuffle_tags", False):
        shuffle = 1
    return DirectorySettings(
        index=index,
        path=_resolve(base_dir, d.path) or base_dir,
        mask_path=_resolve(base_dir, d.mask_path),
        default_mask_file=_resolve(base_dir, d.default_mask_file),
        control_path=_resolve(base_dir, d.control_path),
        resolutions=tuple(resolutions),
        ars=tuple(ars),
        frame_buckets=tuple(sorted(frames)),
        size_index=size_index,
        num_repeats=repeats,
        captions_multiplier=max(shuffle, 1),
        skip_empty_caption=bool(_pick(cfg, d, "skip_empty_caption", True)),
        online_captions=bool(_pick(cfg, d, "online_captions", False)),
    )


def _ar_list(cfg: DatasetConfig, d: DirectoryConfig) -> list[float]:
    explicit = d.ar_buckets if d.ar_buckets is not None else cfg.ar_buckets
    if explicit:
        return dedup_and_sort([aspect_ratio(a) for a in explicit])
    for name in ("min_ar", "max_ar", "num_ar_buckets"):
        if getattr(cfg, name) is None:
            raise DatasetConfigError(f"'{name}' is missing at dataset level (KeyError in diffusion-pipe)")
    lo = _num(_pick(cfg, d, "min_ar", 0))
    hi = _num(_pick(cfg, d, "max_ar", 0))
    num = int(_num(_pick(cfg, d, "num_ar_buckets", 0)))
    if lo <= 0 or hi <= 0 or num < 1:
        raise DatasetConfigError("min_ar/max_ar must be > 0 and num_ar_buckets >= 1")
    return dedup_and_sort(geomspace(lo, hi, num), numpy_values=True)


def _num(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DatasetConfigError(f"expected a number, got {value!r}")
    return float(value)


def _as_list(value: object) -> list[int]:
    if not isinstance(value, list):
        raise DatasetConfigError(f"expected a list, got {value!r}")
    return value
