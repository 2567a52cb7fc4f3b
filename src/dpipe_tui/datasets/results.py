"""Typed, frozen results of a dataset scan (what the CLI, the TUI and the step planner consume).

Why frozen dataclasses rather than pydantic: these are produced by our own code, never parsed from
user input, and are passed between threads in the TUI; immutability makes that safe for free.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.datasets.buckets import BucketKey
    from dpipe_tui.datasets.traits import ModelTraits

DropReason = Literal[
    "missing_caption",  # skip_empty_caption (default) and no caption found
    "unreadable",  # "Media file X could not be opened. Skipping."
    "too_short",  # video shorter than every frame bucket
    "no_video_support",  # the model has no framerate: diffusion-pipe fails to open videos and skips them
    "unknown_frames",  # our header probe could not count the frames (not a diffusion-pipe drop)
    "missing_control",  # fatal in diffusion-pipe: RuntimeError('No control file exists for image X')
    "mask_size",  # fatal in diffusion-pipe at caching: mask size differs from the image size
    "webp_animation",  # fatal in diffusion-pipe: NotImplementedError('WebP videos are not supported.')
    "bad_caption_entry",  # fatal in diffusion-pipe: captions.json entry is not a list
]

FATAL_REASONS: frozenset[str] = frozenset(
    {"missing_control", "mask_size", "webp_animation", "bad_caption_entry"}
)
"""Item problems that make diffusion-pipe crash rather than skip the item."""


@dataclass(frozen=True)
class ScanError:
    """A problem that stops diffusion-pipe, with the dataset TOML key it is about."""

    key: tuple[str | int, ...]
    """Key path in the dataset TOML, e.g. ``("directory", 0, "path")``; ``()`` for the whole file."""
    code: str
    """Stable code: ``dataset-path`` (a folder/file that is not there), ``dataset-no-media``,
    ``dataset-settings`` (a key diffusion-pipe cannot use), ``dataset-scan`` (anything else)."""
    message: str


@dataclass(frozen=True)
class ItemIssue:
    """A media item that will not train (or will crash the run), and why."""

    directory: int
    name: str
    """File name, or ``archive.tar:member``."""
    reason: DropReason
    detail: str = ""

    @property
    def fatal(self) -> bool:
        """True when diffusion-pipe raises instead of skipping the item."""
        return self.reason in FATAL_REASONS


@dataclass(frozen=True)
class Contribution:
    """Caption entries one directory puts into one size bucket (one diffusion-pipe SizeBucketDataset)."""

    key: BucketKey
    entries: int
    """Items x captions per item x caption variants, before num_repeats."""
    num_repeats: float

    @property
    def repeated(self) -> int:
        """``int(entries * num_repeats)``: the dataset length diffusion-pipe uses (fractions truncate)."""
        return int(self.entries * self.num_repeats)


@dataclass(frozen=True)
class CaptionCounts:
    """How the items of a directory got their captions."""

    txt: int = 0
    """From a ``<stem>.txt`` sibling with text."""
    json: int = 0
    """From ``captions.json`` (possibly several captions per item)."""
    empty: int = 0
    """Caption found but empty (trains with an empty caption; diffusion-pipe does not skip these)."""
    missing: int = 0
    """No caption at all (skipped unless ``skip_empty_caption = false``)."""


@dataclass(frozen=True)
class MaskCounts:
    """Mask matching in a directory with ``mask_path`` or ``default_mask_file``."""

    matched: int = 0
    default: int = 0
    missing: int = 0


@dataclass(frozen=True)
class DirectoryScan:
    """Everything the scan learnt about one ``[[directory]]``."""

    index: int
    path: Path
    files: int = 0
    """Regular files in the folder (subfolders are ignored, as diffusion-pipe does)."""
    ignored_files: int = 0
    """Files skipped by suffix (.txt .npz .json .parquet .bak .db)."""
    images: int = 0
    videos: int = 0
    tar_members: int = 0
    items_kept: int = 0
    """Media items that land in a bucket."""
    captions: CaptionCounts = field(default_factory=CaptionCounts)
    masks: MaskCounts = field(default_factory=MaskCounts)
    controls_matched: int = 0
    has_captions_json: bool = False
    num_repeats: float = 1.0
    contributions: tuple[Contribution, ...] = ()
    issues: tuple[ItemIssue, ...] = ()
    errors: tuple[str, ...] = ()
    """Problems that stop diffusion-pipe for this directory (bad path, no media, ...)."""
    located_errors: tuple[ScanError, ...] = ()
    """The same problems as ``errors``, each with its key and code (for located findings)."""
    warnings: tuple[str, ...] = ()

    def dropped(self, reason: DropReason) -> int:
        """How many items were dropped for ``reason``."""
        return sum(1 for i in self.issues if i.reason == reason)


@dataclass(frozen=True)
class DatasetScan:
    """The result of :func:`dpipe_tui.datasets.scan_dataset`."""

    config_path: Path
    base_dir: Path
    traits: ModelTraits
    directories: tuple[DirectoryScan, ...]
    subsample_ratio: float | None = None
    errors: tuple[str, ...] = ()
    """Dataset-level problems that stop diffusion-pipe (each directory keeps its own)."""
    located_errors: tuple[ScanError, ...] = ()
    """The same problems as ``errors``, each with its key and code."""
    warnings: tuple[str, ...] = ()

    @property
    def items_kept(self) -> int:
        """Media items that land in a bucket, over all directories."""
        return sum(d.items_kept for d in self.directories)

    @property
    def images(self) -> int:
        """Image files (and image tar members), over all directories."""
        return sum(d.images for d in self.directories)

    @property
    def videos(self) -> int:
        """Video files (and video tar members), over all directories."""
        return sum(d.videos for d in self.directories)

    @property
    def issues(self) -> tuple[ItemIssue, ...]:
        """Every dropped or fatal item, over all directories."""
        return tuple(i for d in self.directories for i in d.issues)

    @property
    def all_errors(self) -> tuple[str, ...]:
        """Dataset errors, directory errors and fatal item problems, as messages."""
        out = list(self.errors)
        for d in self.directories:
            out.extend(f"directory {d.index} ({d.path}): {e}" for e in d.errors)
        out.extend(f"{i.name}: {i.detail or i.reason}" for i in self.issues if i.fatal)
        return tuple(out)

    @property
    def ok(self) -> bool:
        """True when nothing would make diffusion-pipe fail on this dataset."""
        return not self.all_errors
