"""``--help`` that reads like a well-kept CLI's: ``FILE...`` and ``--gpus N``, not ``{files}...``,
``<list[Path]>`` and ``--json <bool>``.

Why a patch: typer (0.29) prints Python types as metavars and wraps required arguments in braces,
with no setting to turn either off. :func:`install` replaces a few display methods of its parameter
classes; each is looked up first, so a typer without them keeps its own look (and the help test,
which checks every command's help for braces and ``<type>``, says so).
"""

from __future__ import annotations

from typing import Any

_BY_TYPE = {
    "<int>": "N",
    "<int range>": "N",
    "<float>": "X",
    "<float range>": "X",
    "<str>": "TEXT",
    "<path>": "PATH",
}


def _argument_name(param: Any) -> str:
    name = str(param.metavar or param.name).upper()
    return name + "..." if param.nargs != 1 and not name.endswith("...") else name


def _usage_name(param: Any) -> str:
    name = _argument_name(param)
    return name if param.required else f"[{name}]"


def _no_type(param: Any, ctx: Any = None) -> None:
    """Nothing to show: an argument's name says its type (``FILE...``)."""


def _option_value(param: Any, ctx: Any = None) -> str | None:
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return None  # a flag takes no value: nothing to show
    if param.metavar is not None:
        return str(param.metavar)
    return _BY_TYPE.get(param.display_type(ctx), "VALUE")


def install() -> None:
    """Patch typer's parameter classes (idempotent)."""
    try:
        from typer import core
    except ImportError:  # pragma: no cover - typer is a dependency
        return
    argument, option = getattr(core, "TyperArgument", None), getattr(core, "TyperOption", None)
    patches = [
        (argument, "_usage_display_name", _usage_name),
        (argument, "_rich_display_name", _argument_name),
        (argument, "display_type_rich", _no_type),
        (option, "display_type_rich", _option_value),
        # "[x>=0]" beside a metavar says less than the help text does ("at least 1", "up to N")
        (argument, "_get_number_range_help_str", _no_type),
        (option, "_get_number_range_help_str", _no_type),
    ]
    for cls, name, func in patches:
        if cls is not None and hasattr(cls, name):
            setattr(cls, name, func)
