"""The pre-flight scan: what diffusion-pipe will find in each ``[[directory]]``, without running it.

Why: diffusion-pipe discovers missing captions, unreadable files, missing control images and too-short
videos only after loading multi-GB models, often as a crash or a warning buried in the log. This scan
walks the same files with the same rules (utils/dataset.py ``_get_ungrouped_metadata`` and
``_metadata_map_fn``), reading media headers only, and records per item what will train, what will be
skipped and what will crash, plus the caption entries each directory adds to each size bucket.

Per item, the checks run in diffusion-pipe's order so that an item is reported for the reason
diffusion-pipe would act on first: control file (enumeration) → caption → WebP animation → open →
frame bucket → mask size (caching).
"""

from __future__ import annotations

import json
import logging
import math
import os
import tarfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING

from dpipe_tui.datasets.buckets import BucketKey, frame_bucket, nearest_index, size_for
from dpipe_tui.datasets.media import SKIPPED_SUFFIXES, MediaError, MediaInfo, is_video_suffix, probe
from dpipe_tui.datasets.results import (
    CaptionCounts,
    Contribution,
    DatasetScan,
    DirectoryScan,
    DropReason,
    ItemIssue,
    MaskCounts,
    ScanError,
)
from dpipe_tui.datasets.settings import DatasetConfigError, directory_settings, load_dataset_config
from dpipe_tui.datasets.traits import ModelTraits, model_traits

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dpipe_tui.datasets.settings import DirectorySettings
    from dpipe_tui.profiles.dataset_schema import DatasetConfig

log = logging.getLogger(__name__)
CAPTIONS_JSON = "captions.json"


def scan_dataset(
    dataset_config_path: Path | str,
    *,
    base_dir: Path | None = None,
    model_type: str | None = None,
    model_config: Mapping[str, object] | None = None,
    read: Callable[[Path], str] | None = None,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DatasetScan:
    """Scan every directory of a dataset TOML with diffusion-pipe's rules, reading headers only.

    Args:
        dataset_config_path: the dataset TOML.
        base_dir: what relative ``path``/``mask_path``/``control_path`` values resolve against. diffusion-pipe
            resolves them against its working directory (the checkout root, spec §1.4), so pass that for the
            diffusion-pipe engine, or the profile's directory for the builtin engine. Default: the current
            working directory, which is what diffusion-pipe itself would do.
        model_type: ``[model].type``; decides fps and pixel multiples. None = unknown (videos unbucketed).
        model_config: the ``[model]`` table, for models that autodetect variants (Wan).
        read: where the TOML text comes from (a launch's snapshot; the disk by default).
        progress: told (directories done, directories in all) after each directory.
        cancel: asked before each directory; True stops the scan with :class:`ScanCancelled`.

    Returns:
        The scan. Problems in the files are reported in it, never raised.

    Raises:
        DatasetConfigError: the dataset TOML is unreadable or does not match the schema.
    """
    path = Path(dataset_config_path)
    cfg = load_dataset_config(path, read=read)
    traits = model_traits(model_type, model_config)
    return scan_config(
        cfg,
        config_path=path,
        base_dir=base_dir or Path.cwd(),
        traits=traits,
        progress=progress,
        cancel=cancel,
    )


class ScanCancelled(Exception):
    """The scan was cancelled (its ``cancel`` callback said so)."""


Progress = Callable[[int, int], None]
"""Told (done, total) as a scan goes."""


def scan_config(
    cfg: DatasetConfig,
    *,
    config_path: Path,
    base_dir: Path,
    traits: ModelTraits,
    progress: Progress | None = None,
    cancel: Callable[[], bool] | None = None,
) -> DatasetScan:
    """Scan an already validated dataset config (see :func:`scan_dataset`)."""
    errors: list[ScanError] = []
    warnings: list[str] = []
    if not cfg.directory:
        errors.append(ScanError(("directory",), "dataset-settings", "the dataset has no [[directory]] table"))
    if not traits.known:
        warnings.append(
            "model type unknown: bucket sizes use a 16 px multiple and video frame counts cannot be "
            "converted to the model's fps"
        )
    dirs: list[DirectoryScan] = []
    for i in range(len(cfg.directory)):
        if cancel is not None and cancel():
            raise ScanCancelled(
                f"scan of {config_path} cancelled after {i} of {len(cfg.directory)} directories"
            )
        if progress is not None:
            progress(i, len(cfg.directory))
        try:
            settings = directory_settings(cfg, i, base_dir)
        except DatasetConfigError as e:
            errors.append(ScanError(("directory", i), "dataset-settings", f"directory {i}: {e}"))
            continue
        dirs.append(_DirectoryScanner(settings, traits).run())
    if progress is not None:
        progress(len(cfg.directory), len(cfg.directory))
    return DatasetScan(
        config_path=config_path,
        base_dir=base_dir,
        traits=traits,
        directories=tuple(dirs),
        subsample_ratio=cfg.subsample_ratio,
        errors=tuple(e.message for e in errors),
        located_errors=tuple(errors),
        warnings=tuple(warnings),
    )


@dataclass
class _DirectoryScanner:
    s: DirectorySettings
    traits: ModelTraits
    counts: Counter[str] = field(default_factory=Counter)
    groups: Counter[tuple[float, int] | tuple[int, int, int]] = field(default_factory=Counter)
    issues: list[ItemIssue] = field(default_factory=list)
    errors: list[ScanError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    mask_sizes: dict[Path, tuple[int, int] | None] = field(default_factory=dict)
    captions_json: dict[str, object] | None = None

    def run(self) -> DirectoryScan:
        s = self.s
        if not s.path.is_dir():
            what = "is not a folder" if s.path.exists() else "does not exist"
            self._error("path", "dataset-path", f"Invalid path: {s.path} {what} (diffusion-pipe stops here)")
            return self._result()
        masks = self._stems(s.mask_path, "mask_path")
        controls = self._stems(s.control_path, "control_path")
        if s.default_mask_file is not None and not s.default_mask_file.is_file():
            self._error(
                "default_mask_file", "dataset-path", f"Invalid default_mask_file: {s.default_mask_file}"
            )
        names = self._list_dir()
        self._load_captions_json(names)
        specs: list[tuple[Path | None, str]] = []
        for name in sorted(names):
            full = s.path / name
            if not names[name] or PurePosixPath(name).suffix in SKIPPED_SUFFIXES:
                self.counts["ignored"] += int(names[name])
                continue
            if PurePosixPath(name).suffix == ".tar":
                specs.extend(self._tar_members(full))
            else:
                specs.append((None, name))
        if not specs:
            self._error("path", "dataset-no-media", f"Directory {s.path} had no images/videos!")
        tars: dict[Path, tarfile.TarFile] = {}
        try:
            for tar_path, name in specs:
                self._item(tar_path, name, names, masks, controls, tars)
        finally:
            for t in tars.values():
                t.close()
        return self._result()

    def _list_dir(self) -> dict[str, bool]:
        """Entry name -> is a regular file (following symlinks), like ``Path.glob('*')`` + ``is_file``."""
        out: dict[str, bool] = {}
        with os.scandir(self.s.path) as it:
            for entry in it:
                try:
                    out[entry.name] = entry.is_file()
                except OSError:
                    out[entry.name] = False
        self.counts["files"] = sum(out.values())
        return out

    def _stems(self, folder: Path | None, key: str) -> dict[str, Path]:
        if folder is None:
            return {}
        if not folder.is_dir():
            self._error(key, "dataset-path", f"Invalid {key}: {folder}")
            return {}
        return {p.stem: p for p in folder.iterdir() if p.is_file()}

    def _load_captions_json(self, names: dict[str, bool]) -> None:
        if CAPTIONS_JSON not in names:
            if self.s.online_captions:
                self._error(
                    "path", "dataset-scan", "online_captions = true needs a captions.json in the directory"
                )
            return
        try:
            data = json.loads((self.s.path / CAPTIONS_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            self._error("path", "dataset-scan", f"captions.json cannot be read: {e}")
            data = {}
        if not isinstance(data, dict):
            self._error("path", "dataset-scan", "captions.json must map file names to lists of captions")
            data = {}
        self.captions_json = data

    def _tar_members(self, path: Path) -> list[tuple[Path | None, str]]:
        try:
            with tarfile.TarFile(path) as t:  # plain tar only, as diffusion-pipe opens it
                members = t.getnames()
        except (OSError, tarfile.TarError) as e:
            self._error("path", "dataset-scan", f"{path.name}: cannot be read as a tar file ({e})")
            return []
        self.counts["tar_members"] += len(members)
        if self.captions_json is None and members:
            self.warnings.append(f"{path.name}: tar members need captions from captions.json")
        return [(path, m) for m in members]

    def _item(
        self,
        tar_path: Path | None,
        name: str,
        names: dict[str, bool],
        masks: dict[str, Path],
        controls: dict[str, Path],
        tars: dict[Path, tarfile.TarFile],
    ) -> None:
        label = f"{tar_path.name}:{name}" if tar_path else name
        stem = PurePosixPath(name).stem
        suffix = PurePosixPath(name).suffix
        self.counts["video" if is_video_suffix(suffix) else "image"] += 1
        if self.s.control_path is not None:
            if stem in controls:
                self.counts["controls"] += 1
            else:
                self._drop(label, "missing_control", f"No control file exists for image {label}")
                return
        mask = self._mask_for(stem, masks)
        entries = self._caption_entries(tar_path, name, names, label)
        if entries is None:
            return
        info = self._probe(tar_path, name, label, tars)
        if info is None:
            return
        if info.n_frames_image > 1:
            self._drop(label, "webp_animation", "WebP videos are not supported (NotImplementedError)")
            return
        frames = self._model_frames(info, label)
        if frames is None or info.width is None or info.height is None:
            return
        key = self._bucket(math.log(info.width / info.height), frames, label)
        if key is None:
            return
        if mask is not None and not self._mask_fits(mask, info, label):
            return
        self.counts["kept"] += 1
        self.groups[key] += entries * self.s.captions_multiplier

    def _caption_entries(
        self, tar_path: Path | None, name: str, names: dict[str, bool], label: str
    ) -> int | None:
        """Number of captions of the item, or None when it is dropped for its caption."""
        if self.captions_json is not None:
            key = name if tar_path else name.split("/")[-1]
            caps = self.captions_json.get(key)
            if caps is not None:
                if not isinstance(caps, list):
                    self._drop(label, "bad_caption_entry", "captions.json entries must be lists of captions")
                    return None
                empty = not caps or all(not str(c).strip() for c in caps)
                self.counts["empty" if empty else "json"] += 1
                return len(caps)
        elif tar_path is None and (txt := str(PurePosixPath(name).with_suffix(".txt"))) in names:
            try:
                text = (self.s.path / txt).read_text(encoding="utf-8", errors="replace").strip()
            except OSError:
                text = ""
            self.counts["txt" if text else "empty"] += 1
            return 1
        self.counts["missing"] += 1
        if self.s.skip_empty_caption:
            self._drop(label, "missing_caption", f"Cound not find caption for {label}. Skipping image.")
            return None
        return 1

    def _probe(
        self, tar_path: Path | None, name: str, label: str, tars: dict[Path, tarfile.TarFile]
    ) -> MediaInfo | None:
        fp: IO[bytes] | Path | None
        try:
            if tar_path is None:
                return probe(name, self.s.path / name)
            if tar_path not in tars:
                tars[tar_path] = tarfile.TarFile(tar_path)
            fp = tars[tar_path].extractfile(name)
            if fp is None:
                raise MediaError("not a regular file in the archive")
            with fp:
                return probe(name, fp)
        except (MediaError, OSError, tarfile.TarError, KeyError) as e:
            self._drop(label, "unreadable", f"Media file {label} could not be opened: {e}")
            return None

    def _model_frames(self, info: MediaInfo, label: str) -> int | None:
        if info.kind == "image":
            return 1
        if self.traits.known and self.traits.framerate is None:
            self._drop(label, "no_video_support", f"{self.traits.model_type} does not train on video")
            return None
        if info.frames is None or info.fps is None or self.traits.framerate is None:
            self._drop(label, "unknown_frames", "frame count or model fps unknown; not bucketed")
            return None
        return int(info.frames * self.traits.framerate / info.fps)

    def _bucket(
        self, log_ar: float, frames: int, label: str
    ) -> tuple[float, int] | tuple[int, int, int] | None:
        s = self.s
        key: tuple[float, int] | tuple[int, int, int] | None
        if s.size_index is not None:
            key = s.size_index.find(log_ar, frames)
            if key is not None and key != s.size_index.nearest_ar_bucket(log_ar, frames):
                self.counts["size_quirk"] += 1
        else:
            fb = frame_bucket(frames, list(s.frame_buckets))
            ar = s.ars[nearest_index(log_ar, [math.log(a) for a in s.ars])]
            key = None if fb is None else (ar, fb)
        if key is None:
            self._drop(
                label, "too_short", f"video with frames={frames} is being skipped because it is too short"
            )
        return key

    def _mask_for(self, stem: str, masks: dict[str, Path]) -> Path | None:
        if stem in masks:
            self.counts["mask"] += 1
            return masks[stem]
        if self.s.default_mask_file is not None:
            self.counts["mask_default"] += 1
            return self.s.default_mask_file
        self.counts["mask_missing"] += int(self.s.mask_path is not None)
        return None

    def _mask_fits(self, mask: Path, info: MediaInfo, label: str) -> bool:
        if mask not in self.mask_sizes:
            try:
                m = probe(mask.name, mask)
                self.mask_sizes[mask] = (m.width or 0, m.height or 0)
            except MediaError:
                self.mask_sizes[mask] = None
        size = self.mask_sizes[mask]
        if size is None or size == (info.width, info.height):
            return True
        self._drop(
            label,
            "mask_size",
            f"mask {mask.name} is {size[0]}x{size[1]}, image is {info.width}x{info.height}",
        )
        return False

    def _error(self, key: str, code: str, message: str) -> None:
        self.errors.append(ScanError(("directory", self.s.index, key), code, message))

    def _drop(self, label: str, reason: DropReason, detail: str) -> None:
        self.issues.append(ItemIssue(self.s.index, label, reason, detail))

    def _contributions(self) -> tuple[Contribution, ...]:
        s, out = self.s, []
        for group, entries in sorted(self.groups.items()):
            if s.size_index is not None:
                w, h, f = group  # type: ignore[misc]  # size-bucket mode keys are (w, h, frames)
                out.append(Contribution(BucketKey(int(w), int(h), int(f)), entries, s.num_repeats))
                continue
            ar, f = group  # type: ignore[misc]  # AR mode keys are (ar, frames)
            for res in s.resolutions:  # one SizeBucketDataset per resolution, even if sizes coincide
                w, h = size_for(res, ar, self.traits.pixel_multiple)
                out.append(Contribution(BucketKey(w, h, int(f), ar), entries, s.num_repeats))
        return tuple(out)

    def _result(self) -> DirectoryScan:
        c = self.counts
        if c["size_quirk"]:
            self.warnings.append(
                f"{c['size_quirk']} items go to a size bucket other than the nearest-AR one, because of how "
                "diffusion-pipe pairs size_buckets with their aspect ratios (reorder size_buckets)"
            )
        unknown = sum(1 for i in self.issues if i.reason == "unknown_frames")
        if unknown:
            self.warnings.append(
                f"{unknown} videos have unknown frame counts (header not readable without PyAV); "
                "they are left out of buckets and steps per epoch"
            )
        if c["mask_missing"]:
            self.warnings.append(f"{c['mask_missing']} items have no mask and train unmasked")
        if c["empty"]:
            self.warnings.append(f"{c['empty']} items have an empty caption and train with it")
        return DirectoryScan(
            index=self.s.index,
            path=self.s.path,
            files=c["files"],
            ignored_files=c["ignored"],
            images=c["image"],
            videos=c["video"],
            tar_members=c["tar_members"],
            items_kept=c["kept"],
            captions=CaptionCounts(c["txt"], c["json"], c["empty"], c["missing"]),
            masks=MaskCounts(c["mask"], c["mask_default"], c["mask_missing"]),
            controls_matched=c["controls"],
            has_captions_json=self.captions_json is not None,
            num_repeats=self.s.num_repeats,
            contributions=self._contributions(),
            issues=tuple(self.issues),
            errors=tuple(e.message for e in self.errors),
            located_errors=tuple(self.errors),
            warnings=tuple(self.warnings),
        )
