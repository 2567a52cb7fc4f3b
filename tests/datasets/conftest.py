"""Fixtures for the dataset tests."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from pathlib import Path


@pytest.fixture
def ds_dir(tmp_path: Path) -> Path:
    """An empty folder for media, under tmp_path."""
    d = tmp_path / "images"
    d.mkdir()
    return d
