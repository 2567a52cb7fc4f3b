"""Validate a main or dataset config file into a :class:`ValidationReport`.

Why one entry point for both kinds: users pass whichever file they are editing; the kind is
detected from its keys. A main config also validates the dataset and eval dataset configs it names
and returns their findings under their own file paths, because a run needs all of them right.
Nothing here raises on bad input: unreadable files, TOML syntax errors and wrong types all become
findings (the property tests feed it random bytes).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import tomlkit
from pydantic import ValidationError
from tomlkit.exceptions import ParseError

from dpipe_tui.paths import DIFFUSION_PIPE_ENV
from dpipe_tui.profiles.builtin_gaps import dataset_gaps, is_builtin
from dpipe_tui.profiles.checks import check_main
from dpipe_tui.profiles.context import Context, add_pydantic_errors
from dpipe_tui.profiles.dataset_check import check_dataset
from dpipe_tui.profiles.findings import ConfigKind, Finding, ProfileError, Severity, ValidationReport
from dpipe_tui.profiles.pathchecks import check_main_paths, check_path, resolve
from dpipe_tui.profiles.positions import PositionIndex
from dpipe_tui.profiles.schema import MainConfig
from dpipe_tui.profiles.snapshot import read_profile_text

_MAIN_KEYS = frozenset({"model", "output_dir", "dataset", "epochs", "optimizer", "adapter", "dpipe_tui"})
_DATASET_KEYS = frozenset({"directory", "resolutions", "size_buckets", "enable_ar_bucket", "frame_buckets"})


ReadText = Callable[[Path], str]
"""Reads a profile file's text (the disk by default; a launch's snapshot)."""


def detect_kind(data: Mapping[str, Any]) -> ConfigKind:
    """``"main"`` or ``"dataset"``, from which keys the file has (main when undecided)."""
    main = len(_MAIN_KEYS & set(data))
    dataset = len(_DATASET_KEYS & set(data))
    return "dataset" if dataset > main else "main"


def parse_toml(text: str, path: Path | None) -> tuple[dict[str, Any] | None, Finding | None]:
    """Parse ``text`` with tomlkit into plain data, or return a located syntax-error finding."""
    try:
        doc = tomlkit.parse(text)
        data = doc.unwrap()
    except ParseError as exc:
        message = str(exc).split(" at line ")[0]
        return None, Finding(
            Severity.ERROR,
            path,
            exc.line or 1,
            exc.col or 1,
            "",
            f"TOML syntax error: {message}",
            "fix the TOML syntax at this position",
            "toml-syntax",
        )
    except Exception as exc:  # tomlkit raises assorted errors (e.g. KeyAlreadyPresent) on odd input
        return None, Finding(Severity.ERROR, path, 1, 1, "", f"TOML error: {exc}", None, "toml-syntax")
    return data, None


def default_base_dir(path: Path | None, data: Mapping[str, Any] | None) -> Path:
    """Where relative paths of this profile resolve (design: the engine's working directory).

    builtin engine, or ``[dpipe_tui] relative_paths = 'profile'``: the profile's folder. diffusion-pipe:
    ``$DIFFUSION_PIPE_PATH`` (its checkout, which is its cwd) when set, else the profile's folder.
    """
    folder = path.parent.resolve() if path is not None else Path.cwd()
    table = data.get("dpipe_tui") if isinstance(data, Mapping) else None
    table = table if isinstance(table, Mapping) else {}
    if table.get("relative_paths") == "profile":
        return folder
    if table.get("engine") != "builtin" and os.environ.get(DIFFUSION_PIPE_ENV):
        return Path(os.environ[DIFFUSION_PIPE_ENV]).expanduser().resolve()
    return folder


def _random_init(data: Mapping[str, Any]) -> bool:
    table = data.get("dpipe_tui")
    return isinstance(table, Mapping) and table.get("random_init") is True


def _relax_random_init(ctx: Context) -> None:
    """``random_init`` builds the transformer from scratch: its file is neither required nor read."""
    kept = [f for f in ctx.findings if not (f.key == "model.transformer_path" and f.severity == "error")]
    if len(kept) != len(ctx.findings):
        first = next(f for f in ctx.findings if f not in kept)
        kept.append(
            replace(
                first,
                severity=Severity.HINT,
                message="not read: [dpipe_tui] random_init builds the transformer with random weights",
                fix=None,
                code="random-init",
            )
        )
    ctx.findings[:] = kept


def _is_demo(data: Mapping[str, Any]) -> bool:
    table = data.get("dpipe_tui")
    return isinstance(table, Mapping) and table.get("prepare") == "demo"


def validate_text(
    text: str,
    *,
    path: Path | None = None,
    kind: ConfigKind | None = None,
    check_paths: bool = True,
    base_dir: Path | None = None,
    gpu_count: int | None = None,
    demo: bool = False,
) -> ValidationReport:
    """Validate one config's text (no files it names are read).

    Args:
        text: the TOML text.
        path: the file it came from (used in findings and for the default base dir).
        kind: force "main" or "dataset"; detected when None.
        check_paths: probe the filesystem for the paths the config names.
        base_dir: where relative paths resolve; see :func:`default_base_dir`.
        gpu_count: the number of GPUs the run will use, for the parallelism rules.
        demo: treat missing paths as "generated on first run" (a dataset of a demo profile).

    Returns:
        The report; ``.config`` is the parsed model when the schema accepted the file.
    """
    data, syntax = parse_toml(text, path)
    if data is None:
        return ValidationReport(path, kind or "main", [syntax] if syntax else [])
    kind = kind or detect_kind(data)
    base = base_dir if base_dir is not None else default_base_dir(path, data)
    ctx = Context(path, PositionIndex(text))
    report = ValidationReport(path, kind, base_dir=base)
    if kind == "dataset":
        report.config = check_dataset(ctx, data, base_dir=base if check_paths else None, demo=demo)
    else:
        demo = demo or _is_demo(data)
        check_main(ctx, data, gpu_count=gpu_count)
        try:
            report.config = MainConfig.model_validate(data)
        except ValidationError as exc:
            add_pydantic_errors(ctx, exc, data)
        if check_paths:
            check_main_paths(ctx, data, base, demo=demo)
        if _random_init(data):
            _relax_random_init(ctx)
        if isinstance(data.get("dataset"), str):
            report.dataset_path = resolve(data["dataset"], base)
    report.findings = sorted(ctx.findings, key=lambda f: (f.line or 0, f.column or 0))
    return report


def validate_file(
    path: Path | str,
    *,
    check_paths: bool = True,
    base_dir: Path | None = None,
    gpu_count: int | None = None,
    read: ReadText = read_profile_text,
) -> ValidationReport:
    """Validate a main or dataset config file; a main config brings its dataset configs' findings along.

    Args:
        path: the TOML file.
        check_paths: probe the filesystem (model files, dataset folders, ...); False skips every probe
            (a dataset config named by a main config is still validated when it exists, and a hint
            says so when it does not).
        base_dir: where relative paths resolve (default: :func:`default_base_dir`).
        gpu_count: GPUs of the planned run, for pipeline_stages / gradient_release rules.
        read: reads a file's text (a launch passes its :class:`SourceSnapshot`: one read a file).

    Returns:
        The report of ``path``, whose findings include those of its dataset and eval dataset configs.
    """
    path = Path(path)
    try:
        text = read(path)
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        finding = Finding(Severity.ERROR, path, None, None, "", f"cannot read the file: {reason}", None, "io")
        return ValidationReport(path, "main", [finding])
    report = validate_text(text, path=path, check_paths=check_paths, base_dir=base_dir, gpu_count=gpu_count)
    if report.kind == "main":
        _validate_children(report, text, check_paths=check_paths, gpu_count=gpu_count, read=read)
    return report


def validate_buffer(
    text: str,
    path: Path,
    *,
    base_dir: Path | None = None,
    gpu_count: int | None = None,
    read: ReadText = read_profile_text,
) -> ValidationReport:
    """Validate an unsaved buffer as if it were the file at ``path`` (the editor, on each keystroke).

    The same rules and locations as :func:`validate_file` with path checks (files the config names are
    probed with a stat), and a main config's dataset configs are validated too (read with ``read``,
    so an editor can hand over its own unsaved dataset buffer); the dataset's media are never
    scanned — that is :func:`dpipe_tui.datasets.plan_for_profile`'s job, called separately.
    """
    report = validate_text(text, path=path, check_paths=True, base_dir=base_dir, gpu_count=gpu_count)
    if report.kind == "main":
        _validate_children(report, text, check_paths=True, gpu_count=gpu_count, read=read)
        report.findings.sort(key=lambda f: (str(f.file) != str(path), f.line or 0, f.column or 0))
    return report


def _validate_children(
    report: ValidationReport, text: str, *, check_paths: bool, gpu_count: int | None, read: ReadText
) -> None:
    data, _ = parse_toml(text, report.path)
    if data is None or report.base_dir is None:
        return
    base = report.base_dir
    demo = _is_demo(data)
    ctx = Context(report.path, PositionIndex(text))
    children: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(data.get("dataset"), str):
        children.append((("dataset",), data["dataset"]))
    evals = data.get("eval_datasets")
    for i, entry in enumerate(evals if isinstance(evals, list) else []):
        if isinstance(entry, Mapping) and isinstance(entry.get("config"), str):
            children.append((("eval_datasets", i, "config"), entry["config"]))
    for key, value in children:
        child = resolve(value, base)
        if not child.is_file():
            if check_paths:  # the demo makes the model and images, never the dataset config itself
                check_path(ctx, key, value, base, demo=False, kind="file", what="dataset config")
            else:  # say so: silence would read as "the dataset config is fine"
                ctx.add(
                    Severity.HINT,
                    key,
                    f"dataset config {child} not found; not validated",
                    code="not-validated",
                    fix="check the path, or validate without --no-paths to see why",
                )
            continue
        try:
            child_text = read(child)
        except (OSError, UnicodeDecodeError) as exc:
            ctx.error(key, f"cannot read dataset config {child}: {exc}", code="io")
            continue
        sub = validate_text(
            child_text,
            path=child,
            kind="dataset",
            check_paths=check_paths,
            base_dir=base,
            gpu_count=gpu_count,
            demo=demo,
        )
        report.findings.extend(sub.findings)
        child_data, _ = parse_toml(child_text, child)
        if is_builtin(data) and child_data is not None:
            report.findings.extend(dataset_gaps(child, PositionIndex(child_text), child_data))
    report.findings.extend(ctx.findings)


def load_main_config(path: Path | str, *, base_dir: Path | None = None) -> MainConfig:
    """Parse a main config (schema only, no filesystem checks).

    Raises:
        ProfileError: the file is unreadable, not TOML, or not a valid main config; carries the findings.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        finding = Finding(Severity.ERROR, path, None, None, "", f"cannot read the file: {exc}", None, "io")
        raise ProfileError(f"cannot read {path}", [finding]) from exc
    report = validate_text(text, path=path, kind="main", check_paths=False, base_dir=base_dir)
    if not isinstance(report.config, MainConfig) or not report.ok:
        raise ProfileError(f"{path} is not a valid main config", report.findings)
    return report.config
