"""Profiles: diffusion-pipe's main and dataset TOML as pydantic models, round-trip editing, validation.

Public API (the contract in the helper brief): :func:`validate_file`, :class:`ValidationReport`,
:class:`Finding`, :class:`Severity`, :func:`load_main_config`, :class:`MainConfig`,
:class:`ProfileDocument`, :func:`freeze_profile`, :func:`field_help`.
"""

from __future__ import annotations

from dpipe_tui.profiles.document import ProfileChangedError, ProfileDocument
from dpipe_tui.profiles.findings import Finding, ProfileError, Severity, ValidationReport
from dpipe_tui.profiles.freeze import FrozenProfile, freeze_profile
from dpipe_tui.profiles.help import field_help
from dpipe_tui.profiles.schema import MainConfig
from dpipe_tui.profiles.validate import detect_kind, load_main_config, validate_file, validate_text

__all__ = [
    "Finding",
    "FrozenProfile",
    "MainConfig",
    "ProfileChangedError",
    "ProfileDocument",
    "ProfileError",
    "Severity",
    "ValidationReport",
    "detect_kind",
    "field_help",
    "freeze_profile",
    "load_main_config",
    "validate_file",
    "validate_text",
]
