"""The profile library: ready profiles, recipes (templates per model family) and "new from recipe".

Why here and not in the front ends: the CLI's ``new``/``validate`` and the TUI's profile list must
list the same files and create profiles the same way. A new profile is the recipe's text with only
the ``dataset`` key rewritten (comments kept), next to its own copy of the recipe's dataset template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dpipe_tui import paths
from dpipe_tui.profiles.document import ProfileDocument
from dpipe_tui.profiles.snapshot import read_profile_text
from dpipe_tui.profiles.validate import detect_kind, parse_toml

if TYPE_CHECKING:
    from pathlib import Path

    from dpipe_tui.profiles.findings import ConfigKind

VIDEO_RECIPES = frozenset({"wan", "hunyuan-video", "ltx-video"})
"""Recipes whose dataset template is the video one (``recipes/datasets/video.toml``)."""

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class LibraryError(Exception):
    """A library operation was refused (bad name, unknown recipe, file exists)."""

    def __init__(self, message: str, *, usage: bool = False) -> None:
        super().__init__(message)
        self.usage = usage
        """True when the caller asked for something impossible (bad name, unknown recipe): a usage
        error (CLI exit 2), not a failure of the operation."""


@dataclass(frozen=True)
class ProfileSummary:
    """One TOML file in a profile folder, as the profile list shows it."""

    path: Path
    name: str
    kind: ConfigKind | None
    """None when the file is not valid TOML."""
    model_type: str | None
    description: str | None
    engine: str | None
    error: str | None
    """The TOML syntax error, when there is one."""


@dataclass(frozen=True)
class Recipe:
    """A commented template for one model family."""

    name: str
    path: Path
    dataset_template: Path
    model_type: str | None
    description: str | None


@dataclass(frozen=True)
class NewProfile:
    """What :func:`new_profile` wrote."""

    main: Path
    dataset: Path


def recipes_dir() -> Path:
    """``recipes/`` of the checkout, else the copy shipped in the package, else the home's."""
    return paths.bundled_dir("recipes") or paths.home() / "recipes"


def default_profiles_dir() -> Path:
    """Where new profiles go: ``profiles/`` of the checkout, else of the dpipe-tui home.

    Never the copy shipped inside an installed package (that is read-only data, listed by
    :func:`list_profiles` as well).
    """
    checkout = paths.source_checkout()
    return checkout / "profiles" if checkout is not None else paths.home() / "profiles"


def _default_profile_dirs() -> list[Path]:
    dirs = [default_profiles_dir()]
    shipped = paths.bundled_dir("profiles")
    if shipped is not None and shipped.resolve() != dirs[0].resolve():
        dirs.append(shipped)  # the ready profiles of an installed package
    return dirs


def summarize(path: Path) -> ProfileSummary:
    """Read one file's summary (never raises on bad content)."""
    try:
        text = read_profile_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        return ProfileSummary(path, path.stem, None, None, None, None, str(exc))
    data, syntax = parse_toml(text, path)
    if data is None:
        return ProfileSummary(
            path, path.stem, None, None, None, None, syntax.message if syntax else "invalid"
        )
    model = data.get("model")
    table = data.get("dpipe_tui")
    model_type = model.get("type") if isinstance(model, dict) else None
    description = table.get("description") if isinstance(table, dict) else None
    engine = table.get("engine") if isinstance(table, dict) else None
    return ProfileSummary(
        path,
        path.stem,
        detect_kind(data),
        model_type if isinstance(model_type, str) else None,
        description if isinstance(description, str) else None,
        engine if isinstance(engine, str) else None,
        None,
    )


def list_profiles(dirs: list[Path] | None = None, *, include_datasets: bool = False) -> list[ProfileSummary]:
    """Main profiles (and optionally dataset configs) in ``dirs``, by name.

    Default ``dirs``: the profiles folder, plus the ready profiles shipped in an installed package.
    """
    out: list[ProfileSummary] = []
    for folder in dirs if dirs is not None else _default_profile_dirs():
        for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
            summary = summarize(path)
            if include_datasets or summary.kind != "dataset":
                out.append(summary)
    return out


def list_recipes(folder: Path | None = None) -> list[Recipe]:
    """Every recipe (``recipes/*.toml``), by name."""
    folder = folder or recipes_dir()
    out: list[Recipe] = []
    for path in sorted(folder.glob("*.toml")) if folder.is_dir() else []:
        summary = summarize(path)
        if summary.kind != "main":
            continue
        template = folder / "datasets" / ("video.toml" if path.stem in VIDEO_RECIPES else "image.toml")
        out.append(Recipe(path.stem, path, template, summary.model_type, summary.description))
    return out


def check_name(name: str) -> str:
    """A safe profile name (no separators, no traversal); a trailing ``.toml`` is dropped."""
    name = name.removesuffix(".toml")
    if not NAME_RE.match(name) or ".." in name:
        raise LibraryError(
            f"invalid profile name {name!r}: use letters, digits, '.', '_' and '-' (max 64), starting with a "
            "letter or digit",
            usage=True,
        )
    return name


def new_profile(
    recipe: str, name: str, dest_dir: Path | None = None, *, recipes: Path | None = None
) -> NewProfile:
    """Create ``DEST/NAME.toml`` and ``DEST/NAME.dataset.toml`` from a recipe; never overwrites.

    Raises:
        LibraryError: bad name, unknown recipe (the message lists the recipes), or a file exists.
    """
    name = check_name(name)
    available = {r.name: r for r in list_recipes(recipes)}
    if recipe not in available:
        raise LibraryError(
            f"unknown recipe {recipe!r}; available: {', '.join(sorted(available)) or 'none'}", usage=True
        )
    chosen = available[recipe]
    dest = (dest_dir or default_profiles_dir()).resolve()
    main_path, dataset_path = dest / f"{name}.toml", dest / f"{name}.dataset.toml"
    for path in (main_path, dataset_path):
        if path.exists():
            raise LibraryError(f"{path} already exists; not overwriting it")
    doc = ProfileDocument.load(chosen.path)
    doc.set("dataset", str(dataset_path))
    dataset_doc = ProfileDocument.load(chosen.dataset_template)
    try:
        dest.mkdir(parents=True, exist_ok=True)
        dataset_doc.save(dataset_path)
    except OSError as exc:  # --dir names a file, or a folder that cannot be made or written
        raise LibraryError(f"cannot write into {dest}: {exc.strerror or exc}") from exc
    try:
        doc.save(main_path)
    except Exception as exc:
        dataset_path.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise LibraryError(f"cannot write {main_path}: {exc.strerror or exc}") from exc
        raise
    return NewProfile(main_path, dataset_path)
