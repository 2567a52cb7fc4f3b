"""The dataset TOML schema and the cross-field rules diffusion-pipe enforces at run time."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.profiles import validate_file
from dpipe_tui.profiles.dataset_schema import (
    DATASET_KEYS,
    DIRECTORY_KEYS,
    DatasetConfig,
    dataset_rules,
)

if TYPE_CHECKING:
    from pathlib import Path


def _rules(text: str) -> dict[str, str]:
    cfg = DatasetConfig.model_validate(tomllib.loads(text))
    return {r.key: r.severity for r in dataset_rules(cfg)}


def test_types_accept_what_diffusion_pipe_accepts() -> None:
    cfg = DatasetConfig.model_validate(
        tomllib.loads(
            "resolutions = [512, [1280, 720]]\nar_buckets = [[16, 9], [1, 1]]\nnum_repeats = 0.5\n"
            "frame_buckets = [1, 33]\ntypo_key = 1\n"
            "[[directory]]\npath = 'x'\nsize_buckets = [[512, 512, 1]]\n"
        )
    )
    assert cfg.resolutions == [512, (1280, 720)]
    assert cfg.directory[0].size_buckets == [(512, 512, 1)]
    assert cfg.model_extra == {"typo_key": 1}
    assert "subsample_ratio" in DATASET_KEYS
    assert "subsample_ratio" not in DIRECTORY_KEYS
    assert {"path", "mask_path", "control_path", "num_repeats"} <= DIRECTORY_KEYS


def test_valid_dataset_has_no_findings() -> None:
    assert _rules("resolutions = [512]\n[[directory]]\npath = 'x'\n") == {}


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[[directory]]\npath = 'x'\nresolutions = [512]\n", "resolutions"),
        ("resolutions = [512]\nenable_ar_bucket = true\n[[directory]]\npath = 'x'\n", "min_ar"),
        ("resolutions = [256, 512, 768, 1024]\n[[directory]]\npath = 'x'\n", "resolutions"),
        ("resolutions = [512]\n[[directory]]\npath = 'x'\nnum_repeats = 0\n", "directory.0.num_repeats"),
        ("resolutions = [512]\nnum_repeats = -1\n[[directory]]\npath = 'x'\n", "num_repeats"),
        ("resolutions = [512]\n", "directory"),
    ],
)
def test_errors(text: str, key: str) -> None:
    assert _rules(text).get(key) == "error"


def test_size_buckets_need_no_resolutions_and_ar_list_satisfies_ar_bucketing() -> None:
    assert _rules("size_buckets = [[512, 512, 1]]\n[[directory]]\npath = 'x'\n") == {}
    text = (
        "resolutions = [512]\nenable_ar_bucket = true\nar_buckets = [1.0, 1.5]\n[[directory]]\npath = 'x'\n"
    )
    assert _rules(text) == {}


def test_size_bucket_order_quirk_is_a_warning() -> None:
    text = "size_buckets = [[960, 960, 1], [960, 704, 1], [704, 960, 1]]\n[[directory]]\npath = 'x'\n"
    assert _rules(text) == {"size_buckets": "warning"}


def test_inherited_problem_is_reported_once() -> None:
    text = "enable_ar_bucket = true\n[[directory]]\npath = 'a'\n[[directory]]\npath = 'b'\n"
    rules = dataset_rules(DatasetConfig.model_validate(tomllib.loads(text)))
    assert [r.key for r in rules] == ["resolutions", "min_ar", "max_ar", "num_ar_buckets"]
    key, severity, message, fix = rules[0]
    assert (key, severity) == ("resolutions", "error")
    assert "KeyError" in message
    assert fix


_BASE = (
    "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n"
    "[[directory]]\npath = 'images'\n"
)


def _dataset_file(tmp_path: Path, line: str) -> Path:
    """_BASE with ``line`` replacing the key of the same name (or added), in the first directory for path."""
    key = line.split(" = ")[0]
    kept = [x for x in _BASE.splitlines() if not x.startswith(f"{key} =")]
    if key in {"path", "control_path", "mask_path"}:
        kept.append(line)
    else:
        kept.insert(0, line)
    path = tmp_path / "dataset.toml"
    path.write_text("\n".join(kept) + "\n")
    return path


@pytest.mark.parametrize(
    ("line", "key", "line_no"),
    [
        ('resolutions = ["512"]', "resolutions[0]", 1),
        ("resolutions = [[1280, '720']]", "resolutions[0][1]", 1),
        ('num_repeats = "2"', "num_repeats", 1),
        ("num_repeats = true", "num_repeats", 1),
        ("num_ar_buckets = 9.0", "num_ar_buckets", 1),
        ("shuffle_tags = 1", "shuffle_tags", 1),
        ('enable_ar_bucket = "false"', "enable_ar_bucket", 1),
        ("skip_empty_caption = 0", "skip_empty_caption", 1),
        ("min_ar = '0.5'", "min_ar", 1),
        ("frame_buckets = [1, 33.0]", "frame_buckets[1]", 1),
        ("size_buckets = [[512, 512, '1']]", "size_buckets[0][2]", 1),
        ("cache_shuffle_num = 2.0", "cache_shuffle_num", 1),
        ("caption_prefix = 1", "caption_prefix", 1),
        ("subsample_ratio = '0.5'", "subsample_ratio", 1),
        ("path = 3", "directory[0].path", 7),
        ("control_path = ['c']", "directory[0].control_path", 8),
    ],
)
def test_wrong_types_in_a_dataset_file_are_errors(tmp_path: Path, line: str, key: str, line_no: int) -> None:
    path = _dataset_file(tmp_path, line)
    report = validate_file(path, check_paths=False)
    assert report.kind == "dataset"
    shown = [f.format() for f in report.findings]
    assert (key, line_no) in {(f.key, f.line) for f in report.errors}, shown
    assert {f.code for f in report.errors} == {"type"}, shown
    assert all(f.key.startswith(key.split("[")[0]) for f in report.errors), shown


@pytest.mark.parametrize(
    "line",
    [
        "num_repeats = 2",
        "num_repeats = 0.5",
        "min_ar = 1",
        "resolutions = [512.0, [1280, 720]]",
        "ar_buckets = [[16, 9], 1.5, 1]",
        "subsample_ratio = 1",
        "frame_buckets = [1, 33]",
        "shuffle_tags = true",
    ],
)
def test_ints_where_diffusion_pipe_takes_floats_are_accepted(tmp_path: Path, line: str) -> None:
    report = validate_file(_dataset_file(tmp_path, line), check_paths=False)
    assert report.ok, [f.format() for f in report.findings]
