"""Recipes, the profile list and "new profile from recipe"."""

from __future__ import annotations

import tomllib
from typing import TYPE_CHECKING

import pytest

from dpipe_tui.profiles import field_help, validate_file
from dpipe_tui.profiles.library import LibraryError, check_name, list_profiles, list_recipes, new_profile
from tests.profiles.conftest import REPO

if TYPE_CHECKING:
    from pathlib import Path

FAMILIES = {
    "chroma",
    "flux",
    "sdxl",
    "wan",
    "hunyuan-video",
    "ltx-video",
    "qwen_image",
    "z_image",
    "sd3",
    "lumina_2",
}


def test_recipes_cover_the_families_and_validate() -> None:
    recipes = {r.name: r for r in list_recipes(REPO / "recipes")}
    assert set(recipes) >= FAMILIES
    for recipe in recipes.values():
        report = validate_file(recipe.path, check_paths=False)
        assert not report.findings, [f.format() for f in report.findings]
        assert recipe.dataset_template.is_file()
        assert "/path/to/" in recipe.path.read_text()
        assert recipe.model_type is not None
        assert recipe.description


@pytest.mark.parametrize("res", [512, 1024])
def test_chroma_e6ai_profiles(res: int) -> None:
    path = REPO / "profiles" / f"chroma-e6ai-{res}.toml"
    report = validate_file(path, check_paths=False)
    assert not report.findings, [f.format() for f in report.findings]
    data = tomllib.loads(path.read_text())
    assert data["model"]["type"] == "chroma"
    assert data["model"]["transformer_dtype"] == "float8"
    assert f"chroma-unlocked-{'v47' if res == 512 else 'v50'}" in data["model"]["transformer_path"]
    assert data["micro_batch_size_per_gpu"] == (4 if res == 512 else 1)
    assert data["optimizer"] == {
        "type": "adamw_optimi",
        "lr": 2.5e-4,
        "betas": [0.9, 0.99],
        "weight_decay": 0.01,
        "eps": 1e-8,
    }
    assert data["monitoring"]["enable_wandb"] is True
    assert data["monitoring"]["wandb_api_key"] == ""
    assert "WANDB_API_KEY" in path.read_text()
    assert data["checkpoint_every_n_minutes"] > 0
    ds = tomllib.loads((REPO / "profiles" / f"chroma-e6ai-{res}.dataset.toml").read_text())
    assert ds["resolutions"] == [res]
    assert ds["caption_prefix"] == "by e6ai, "
    assert ds["shuffle_tags"] is True
    assert (ds["min_ar"], ds["max_ar"], ds["num_ar_buckets"]) == (0.5, 2.0, 9)


def test_new_profile_from_recipe(tmp_path: Path) -> None:
    created = new_profile("flux", "my-flux", tmp_path, recipes=REPO / "recipes")
    assert created.main == tmp_path / "my-flux.toml"
    assert created.dataset == tmp_path / "my-flux.dataset.toml"
    assert tomllib.loads(created.main.read_text())["dataset"] == str(created.dataset)
    assert validate_file(created.main, check_paths=False).ok
    with pytest.raises(LibraryError, match="already exists"):
        new_profile("flux", "my-flux", tmp_path, recipes=REPO / "recipes")
    with pytest.raises(LibraryError, match=r"available: .*chroma"):
        new_profile("nope", "x", tmp_path, recipes=REPO / "recipes")
    names = [p.name for p in list_profiles([tmp_path])]
    assert names == ["my-flux"]
    assert {p.name for p in list_profiles([tmp_path], include_datasets=True)} == {
        "my-flux",
        "my-flux.dataset",
    }


@pytest.mark.parametrize("name", ["../evil", "a/b", "", ".hidden", "x" * 65, "a b", "a..b"])
def test_bad_names_rejected(name: str) -> None:
    with pytest.raises(LibraryError):
        check_name(name)


def test_good_name() -> None:
    assert check_name("chroma-e6ai_512.v2.toml") == "chroma-e6ai_512.v2"


def test_field_help() -> None:
    assert "Required" in (field_help("model.transformer_path", model_type="chroma") or "")
    assert field_help("epochs")
    assert field_help("directory[0].path")
    assert field_help("resolutions")
    assert field_help("not_a_key") is None
    assert field_help("model.nope") is None
