"""UI test fixtures: a real cockpit on a temp home, a fake GPU probe, a stable environment for snapshots.

Snapshots flake on cursor blink, animations, clocks and the environment (style.md §5): the autouse
fixture clears NO_COLOR and TEXTUAL_* and turns animations off; the probe is scripted, never NVML.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from dpipe_tui.services.cockpit import Cockpit
from dpipe_tui.services.gpus import GpuReport, GpuSnapshot
from tests.cli.conftest import dp_profile
from tests.supervisor.conftest import (
    builtin_profile,
    checkout,
    home,
    scripted_profile,
    submit_scripted,
)

if TYPE_CHECKING:
    from pathlib import Path

__all__ = ["builtin_profile", "checkout", "dp_profile", "home", "scripted_profile", "submit_scripted"]

FIXED_NOW = 1_796_000_000.0


class ScriptedProbe:
    """Two GPUs with fixed readings (no NVML)."""

    def sample(self) -> GpuReport:
        gpus = tuple(
            GpuSnapshot(
                index=i,
                name="NVIDIA H100 80GB HBM3",
                utilization=40.0 + 30 * i,
                memory_used=(20 + 30 * i) * 2**30,
                memory_total=80 * 2**30,
                temperature=50.0 + i,
                power_draw=250.0 + 100 * i,
                power_limit=700.0,
            )
            for i in range(2)
        )
        return GpuReport(available=True, reason=None, gpus=gpus, host=None, t=FIXED_NOW)


class IdleProbe:
    """Two GPUs with almost nothing in memory (free unless a run holds them)."""

    def sample(self) -> GpuReport:
        gpus = tuple(
            GpuSnapshot(
                index=i,
                name="NVIDIA H100 80GB HBM3",
                utilization=0.0,
                memory_used=2**29,
                memory_total=80 * 2**30,
            )
            for i in range(2)
        )
        return GpuReport(available=True, reason=None, gpus=gpus, host=None, t=FIXED_NOW)


class NoGpuProbe:
    """A machine without an NVIDIA driver."""

    def sample(self) -> GpuReport:
        return GpuReport(available=False, reason="NVML: driver not loaded", t=FIXED_NOW)


@pytest.fixture(autouse=True)
def stable_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if (key.startswith("TEXTUAL_") and not key.startswith("TEXTUAL_SNAPSHOT")) or key == "NO_COLOR":
            monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TEXTUAL_ANIMATIONS", "none")


@pytest.fixture
def cockpit(home: Path) -> Cockpit:
    return Cockpit(home, probe=ScriptedProbe())
