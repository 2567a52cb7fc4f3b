"""The supervisor tests' fixtures (temp home, stand-in diffusion-pipe checkout, scripted profiles)."""

from __future__ import annotations

from tests.supervisor.conftest import checkout, home, scripted_profile, submit_scripted

__all__ = ["checkout", "home", "scripted_profile", "submit_scripted"]
