"""Frozen copies of a profile for a run: ``profile.toml`` + ``dataset.toml`` (+ eval datasets).

Why: a run must be reproducible and resumable even after the user edits or moves the profile, and
the trainer resolves relative paths against its working directory (spec §1.4). So the supervisor
freezes copies into the run folder with every path made absolute, the ``dataset`` / eval ``config``
keys pointing at the frozen copies, the user's comments kept (tomlkit), and the W&B key blanked:
the registry never stores a secret (it comes from ``$WANDB_API_KEY``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.fsutil import atomic_write_text
from dpipe_tui.profiles.document import ProfileDocument
from dpipe_tui.profiles.findings import Finding, ProfileError, Severity
from dpipe_tui.profiles.pathchecks import MODEL_PATH_KEYS, resolve

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

KeyPath = tuple[str | int, ...]


@dataclass(frozen=True)
class FrozenProfile:
    """Where :func:`freeze_profile` wrote the copies."""

    main: Path
    dataset: Path
    evals: list[Path]


def _main_path_keys(data: dict[str, Any]) -> Iterator[KeyPath]:
    yield ("output_dir",)
    model = data.get("model")
    if isinstance(model, dict):
        for key in model:
            if key.endswith("_path") or key in MODEL_PATH_KEYS:
                yield ("model", key)
        for i, entry in enumerate(_list(model.get("text_encoders"))):
            if isinstance(entry, dict):
                yield ("model", "text_encoders", i, "path")
                for j in range(len(_list(entry.get("paths")))):
                    yield ("model", "text_encoders", i, "paths", j)
        for i in range(len(_list(model.get("merge_adapters")))):
            yield ("model", "merge_adapters", i)
    adapter = data.get("adapter")
    if isinstance(adapter, dict):
        yield ("adapter", "init_from_existing")
        for i in range(len(_list(adapter.get("fuse_adapters")))):
            yield ("adapter", "fuse_adapters", i, "path")


def _dataset_path_keys(data: dict[str, Any]) -> Iterator[KeyPath]:
    for i in range(len(_list(data.get("directory")))):
        for key in ("path", "mask_path", "control_path", "default_mask_file"):
            yield ("directory", i, key)


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _absolutize(doc: ProfileDocument, keys: Iterator[KeyPath], base_dir: Path) -> None:
    for key in list(keys):
        value = doc.get(key)
        if isinstance(value, str) and value:
            absolute = str(resolve(value, base_dir))
            if absolute != value:
                doc.set(key, absolute)


def _load(path: Path, what: str, key: str, read: Callable[[Path], str] | None = None) -> ProfileDocument:
    try:
        return ProfileDocument.from_text(read(path), path) if read is not None else ProfileDocument.load(path)
    except Exception as exc:  # unreadable or not TOML: the caller validates first; say which file
        finding = Finding(
            Severity.ERROR, path, None, None, key, f"cannot load the {what}: {exc}", None, "freeze"
        )
        raise ProfileError(f"cannot freeze: {what} {path} cannot be loaded", [finding]) from exc


def _safe(name: object, index: int) -> str:
    text = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("._") or "eval"
    return f"eval-{index}-{text[:40]}.toml"


def freeze_profile(
    profile_path: Path | str,
    dest_dir: Path | str,
    *,
    base_dir: Path | str,
    read: Callable[[Path], str] | None = None,
) -> FrozenProfile:
    """Write ``dest_dir/profile.toml`` and ``dest_dir/dataset.toml`` (+ eval dataset copies).

    Args:
        profile_path: the main config.
        dest_dir: the run folder (created if missing).
        base_dir: where the profile's relative paths resolve (the engine's working directory).
        read: where the texts come from (a launch's snapshot: the frozen copy is what was validated).

    Returns:
        The paths written.

    Raises:
        ProfileError: the profile or one of its dataset configs cannot be loaded, or has no ``dataset``.
    """
    profile_path, dest, base = Path(profile_path), Path(dest_dir), Path(base_dir).resolve()
    main = _load(profile_path, "profile", "", read)
    dataset_value = main.get("dataset")
    if not isinstance(dataset_value, str) or not dataset_value:
        finding = Finding(
            Severity.ERROR,
            profile_path,
            1,
            1,
            "dataset",
            "the profile names no dataset config",
            "add dataset = '/path/to/dataset.toml'",
            "missing-key",
        )
        raise ProfileError(f"cannot freeze {profile_path}: no dataset", [finding])
    dest.mkdir(parents=True, exist_ok=True)
    _absolutize(main, _main_path_keys(main.data()), base)

    dataset_doc = _load(resolve(dataset_value, base), "dataset config", "dataset", read)
    _absolutize(dataset_doc, _dataset_path_keys(dataset_doc.data()), base)
    dataset_out = dest / "dataset.toml"
    atomic_write_text(dataset_out, dataset_doc.text)
    main.set("dataset", str(dataset_out.resolve()))

    evals: list[Path] = []
    for i, entry in enumerate(_list(main.get("eval_datasets"))):
        if not isinstance(entry, dict) or not isinstance(entry.get("config"), str):
            continue
        eval_doc = _load(
            resolve(entry["config"], base), "eval dataset config", f"eval_datasets[{i}].config", read
        )
        _absolutize(eval_doc, _dataset_path_keys(eval_doc.data()), base)
        out = dest / _safe(entry.get("name"), i)
        atomic_write_text(out, eval_doc.text)
        main.set(("eval_datasets", i, "config"), str(out.resolve()))
        evals.append(out)

    if isinstance(main.get("monitoring"), dict) and main.get(("monitoring", "wandb_api_key")) not in (
        None,
        "",
    ):
        main.set(("monitoring", "wandb_api_key"), "")
    main_out = dest / "profile.toml"
    atomic_write_text(main_out, main.text)
    return FrozenProfile(main_out, dataset_out, evals)
