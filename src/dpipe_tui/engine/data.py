"""Dataset enumeration, aspect-ratio bucketing and the per-epoch batch plan (torch-free).

Why its own module: these are diffusion-pipe's rules (spec §3) for what one epoch is, and the
supervisor's progress/ETA depends on them being the same in both engines. The rules followed:

- a ``[[directory]]`` is not recursive; ``.txt .npz .json .parquet .bak .db`` are skipped; a ``.tar``
  contributes its members; captions come from ``captions.json`` when the folder has one (a list per
  file name, each caption an item), else ``<stem>.txt`` (``Path.with_suffix``); a missing caption
  skips the image unless ``skip_empty_caption = false``; ``caption_prefix``, ``shuffle_tags`` /
  ``cache_shuffle_num``; masks from ``mask_path`` by stem, else ``default_mask_file``;
- ``size_buckets`` replaces resolutions and aspect ratios (diffusion-pipe's index pairing);
- resolutions are areas (``[w, h]`` → sqrt(w·h)); AR buckets are ``ar_buckets`` or a geometric
  range ``min_ar..max_ar`` (``num_ar_buckets``), deduplicated to 3 decimals; each image goes to the
  nearest AR in log space; the bucket size is w = sqrt(r²·ar), h = r²/w, rounded to 16;
- per size bucket, items of every directory (× captions × ``num_repeats``) are pooled, shuffled
  with seed 0 and rounded down to a multiple of the global batch size; batches of all buckets are
  interleaved by a seed-0 shuffle. The order is the same every epoch, as in diffusion-pipe.

The arithmetic (3-decimal dedup, numpy's geomspace and rounding, nearest AR in log space, sizes)
comes from ``dpipe_tui.datasets.buckets``, the same code the supervisor plans steps/ETA with. The
file-list shuffle is deterministic but not bit-identical to diffusion-pipe's (which goes through
HF datasets); step counts and bucket contents are identical.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dpipe_tui.datasets import buckets as rules

log = logging.getLogger(__name__)

SKIP_SUFFIXES = frozenset({".txt", ".npz", ".json", ".parquet", ".bak", ".db"})
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
ROUND_TO = 16

Bucket = tuple[float, int, int, int]


@dataclass(frozen=True)
class Sample:
    """One training example: an image at a size bucket with one caption variant (and its mask)."""

    image: str
    bucket: Bucket
    caption: str
    mask: str | None = None


TAR_SEPARATOR = "::"
"""An image inside a ``.tar`` archive is named ``<archive path>::<member name>``."""


@dataclass
class DirectoryScan:
    """What one ``[[directory]]`` contributes."""

    path: Path
    num_repeats: float
    samples_by_bucket: dict[Bucket, list[Sample]] = field(default_factory=dict)
    images: list[tuple[str, int, int]] = field(default_factory=list)  # (file, width, height)


def seed_from_hash(item: object) -> int:
    """diffusion-pipe's seed for a path/bucket: md5 of its string, mod 1e9."""
    return int(hashlib.md5(str(item).encode()).hexdigest(), 16) % int(1e9)


def resolutions_of(values: list[Any]) -> list[float]:
    """Resolution entries as side lengths (``[w, h]`` pairs become sqrt(w·h))."""
    sides = [math.sqrt(v[0] * v[1]) if isinstance(v, list | tuple) else float(v) for v in values]
    return rules.dedup_and_sort(sides)


def ar_buckets_of(dir_cfg: dict[str, Any], ds_cfg: dict[str, Any]) -> list[float]:
    """The aspect-ratio buckets of a directory (spec §3.1)."""

    def get(key: str, default: Any = None) -> Any:
        return dir_cfg.get(key, ds_cfg.get(key, default))

    if not get("enable_ar_bucket", False):
        return [1.0]
    if ars := get("ar_buckets"):
        return rules.dedup_and_sort([a[0] / a[1] if isinstance(a, list | tuple) else a for a in ars])
    lo, hi, n = float(get("min_ar")), float(get("max_ar")), int(get("num_ar_buckets"))
    return rules.dedup_and_sort(rules.geomspace(lo, hi, n), numpy_values=True)


def size_bucket(ar: float, resolution: float) -> Bucket:
    """The (ar, w, h, frames) bucket of an AR at a resolution."""
    return (ar, *rules.size_for(resolution, ar, ROUND_TO), 1)


def fixed_size_bucket(size: tuple[int, int, int]) -> Bucket:
    """The (ar, w, h, frames) bucket of a ``size_buckets`` entry (sides rounded to 16, as the model's)."""
    w, h = rules.round_to_multiple(size[0], ROUND_TO), rules.round_to_multiple(size[1], ROUND_TO)
    return (size[0] / size[1], w, h, 1)


def _captions(texts: list[str], count: int, delimiter: str, prefix: str, seed: int) -> list[str]:
    """diffusion-pipe's shuffle_captions: ``count`` tag-shuffled variants of each caption (0: as is)."""
    if count == 0:
        return [prefix + t for t in texts]
    rng = random.Random(seed)
    out = []
    for text in texts:
        for _ in range(count):
            tags = text.split(delimiter)
            rng.shuffle(tags)
            out.append(prefix + delimiter.join(tags))
    return out


def open_image(image: str) -> Any:
    """A PIL image of a file, or of a ``.tar`` member (:data:`TAR_SEPARATOR`); the caller closes it."""
    import io
    import tarfile

    from PIL import Image

    if TAR_SEPARATOR not in image:
        return Image.open(image)
    archive, member = image.split(TAR_SEPARATOR, 1)
    with tarfile.TarFile(archive) as tar:
        handle = tar.extractfile(member)
        if handle is None:
            raise OSError(f"{member} is not a file in {archive}")
        data = handle.read()
    return Image.open(io.BytesIO(data))


def _image_size(image: str) -> tuple[int, int] | None:
    try:
        with open_image(image) as img:
            width, height = img.size
            return int(width), int(height)
    except Exception as exc:  # any unreadable media is skipped, as in diffusion-pipe
        log.warning("Media file %s could not be opened. Skipping. The exception was: %s", image, exc)
        return None


def _mask_size(mask: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(mask) as img:
        width, height = img.size
        return int(width), int(height)


def _specs(path: Path, files: list[Path]) -> list[tuple[str, str]]:
    """(image, name for captions.json) of each file; a ``.tar`` gives each of its members."""
    import tarfile

    out = []
    for file in files:
        if file.suffix != ".tar":
            out.append((str(file), file.name))
            continue
        with tarfile.TarFile(file) as tar:  # plain tar, as diffusion-pipe opens it
            out += [(f"{file}{TAR_SEPARATOR}{name}", name) for name in tar.getnames()]
    return out


def _folder_option(dir_cfg: dict[str, Any], key: str, *, folder: bool) -> Path | None:
    if key not in dir_cfg:
        return None
    value = Path(dir_cfg[key])
    if not (value.is_dir() if folder else value.is_file()):
        raise RuntimeError(f"Invalid {key}: {value}")
    return value


def scan_directory(dir_cfg: dict[str, Any], ds_cfg: dict[str, Any]) -> DirectoryScan:
    """Enumerate a directory's images (and ``.tar`` members), captions, masks and size buckets.

    Captions come from ``captions.json`` when the folder has one (a list per file name: each caption
    is an item), else from ``<stem>.txt``; masks from ``mask_path`` by stem, else
    ``default_mask_file``; ``size_buckets`` replaces resolutions and aspect ratios.

    Raises:
        RuntimeError: the folder (or mask_path / default_mask_file) does not exist, or it holds no
            images (diffusion-pipe's messages).
        ValueError: a mask is not the size of its image (diffusion-pipe's message, raised at caching).
    """

    def get(key: str, default: Any = None) -> Any:
        return dir_cfg.get(key, ds_cfg.get(key, default))

    path = Path(dir_cfg["path"])
    if not path.is_dir():
        raise RuntimeError(f"Invalid path: {path}")
    mask_path = _folder_option(dir_cfg, "mask_path", folder=True)
    default_mask = _folder_option(dir_cfg, "default_mask_file", folder=False)
    if "control_path" in dir_cfg:
        log.warning("control_path is not supported by the built-in engine; %s trains without it", path)
    masks = {p.stem: str(p) for p in mask_path.iterdir() if p.is_file()} if mask_path else {}
    fixed = get("size_buckets")
    index = rules.SizeBucketIndex.build([tuple(b) for b in fixed]) if fixed else None
    resolutions = [] if index else resolutions_of(get("resolutions", [512]))
    ars = [] if index else ar_buckets_of(dir_cfg, ds_cfg)
    shuffle_num = int(get("cache_shuffle_num", 0)) or (1 if get("shuffle_tags", False) else 0)
    delimiter, prefix = get("cache_shuffle_delimiter", ", "), get("caption_prefix", "")
    num_repeats = float(get("num_repeats", 1))
    if num_repeats <= 0:
        raise ValueError(f"num_repeats must be >0, was {num_repeats}")
    captions_json: dict[str, Any] | None = None
    if (path / "captions.json").is_file():
        captions_json = json.loads((path / "captions.json").read_text(encoding="utf-8"))
    elif get("online_captions", False):
        raise RuntimeError(f"online_captions: {path} has no captions.json")
    scan = DirectoryScan(path=path, num_repeats=num_repeats)
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix not in SKIP_SUFFIXES)
    specs = _specs(path, files)
    if get("shuffle_metadata", True):
        random.Random(seed_from_hash(path)).shuffle(specs)
    variants: dict[Bucket, list[list[Sample]]] = {}
    mask_sizes: dict[str, tuple[int, int]] = {}
    for image, name in specs:
        texts: list[str] | None = None
        if captions_json is not None:
            entry = captions_json.get(name)
            if entry is None:
                log.warning("Image file %s does not have an entry in captions.json", name)
            else:
                texts = [str(c) for c in entry]
        elif TAR_SEPARATOR not in image and Path(image).with_suffix(".txt").is_file():
            texts = [Path(image).with_suffix(".txt").read_text(encoding="utf-8").strip()]
        if texts is None:
            if get("skip_empty_caption", True):
                log.warning("Cound not find caption for %s. Skipping image.", image)
                continue
            log.warning("Cound not find caption for %s. Using empty caption.", image)
            texts = [""]
        size = _image_size(image)
        if size is None:
            continue
        mask = masks.get(Path(name).stem) or (str(default_mask) if default_mask else None)
        if mask is None and mask_path is not None:
            log.warning("No mask file was found for image %s, not using mask.", image)
        if mask is not None:
            mask_sizes.setdefault(mask, _mask_size(mask))
            if mask_sizes[mask] != size:
                raise ValueError(
                    f"Mask shape {mask_sizes[mask][::-1]} was not the same as image shape {size[::-1]}.\n"
                    f"Image path: {image}\nMask path: {mask}"
                )
        scan.images.append((image, *size))
        log_ar = math.log(size[0] / size[1])
        if index is not None:
            found = index.find(log_ar, 1)
            buckets = [] if found is None else [fixed_size_bucket(found)]
        else:
            ar = ars[rules.nearest_index(log_ar, [math.log(a) for a in ars])]
            buckets = [size_bucket(ar, res) for res in resolutions]
        captions = _captions(texts, shuffle_num, delimiter, prefix, seed_from_hash(image))
        for bucket in buckets:
            lists = variants.setdefault(bucket, [])
            for i, caption in enumerate(captions):
                if i == len(lists):
                    lists.append([])
                lists[i].append(Sample(image, bucket, caption, mask))
    if not scan.images:
        raise RuntimeError(f"Directory {path} had no images/videos!")
    for bucket, lists in variants.items():
        scan.samples_by_bucket[bucket] = [s for lst in lists for s in lst]
    return scan


def bucket_batch_size(per_gpu: int | list[list[int]], bucket: Bucket) -> int:
    """Micro-batch size for a bucket (the list form picks the nearest resolution)."""
    if isinstance(per_gpu, int):
        return per_gpu
    side = math.sqrt(bucket[1] * bucket[2])
    return min(per_gpu, key=lambda pair: abs(pair[0] - side))[1]


@dataclass
class EpochPlan:
    """The fixed order of global batches of one epoch, and how to cut them per rank."""

    batches: list[list[Sample]]
    per_rank: list[int]  # micro-batch size × GAS of each batch's bucket
    dropped: list[Bucket]

    def rank_slice(self, index: int, dp_rank: int) -> list[Sample]:
        """The samples of batch ``index`` that data-parallel rank ``dp_rank`` trains on."""
        n = self.per_rank[index]
        return self.batches[index][dp_rank * n : (dp_rank + 1) * n]

    def __len__(self) -> int:
        return len(self.batches)


def plan_epoch(
    scans: list[DirectoryScan],
    micro_batch_size: int | list[list[int]],
    gas: int,
    dp_world: int,
    subsample_ratio: float | None = None,
) -> EpochPlan:
    """Pool directories per size bucket, round down, and interleave buckets (spec §3.3); a dataset's
    ``subsample_ratio`` keeps the first fraction of the interleaved batches (0 or unset: all)."""
    pooled: dict[Bucket, list[tuple[int, list[Sample]]]] = {}
    for d, scan in enumerate(scans):
        for bucket, samples in scan.samples_by_bucket.items():
            rng = random.Random(seed_from_hash(bucket))
            order = samples[:]
            rng.shuffle(order)
            n = int(len(order) * scan.num_repeats)
            pooled.setdefault(bucket, []).append((d, [order[i % len(order)] for i in range(n)]))
    bucket_batches: list[list[list[Sample]]] = []
    per_rank_sizes: list[int] = []
    dropped: list[Bucket] = []
    for bucket in sorted(pooled):
        parts = pooled[bucket]
        which = [i for i, (_, lst) in enumerate(parts) for _ in lst]
        random.Random(0).shuffle(which)
        cursor = [0] * len(parts)
        merged = []
        for i in which:
            merged.append(parts[i][1][cursor[i]])
            cursor[i] += 1
        rank_bs = bucket_batch_size(micro_batch_size, bucket) * gas
        global_bs = rank_bs * dp_world
        usable = (len(merged) // global_bs) * global_bs
        if usable == 0:
            log.warning(
                "size bucket %s is being completely dropped because it doesn't have enough images", bucket
            )
            dropped.append(bucket)
        bucket_batches.append([merged[i : i + global_bs] for i in range(0, usable, global_bs)])
        per_rank_sizes.append(rank_bs)
    schedule: list[tuple[int, int]] = [
        (b, j) for b, lst in enumerate(bucket_batches) for j in range(len(lst))
    ]
    random.Random(0).shuffle(schedule)
    cursors = [0] * len(bucket_batches)
    batches: list[list[Sample]] = []
    sizes: list[int] = []
    for b, _ in schedule:
        batches.append(bucket_batches[b][cursors[b]])
        sizes.append(per_rank_sizes[b])
        cursors[b] += 1
    if subsample_ratio:  # diffusion-pipe: `if subsample_ratio := ...`, so 0 means off
        keep = int(len(batches) * subsample_ratio)
        batches, sizes = batches[:keep], sizes[:keep]
    return EpochPlan(batches=batches, per_rank=sizes, dropped=dropped)


def all_samples(scans: list[DirectoryScan]) -> list[Sample]:
    """Every distinct (image, bucket, caption) of the scans, for caching."""
    seen: dict[Sample, None] = {}
    for scan in scans:
        for samples in scan.samples_by_bucket.values():
            seen.update(dict.fromkeys(samples))
    return list(seen)
