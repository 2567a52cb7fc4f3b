"""Steps per epoch from a scan: diffusion-pipe's pooling, batch rounding and drops (spec §1.5, §3.3).

Why: diffusion-pipe never prints the epoch length, yet progress bars, ETAs and "will this run even
start" all need it. The arithmetic mirrors ``Dataset.post_init`` and ``ConcatenatedBatchedDataset``:
identical size buckets from all directories are pooled; each directory's part is
``int(entries * num_repeats)``; a bucket is cut down to a multiple of its global batch size
``bs * GAS * D`` (bs from the micro-batch list entry closest to sqrt(w*h); the image micro batch for
frames == 1); one step consumes one global batch; ``subsample_ratio`` keeps the first fraction.
"""

from __future__ import annotations

import tomllib
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dpipe_tui.datasets.scan import scan_dataset

if TYPE_CHECKING:
    from collections.abc import Mapping

    from dpipe_tui.datasets.buckets import BucketKey
    from dpipe_tui.datasets.results import DatasetScan

MicroBatch = int | Sequence[Sequence[float]]
"""``micro_batch_size_per_gpu``: an int, or ``[[resolution, bs], ...]`` pairs."""

EMPTY_MESSAGE = (
    "Processed dataset was empty. Probably caused by rounding down for each size bucket.\n"
    "Try decreasing the global batch size, or increasing num_repeats."
)
"""diffusion-pipe's RuntimeError text for an empty epoch (without its config dump)."""


class PlanError(ValueError):
    """The parallelism settings are impossible (e.g. world size not divisible by pipeline stages)."""


@dataclass(frozen=True)
class PlannedBucket:
    """One pooled size bucket and what survives batch rounding."""

    key: BucketKey
    items: int
    """Caption entries over all directories after num_repeats."""
    items_after_rounding: int
    batch: int
    """Global batch size of this bucket: micro batch x GAS x D."""
    micro_batch: int
    train_width: int
    """Width of the tensors actually trained (after the preprocessing step's own rounding)."""
    train_height: int
    train_frames: int

    @property
    def ar(self) -> float | None:
        """Bucket aspect ratio (None in size-bucket mode)."""
        return self.key.ar

    @property
    def w(self) -> int:
        """Bucket width as diffusion-pipe keys it."""
        return self.key.width

    @property
    def h(self) -> int:
        """Bucket height as diffusion-pipe keys it."""
        return self.key.height

    @property
    def frames(self) -> int:
        """Bucket frame count."""
        return self.key.frames

    @property
    def steps(self) -> int:
        """Steps (global batches) this bucket contributes per epoch."""
        return self.items_after_rounding // self.batch


@dataclass(frozen=True)
class Dropped:
    """Items that will not train, grouped by reason (and by bucket for rounding)."""

    items: int
    reason: str
    bucket: BucketKey | None = None
    whole_bucket: bool = False


@dataclass(frozen=True)
class StepPlan:
    """Result of :func:`plan_steps`."""

    global_batch_size: int
    """As diffusion-pipe prints it: first micro-batch value x GAS x D."""
    data_parallel: int
    """D = world_size / pipeline_stages."""
    steps_per_epoch: int
    total_steps: int
    """epochs x steps_per_epoch, capped by max_steps."""
    epochs: int
    max_steps: int | None
    buckets: tuple[PlannedBucket, ...]
    dropped: tuple[Dropped, ...]
    empty: bool
    message: str | None
    """diffusion-pipe's error text when the epoch is empty."""
    scan: DatasetScan


def _bs_table(value: MicroBatch) -> dict[float | None, int]:
    if isinstance(value, bool) or not isinstance(value, int | list | tuple):
        raise PlanError(f"micro batch size must be an int or [[resolution, bs], ...], got {value!r}")
    if isinstance(value, int):
        return {None: value}
    table: dict[float | None, int] = {}
    for pair in value:
        if len(pair) != 2:
            raise PlanError(f"micro batch list entries must be [resolution, bs] pairs, got {pair!r}")
        table[float(pair[0])] = int(pair[1])
    if not table:
        raise PlanError("micro batch size list is empty")
    return table


def _bs_for(table: dict[float | None, int], side: float) -> int:
    if None in table:
        return table[None]
    best, best_d = next(iter(table.values())), float("inf")
    for size, bs in table.items():  # first of equal distances wins, as in diffusion-pipe
        d = abs((size or 0.0) - side)
        if d < best_d:
            best, best_d = bs, d
    return best


def plan_steps(
    scan: DatasetScan,
    *,
    micro_batch_size: MicroBatch,
    gradient_accumulation_steps: int,
    world_size: int,
    pipeline_stages: int,
    epochs: int,
    max_steps: int | None = None,
    image_micro_batch_size: MicroBatch | None = None,
) -> StepPlan:
    """Compute buckets, drops and steps per epoch exactly as diffusion-pipe will.

    Args:
        scan: from :func:`dpipe_tui.datasets.scan_dataset`.
        micro_batch_size: ``micro_batch_size_per_gpu`` (int or ``[[resolution, bs], ...]``).
        gradient_accumulation_steps: GAS.
        world_size: number of GPU processes W.
        pipeline_stages: P; W must be divisible by P.
        epochs: ``epochs``.
        max_steps: ``max_steps``, if set.
        image_micro_batch_size: ``image_micro_batch_size_per_gpu`` (frames == 1 buckets);
            default: the micro batch.

    Raises:
        PlanError: impossible parallelism or batch settings.
    """
    if world_size < 1 or pipeline_stages < 1 or world_size % pipeline_stages:
        raise PlanError(f"world size {world_size} is not divisible by pipeline_stages {pipeline_stages}")
    if gradient_accumulation_steps < 1:
        raise PlanError("gradient_accumulation_steps must be >= 1")
    dp = world_size // pipeline_stages
    table = _bs_table(micro_batch_size)
    image_table = table if image_micro_batch_size is None else _bs_table(image_micro_batch_size)
    if any(bs < 1 for bs in (*table.values(), *image_table.values())):
        raise PlanError("micro batch sizes must be >= 1")
    pooled: dict[BucketKey, int] = defaultdict(int)
    for d in scan.directories:
        for c in d.contributions:
            pooled[c.key] += c.repeated
    buckets: list[PlannedBucket] = []
    dropped = [Dropped(n, reason) for reason, n in sorted(Counter(i.reason for i in scan.issues).items())]
    traits = scan.traits
    for key in sorted(pooled):
        micro = _bs_for(image_table if key.frames == 1 else table, key.side)
        batch = micro * gradient_accumulation_steps * dp
        items = pooled[key]
        kept = items // batch * batch
        buckets.append(
            PlannedBucket(
                key=key,
                items=items,
                items_after_rounding=kept,
                batch=batch,
                micro_batch=micro,
                train_width=round(key.width / traits.preprocess_multiple) * traits.preprocess_multiple,
                train_height=round(key.height / traits.preprocess_multiple) * traits.preprocess_multiple,
                train_frames=traits.aligned_frames(key.frames),
            )
        )
        if items - kept:
            reason = (
                "bucket smaller than its global batch" if kept == 0 else "rounded down to the global batch"
            )
            dropped.append(Dropped(items - kept, reason, key, whole_bucket=kept == 0))
    steps = sum(b.steps for b in buckets)
    if scan.subsample_ratio:  # diffusion-pipe: `if subsample_ratio := ...`, so 0 means off
        steps = int(steps * scan.subsample_ratio)
    total = steps * epochs
    if max_steps is not None:
        total = min(total, max_steps)
    return StepPlan(
        global_batch_size=next(iter(table.values())) * gradient_accumulation_steps * dp,
        data_parallel=dp,
        steps_per_epoch=steps,
        total_steps=total,
        epochs=epochs,
        max_steps=max_steps,
        buckets=tuple(buckets),
        dropped=tuple(dropped),
        empty=steps == 0,
        message=EMPTY_MESSAGE if steps == 0 else None,
        scan=scan,
    )


def plan_for_profile(
    main_config_path: Path | str,
    *,
    base_dir: Path,
    world_size: int,
    read: Callable[[Path], str] | None = None,
    progress: Callable[[int, int], None] | None = None,
    cancel: Callable[[], bool] | None = None,
) -> StepPlan:
    """Scan the dataset of a main profile TOML and plan its steps (for the supervisor and ETAs).

    Args:
        main_config_path: the main TOML (read with tomllib; independent of the profile models).
        base_dir: what relative paths (``dataset``, directory paths) resolve against; see spec §1.4.
        world_size: number of GPU processes the run will use.
        read: where the TOML texts come from (a launch's snapshot; the disk by default).

    Raises:
        PlanError: the profile lacks what a plan needs, or has impossible parallelism.
        DatasetConfigError: the dataset TOML is unreadable or malformed.
    """
    path = Path(main_config_path)
    try:
        main = tomllib.loads(read(path) if read is not None else path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise PlanError(f"{path}: cannot read the profile: {e}") from e
    dataset = main.get("dataset")
    if not isinstance(dataset, str):
        raise PlanError(f"{path}: 'dataset' (path to the dataset TOML) is missing")
    dataset_path = Path(dataset).expanduser()
    if not dataset_path.is_absolute():
        dataset_path = base_dir / dataset_path
    model = main.get("model")
    model_table: Mapping[str, object] = model if isinstance(model, dict) else {}
    model_type = model_table.get("type")
    scan = scan_dataset(
        dataset_path,
        read=read,
        progress=progress,
        cancel=cancel,
        base_dir=base_dir,
        model_type=model_type if isinstance(model_type, str) else None,
        model_config=model_table,
    )
    max_steps = main.get("max_steps")
    return plan_steps(
        scan,
        micro_batch_size=main.get("micro_batch_size_per_gpu", 1),
        image_micro_batch_size=main.get("image_micro_batch_size_per_gpu"),
        gradient_accumulation_steps=int(main.get("gradient_accumulation_steps", 1)),
        world_size=world_size,
        pipeline_stages=int(main.get("pipeline_stages", 1)),
        epochs=int(main.get("epochs", 1)),
        max_steps=int(max_steps) if isinstance(max_steps, int) else None,
    )
