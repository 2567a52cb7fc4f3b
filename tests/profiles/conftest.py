"""Shared fixtures: a valid Chroma profile with real files in a temp dir, and helpers to mutate it."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from dpipe_tui.profiles import Finding, ValidationReport, validate_file

REPO = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parent / "data"
MIRROR = Path("/work/.mirror/tdrussell+diffusion-pipe/repo")


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A folder with model files, an image folder (one captioned image), a dataset and a main config."""
    (tmp_path / "flux").mkdir()
    (tmp_path / "chroma.safetensors").write_bytes(b"x")
    (tmp_path / "images").mkdir()
    Image.new("RGB", (64, 64)).save(tmp_path / "images" / "a.png")
    (tmp_path / "images" / "a.txt").write_text("a caption")
    (tmp_path / "dataset.toml").write_text(
        "resolutions = [512]\nenable_ar_bucket = true\nmin_ar = 0.5\nmax_ar = 2.0\nnum_ar_buckets = 3\n\n"
        "[[directory]]\npath = 'images'\n"
    )
    (tmp_path / "main.toml").write_text(VALID_MAIN)
    return tmp_path


VALID_MAIN = """\
output_dir = 'out'
dataset = 'dataset.toml'
epochs = 10
save_every_n_epochs = 1
checkpoint_every_n_minutes = 30

[model]
type = 'chroma'
diffusers_path = 'flux'
transformer_path = 'chroma.safetensors'
dtype = 'bfloat16'

[adapter]
type = 'lora'
rank = 16

[optimizer]
type = 'adamw_optimi'
lr = 1e-4
"""


def run(path: Path, **kwargs: object) -> ValidationReport:
    """validate_file with base_dir = the file's folder (unless given)."""
    kwargs.setdefault("base_dir", path.parent)
    return validate_file(path, **kwargs)  # type: ignore[arg-type]


def codes(report: ValidationReport) -> set[str]:
    """The rule codes of a report."""
    return {f.code for f in report.findings}


def find(report: ValidationReport, code: str) -> Finding:
    """The first finding with ``code`` (fails when there is none)."""
    for f in report.findings:
        if f.code == code:
            return f
    raise AssertionError(f"no {code!r} finding in {[f.format() for f in report.findings]}")
