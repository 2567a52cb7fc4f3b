"""Recipes, the profile list and "new profile from recipe"."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from dpipe_tui import paths
from dpipe_tui.datasets.settings import directory_settings, load_dataset_config
from dpipe_tui.profiles import field_help, validate_file
from dpipe_tui.profiles.library import LibraryError, check_name, list_profiles, list_recipes, new_profile
from dpipe_tui.profiles.model_schema import MODEL_CLASSES
from tests.profiles.conftest import REPO

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
        # the dataset path is a placeholder: only the "not validated" hint may remain
        assert {f.code for f in report.findings} <= {"not-validated"}, [f.format() for f in report.findings]
        assert recipe.dataset_template.is_file()
        assert "/path/to/" in recipe.path.read_text()
        assert recipe.model_type is not None
        assert recipe.description


@pytest.mark.parametrize("res", [512, 1024])
def test_chroma_e6ai_profiles(res: int) -> None:
    path = REPO / "profiles" / f"chroma-e6ai-{res}.toml"
    report = validate_file(path, check_paths=False)
    assert not report.findings, [f.format() for f in report.findings]  # its own dataset file is found
    # with paths checked, exactly the three paths the header names are left to fill in
    checked = validate_file(path)
    left = sorted(f.key for f in checked.findings if f.severity == "error")
    assert left == ["directory[0].path", "model.diffusers_path", "model.transformer_path"], left
    header = path.read_text().split("\n\n", 1)[0]
    assert all(name in header for name in ("diffusers_path", "transformer_path", ".dataset.toml"))
    data = tomllib.loads(path.read_text())
    assert data["model"]["type"] == "chroma"
    assert data["model"]["transformer_dtype"] == "float8"
    assert data["model"]["flux_shift"] is True
    assert "shift" not in data["model"]  # a constant shift would override flux_shift
    version = "v47" if res == 512 else "v50"
    assert data["model"]["transformer_path"].endswith(f"/chroma-unlocked-{version}.safetensors")
    assert version in data["dpipe_tui"]["description"]
    assert data["micro_batch_size_per_gpu"] == (4 if res == 512 else 1)
    assert data["warmup_steps"] == 100
    assert data["gradient_clipping"] == 1.0
    assert data["adapter"] == {"type": "lora", "rank": 32, "dtype": "bfloat16"}
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
    ds_path = REPO / "profiles" / f"chroma-e6ai-{res}.dataset.toml"
    assert data["dataset"] == ds_path.name  # resolved against the profile's folder (relative_paths)
    assert data["dpipe_tui"]["relative_paths"] == "profile"
    assert "/path/to" not in data["output_dir"]
    ds_report = validate_file(ds_path, check_paths=False)
    assert ds_report.kind == "dataset"
    assert not ds_report.findings, [f.format() for f in ds_report.findings]
    ds = tomllib.loads(ds_path.read_text())
    assert ds["resolutions"] == [res]
    assert ds["caption_prefix"] == "by e6ai, "
    assert ds["shuffle_tags"] is True
    assert ds["enable_ar_bucket"] is True
    assert (ds["min_ar"], ds["max_ar"], ds["num_ar_buckets"]) == (0.5, 2.0, 9)
    # the buckets diffusion-pipe builds from that: 9 aspect ratios from 0.5 to 2.0, one resolution
    settings = directory_settings(load_dataset_config(ds_path), 0, REPO)
    assert len(settings.ars) == 9
    assert (min(settings.ars), max(settings.ars)) == (0.5, 2.0)
    assert settings.ars[4] == 1.0
    assert settings.resolutions == (float(res),)
    assert settings.captions_multiplier == 1  # shuffle_tags = one shuffled variant per caption


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
    assert "One of: sdxl, flux" in (field_help("model.type") or "")
    assert "Chroma" in (field_help("model.type", model_type="chroma") or "")
    for model_type in MODEL_CLASSES:
        assert f"Model type '{model_type}'" in (field_help(("model", "type"), model_type=model_type) or "")


def test_installed_package_falls_back_to_its_packaged_data(tmp_path: Path) -> None:
    checkout, data = tmp_path / "checkout", tmp_path / "site-packages" / "dpipe_tui" / "_data"
    (checkout / "recipes").mkdir(parents=True)
    (data / "recipes").mkdir(parents=True)
    assert paths.find_bundled("recipes", checkout, data) == checkout / "recipes"
    assert paths.find_bundled("recipes", None, data) == data / "recipes"  # a plain `pip install .`
    assert paths.find_bundled("profiles", None, data) is None
    assert paths.find_bundled("profiles", checkout, data) is None  # a checkout never reads site-packages
    recipes = list_recipes(paths.find_bundled("recipes", None, REPO))
    assert {r.name for r in recipes} >= FAMILIES  # the same lookup works on a real recipes/ folder


def test_wheel_ships_recipes_and_profiles_where_paths_looks() -> None:
    wheel = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["hatch"]["build"]["targets"]["wheel"]
    package = Path(paths.__file__).parent
    assert paths.PACKAGED_DATA.parent == package
    where = paths.PACKAGED_DATA.relative_to(package.parent).as_posix()
    assert wheel["force-include"] == {"recipes": f"{where}/recipes", "profiles": f"{where}/profiles"}
    assert all((REPO / src).is_dir() for src in wheel["force-include"])
