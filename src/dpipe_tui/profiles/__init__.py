"""Profiles: diffusion-pipe's main and dataset TOML as pydantic models, round-trip editing, validation.

Public API (the contract in the helper brief): :func:`validate_file`, :class:`ValidationReport`,
:class:`Finding`, :class:`Severity`, :func:`load_main_config`, :class:`MainConfig`,
:class:`ProfileDocument`, :func:`freeze_profile`, :func:`field_help`.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dpipe_tui.profiles.document import ProfileChangedError, ProfileDocument
    from dpipe_tui.profiles.findings import Finding, ProfileError, Severity, ValidationReport
    from dpipe_tui.profiles.freeze import FrozenProfile, freeze_profile
    from dpipe_tui.profiles.help import field_help
    from dpipe_tui.profiles.schema import MainConfig
    from dpipe_tui.profiles.validate import detect_kind, load_main_config, validate_file, validate_text

_HOMES = {
    "ProfileChangedError": "document",
    "ProfileDocument": "document",
    "Finding": "findings",
    "ProfileError": "findings",
    "Severity": "findings",
    "ValidationReport": "findings",
    "FrozenProfile": "freeze",
    "freeze_profile": "freeze",
    "field_help": "help",
    "MainConfig": "schema",
    "detect_kind": "validate",
    "load_main_config": "validate",
    "validate_file": "validate",
    "validate_text": "validate",
}


def __getattr__(name: str) -> Any:
    """Load the public names on first use: importing a light submodule (``profiles.frozen``, a TOML
    read the dashboard's progress needs) must not load pydantic and the schema (0.7 s cold)."""
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


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
