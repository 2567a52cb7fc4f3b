"""The dataset TOML schema and the cross-field rules diffusion-pipe enforces at run time."""

from __future__ import annotations

import tomllib

import pytest

from dpipe_tui.profiles.dataset_schema import (
    DATASET_KEYS,
    DIRECTORY_KEYS,
    DatasetConfig,
    dataset_rules,
)


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
