"""``validate`` resolves relative paths exactly as ``run`` will: same engine choice, same base dir."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dpipe_tui.services.profiles import validate_files
from tests.profiles.conftest import VALID_MAIN

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home, with a diffusion-pipe checkout (that lacks the workspace's files) in the environment."""
    checkout = tmp_path_factory.mktemp("diffusion-pipe")
    (checkout / "train.py").write_text("")
    monkeypatch.setenv("DIFFUSION_PIPE_PATH", str(checkout))
    return tmp_path_factory.mktemp("home")


def test_builtin_default_resolves_against_the_profile_folder(workspace: Path, home: Path) -> None:
    main = workspace / "main.toml"
    # no [dpipe_tui] engine and no settings: run picks the builtin engine, so the profile's folder
    assert validate_files([main], home=home).ok
    # asked for diffusion-pipe, the same relative paths resolve inside the checkout, where they are missing
    main.write_text(VALID_MAIN + "\n[dpipe_tui]\nengine = 'diffusion-pipe'\n")
    report = validate_files([main], home=home)
    assert not report.ok
    assert any(f.code == "path-missing" and f.key == "dataset" for f in report.findings)
    (home / "settings.toml").write_text("default_engine = 'diffusion-pipe'\n")
    main.write_text(VALID_MAIN)
    assert not validate_files([main], home=home).ok  # the settings' default engine counts too


def test_relative_paths_profile_resolves_against_the_profile_folder(workspace: Path, home: Path) -> None:
    main = workspace / "main.toml"
    main.write_text(VALID_MAIN + "\n[dpipe_tui]\nengine = 'diffusion-pipe'\nrelative_paths = 'profile'\n")
    report = validate_files([main], home=home)
    assert report.ok, [f.format() for f in report.findings]  # found next to the profile, not in the checkout
