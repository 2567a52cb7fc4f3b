"""Whatever diffusion-pipe accepts we accept: its examples (from the mirror, if present), our fixtures."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from dpipe_tui.profiles import validate_file, validate_text
from tests.profiles.conftest import DATA, MIRROR

FIXTURES = sorted(DATA.glob("*.toml"))


def _mirror_examples() -> list[str]:
    if not MIRROR.exists():
        return []
    out = subprocess.run(
        ["git", "-C", str(MIRROR), "ls-tree", "--name-only", "HEAD", "examples/"],
        capture_output=True,
        text=True,
        check=False,
    )
    return [n for n in out.stdout.split() if n.endswith(".toml")]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_fixture_validates_without_error(path: Path) -> None:
    report = validate_file(path, check_paths=False)
    assert report.ok, [f.format() for f in report.findings]
    assert report.kind == ("dataset" if path.name.startswith("dataset") else "main")


def test_fixtures_cover_spec_shapes() -> None:
    text = "\n".join(p.read_text() for p in FIXTURES)
    for shape in ("frame_buckets = [1, 33]", "size_buckets", "text_encoders = [", "cfg = 4", "control_path"):
        assert shape in text


@pytest.mark.skipif(not _mirror_examples(), reason="diffusion-pipe mirror not available")
@pytest.mark.parametrize("name", _mirror_examples() or ["none"])
def test_diffusion_pipe_example_validates(name: str) -> None:
    text = subprocess.run(
        ["git", "-C", str(MIRROR), "show", f"HEAD:{name}"], capture_output=True, text=True, check=True
    ).stdout
    report = validate_text(text, path=Path(name), check_paths=False)
    assert report.ok, [f.format() for f in report.findings]
    assert report.config is not None
