"""End-to-end fixtures: the supervisor tests' temp home and the tiny demo profile (shared assets)."""

from __future__ import annotations

from tests.supervisor.conftest import builtin_profile, home

__all__ = ["builtin_profile", "home"]
