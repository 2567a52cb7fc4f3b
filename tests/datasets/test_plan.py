"""Steps per epoch, batch rounding, drops and the empty-dataset case, as diffusion-pipe computes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from dpipe_tui.datasets import (
    BucketKey,
    Contribution,
    DatasetScan,
    DirectoryScan,
    PlanError,
    plan_for_profile,
    plan_steps,
    scan_dataset,
    summary_lines,
)
from dpipe_tui.datasets.traits import model_traits
from tests.datasets.helpers import write_image, write_toml

SQUARE = BucketKey(512, 512, 1, 1.0)


def _scan_of(*dirs: list[Contribution], subsample: float | None = None) -> DatasetScan:
    return DatasetScan(
        config_path=Path("d.toml"),
        base_dir=Path(),
        traits=model_traits("wan"),
        directories=tuple(
            DirectoryScan(i, Path(f"d{i}"), contributions=tuple(c)) for i, c in enumerate(dirs)
        ),
        subsample_ratio=subsample,
    )


@pytest.mark.parametrize(
    ("mbs", "gas", "world", "stages", "gbs", "steps"),
    [
        (1, 1, 1, 1, 1, 100),
        (2, 1, 1, 1, 2, 50),
        (2, 4, 1, 1, 8, 12),
        (1, 1, 4, 1, 4, 25),
        (1, 1, 4, 2, 2, 50),
        (3, 2, 2, 2, 6, 16),
        (1, 8, 8, 8, 8, 12),
    ],
)
def test_steps_per_epoch(mbs: int, gas: int, world: int, stages: int, gbs: int, steps: int) -> None:
    plan = plan_steps(
        _scan_of([Contribution(SQUARE, 100, 1)]),
        micro_batch_size=mbs,
        gradient_accumulation_steps=gas,
        world_size=world,
        pipeline_stages=stages,
        epochs=3,
    )
    assert (plan.global_batch_size, plan.data_parallel) == (gbs, world // stages)
    assert plan.steps_per_epoch == steps
    assert plan.total_steps == 3 * steps
    assert plan.buckets[0].items_after_rounding == steps * gbs


def test_world_size_must_divide_by_stages() -> None:
    with pytest.raises(PlanError, match="divisible"):
        plan_steps(
            _scan_of([Contribution(SQUARE, 10, 1)]),
            micro_batch_size=1,
            gradient_accumulation_steps=1,
            world_size=3,
            pipeline_stages=2,
            epochs=1,
        )


def test_pooling_rounding_and_whole_bucket_drops() -> None:
    wide = BucketKey(720, 368, 1, 2.0)
    scan = _scan_of(
        [Contribution(SQUARE, 3, 1), Contribution(wide, 1, 1)],
        [Contribution(SQUARE, 2, 1)],  # same bucket from another directory is pooled: 5 items
    )
    plan = plan_steps(
        scan, micro_batch_size=2, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )
    by_key = {b.key: (b.items, b.items_after_rounding, b.steps) for b in plan.buckets}
    assert by_key == {SQUARE: (5, 4, 2), wide: (1, 0, 0)}
    assert plan.steps_per_epoch == 2
    drops = {(d.bucket, d.items, d.whole_bucket) for d in plan.dropped}
    assert drops == {(SQUARE, 1, False), (wide, 1, True)}


def test_fractional_num_repeats_truncate_per_directory() -> None:
    # Each directory's part is int(3 * 0.5) = 1, so the pooled bucket has 2 items, not int(6 * 0.5) = 3.
    scan = _scan_of([Contribution(SQUARE, 3, 0.5)], [Contribution(SQUARE, 3, 0.5)])
    plan = plan_steps(
        scan, micro_batch_size=1, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )
    assert plan.buckets[0].items == 2
    scan = _scan_of([Contribution(SQUARE, 10, 2.5)])
    plan = plan_steps(
        scan, micro_batch_size=1, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )
    assert plan.steps_per_epoch == 25


def test_list_micro_batch_picks_closest_resolution_and_image_batch_for_frames_1() -> None:
    small = BucketKey(256, 256, 1, 1.0)
    video = BucketKey(512, 512, 33, 1.0)
    scan = _scan_of([Contribution(small, 8, 1), Contribution(SQUARE, 8, 1), Contribution(video, 8, 1)])
    plan = plan_steps(
        scan,
        micro_batch_size=[[256, 4], [512, 2]],
        image_micro_batch_size=[[256, 8], [512, 1]],
        gradient_accumulation_steps=1,
        world_size=1,
        pipeline_stages=1,
        epochs=1,
    )
    batches = {b.key: b.batch for b in plan.buckets}
    assert batches == {small: 8, SQUARE: 1, video: 2}
    assert plan.global_batch_size == 4  # DeepSpeed is told the first list value
    assert plan.steps_per_epoch == 1 + 8 + 4


def test_empty_dataset_matches_diffusion_pipe_error() -> None:
    scan = _scan_of([Contribution(SQUARE, 3, 1)])
    plan = plan_steps(
        scan, micro_batch_size=4, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=5
    )
    assert plan.empty
    assert plan.steps_per_epoch == plan.total_steps == 0
    assert plan.message is not None
    assert plan.message.startswith("Processed dataset was empty")
    assert any("Processed dataset was empty" in line for line in summary_lines(plan))


def test_subsample_ratio_and_max_steps() -> None:
    plan = plan_steps(
        _scan_of([Contribution(SQUARE, 101, 1)], subsample=0.25),
        micro_batch_size=1,
        gradient_accumulation_steps=1,
        world_size=1,
        pipeline_stages=1,
        epochs=10,
        max_steps=100,
    )
    assert plan.steps_per_epoch == 25  # int(101 * 0.25)
    assert plan.total_steps == 100


def test_caption_variants_multiply_entries(tmp_path: Path) -> None:
    for i in range(3):
        write_image(tmp_path / "images" / f"{i}.png", (64, 64), "a, b, c")
    text = (
        "resolutions = [256, 512]\ncache_shuffle_num = 2\n[[directory]]\npath = 'images'\nnum_repeats = 2\n"
    )
    scan = scan_dataset(write_toml(tmp_path / "d.toml", text), base_dir=tmp_path, model_type="flux")
    plan = plan_steps(
        scan, micro_batch_size=1, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )
    assert [b.items for b in plan.buckets] == [12, 12]  # 3 images x 2 variants x 2 repeats, per resolution
    text = text.replace("cache_shuffle_num = 2", "shuffle_tags = true")
    scan = scan_dataset(write_toml(tmp_path / "d.toml", text), base_dir=tmp_path, model_type="flux")
    plan = plan_steps(
        scan, micro_batch_size=1, gradient_accumulation_steps=1, world_size=1, pipeline_stages=1, epochs=1
    )
    assert plan.steps_per_epoch == 12


def test_plan_for_profile_reads_main_toml(tmp_path: Path) -> None:
    for i in range(10):
        write_image(tmp_path / "data" / "images" / f"{i}.png", (64, 64), "cap")
    write_toml(
        tmp_path / "data" / "dataset.toml", "resolutions = [512]\n[[directory]]\npath = 'data/images'\n"
    )
    main = write_toml(
        tmp_path / "profile.toml",
        "output_dir = 'out'\ndataset = 'data/dataset.toml'\nepochs = 2\nmicro_batch_size_per_gpu = 2\n"
        "gradient_accumulation_steps = 2\npipeline_stages = 2\n[model]\ntype = 'chroma'\n",
    )
    plan = plan_for_profile(main, base_dir=tmp_path, world_size=4)
    assert (plan.global_batch_size, plan.steps_per_epoch, plan.total_steps) == (8, 1, 2)
    assert plan.dropped[0].items == 2
    lines = summary_lines(plan)
    assert any("1 steps/epoch" in line for line in lines)
    with pytest.raises(PlanError, match="dataset"):
        plan_for_profile(write_toml(tmp_path / "bad.toml", "epochs = 1\n"), base_dir=tmp_path, world_size=1)
