"""diffusion-pipe's bucketing arithmetic against hand-computed values."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.datasets import scan_dataset
from dpipe_tui.datasets.buckets import (
    SizeBucketIndex,
    dedup_and_sort,
    frame_bucket,
    geomspace,
    round_to_multiple,
    size_for,
)
from dpipe_tui.datasets.traits import model_traits
from tests.datasets.helpers import write_image, write_toml

if TYPE_CHECKING:
    from pathlib import Path

AR_DATASET = """
resolutions = [512]
enable_ar_bucket = true
min_ar = 0.5
max_ar = 2.0
num_ar_buckets = 7
[[directory]]
path = 'images'
"""


def test_geometric_ar_spacing_rounded_to_three_decimals() -> None:
    ars = dedup_and_sort(geomspace(0.5, 2.0, 7), numpy_values=True)
    assert ars == [0.5, 0.63, 0.794, 1.0, 1.26, 1.587, 2.0]
    assert geomspace(1.0, 1.0, 1) == [1.0]
    assert dedup_and_sort([512, 512.0004, math.sqrt(512 * 512)]) == [512.0]


@pytest.mark.parametrize(
    ("ar", "expected"),
    [
        (1.0, (512, 512)),
        (1.26, (576, 464)),
        (0.794, (464, 576)),
        (2.0, (720, 368)),
        (0.5, (368, 720)),
        (1.587, (640, 400)),
        (0.63, (400, 640)),
    ],
)
def test_bucket_sizes_at_512_with_multiple_16(ar: float, expected: tuple[int, int]) -> None:
    assert size_for(512, ar, 16) == expected


def test_rounding_is_half_to_even_and_multiple_32() -> None:
    assert round_to_multiple(24, 16) == 32  # 1.5 -> 2
    assert round_to_multiple(40, 16) == 32  # 2.5 -> 2
    assert size_for(512, 2.0, 32) == (736, 352)  # 724.08 -> 22.6 -> 23*32; 362.04 -> 11.3 -> 11*32


def test_frame_bucket_choice() -> None:
    buckets = [1, 33, 65]
    assert frame_bucket(1, buckets) == 1
    assert frame_bucket(64, buckets) == 33
    assert frame_bucket(200, buckets) == 65
    assert frame_bucket(20, buckets) is None  # a video never goes into the image bucket
    assert frame_bucket(0, buckets) is None


def test_items_land_in_nearest_ar_bucket(tmp_path: Path) -> None:
    images = tmp_path / "images"
    cases = {"sq": (64, 64), "w125": (80, 64), "t08": (64, 80), "w15": (150, 100), "w3": (300, 100)}
    for name, size in cases.items():
        write_image(images / f"{name}.png", size, "cap")
    scan = scan_dataset(write_toml(tmp_path / "d.toml", AR_DATASET), base_dir=tmp_path, model_type="flux")
    got = sorted((c.key.ar, c.key.width, c.key.height, c.entries) for c in scan.directories[0].contributions)
    assert got == [
        (0.794, 464, 576, 1),
        (1.0, 512, 512, 1),
        (1.26, 576, 464, 1),
        (1.587, 640, 400, 1),
        (2.0, 720, 368, 1),
    ]


def test_without_ar_bucketing_everything_is_square(tmp_path: Path) -> None:
    for i, size in enumerate([(64, 64), (300, 100), (100, 300)]):
        write_image(tmp_path / "images" / f"{i}.png", size, "cap")
    text = "resolutions = [[640, 360], 256]\n[[directory]]\npath = 'images'\n"
    scan = scan_dataset(write_toml(tmp_path / "d.toml", text), base_dir=tmp_path, model_type="flux")
    # [640, 360] is the area of a 480x480 square.
    assert sorted((c.key.width, c.entries) for c in scan.directories[0].contributions) == [(256, 3), (480, 3)]


def test_size_bucket_pairing_quirk_of_diffusion_pipe() -> None:
    # diffusion-pipe's own Cosmos example order: a square image lands in 704x960, not 960x960.
    example = [(960, 960, 1), (960, 704, 1), (704, 960, 1), (1280, 704, 1), (704, 1280, 1)]
    index = SizeBucketIndex.build(example)
    assert index.find(0.0, 1) == (704, 960, 1)
    assert index.nearest_ar_bucket(0.0, 1) == (960, 960, 1)
    ordered = SizeBucketIndex.build(sorted(example, key=lambda b: b[0] / b[1]))
    assert ordered.find(0.0, 1) == (960, 960, 1)
    # Two buckets with one AR dedup to one AR: only the longest-frame bucket is ever considered.
    mixed = SizeBucketIndex.build([(512, 512, 1), (512, 512, 33)])
    assert mixed.find(0.0, 1) is None
    assert mixed.find(0.0, 40) == (512, 512, 33)


def test_model_traits() -> None:
    assert model_traits("ltx-video").pixel_multiple == 32
    assert model_traits("ltx-video").framerate == 25
    assert model_traits("hunyuan_image").pixel_multiple == 32
    assert model_traits("flux").framerate is None
    ltx2 = model_traits("ltx2")
    assert (ltx2.pixel_multiple, ltx2.preprocess_multiple, ltx2.aligned_frames(40)) == (16, 32, 33)
    assert model_traits("minimax_h3").aligned_frames(40) == 34
    assert model_traits("wan").aligned_frames(35) == 33
    assert not model_traits("nonsense").known


def test_wan_variant_detection(tmp_path: Path) -> None:
    five_b = tmp_path / "Wan2.2-TI2V-5B"
    five_b.mkdir()
    (five_b / "config.json").write_text('{"model_type": "ti2v", "dim": 3072}', encoding="utf-8")
    traits = model_traits("wan", {"ckpt_path": str(five_b)})
    assert (traits.framerate, traits.pixel_multiple) == (24, 32)
    assert model_traits("wan", {"ckpt_path": str(tmp_path / "SkyReels-V2")}).framerate == 24
    assert model_traits("wan", {"ckpt_path": str(tmp_path / "Wan2.1-T2V-14B")}).framerate == 16
