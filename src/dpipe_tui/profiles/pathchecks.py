"""Filesystem checks: do the files and folders a config names exist?

Why separate from the schema: a profile written on a laptop is valid before the model files are
downloaded on the GPU box, so ``check_paths=False`` must skip every probe here while keeping the
schema checks, and a ``[dpipe_tui] prepare = "demo"`` profile turns "missing" into "generated on
first run" hints. Relative paths resolve against the run's working directory (``base_dir``): the
diffusion-pipe checkout for that engine, the profile's folder for the built-in one (spec §1.4).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpipe_tui.profiles.findings import Severity

if TYPE_CHECKING:
    from dpipe_tui.profiles.context import Context
    from dpipe_tui.profiles.positions import KeyPath

MODEL_PATH_KEYS = frozenset({"diffusion_model", "vae", "audio_vae", "text_encoder"})


def resolve(value: str, base_dir: Path) -> Path:
    """A config path as the trainer sees it: ``~`` expanded, relative to ``base_dir``."""
    path = Path(value).expanduser()
    return path if path.is_absolute() else base_dir / path


def check_path(
    ctx: Context,
    key: KeyPath,
    value: object,
    base_dir: Path,
    *,
    demo: bool,
    kind: str = "any",
    what: str = "path",
) -> None:
    """Add a finding when ``value`` (a config string) does not exist, or is not a ``kind`` ('file'/'dir')."""
    if not isinstance(value, str) or not value:
        return
    path = resolve(value, base_dir)
    try:
        exists = path.exists()
        wrong = (kind == "dir" and exists and not path.is_dir()) or (
            kind == "file" and exists and not path.is_file()
        )
    except OSError:
        exists, wrong = False, False
    placeholder = "/path/to" in value
    if not exists:
        if demo:
            ctx.add(
                Severity.HINT,
                key,
                f"{what} {path} does not exist yet; it is generated on first run",
                code="path-demo",
            )
            return
        fix = "replace the /path/to/... placeholder with the real location" if placeholder else "fix the path"
        if not Path(value).expanduser().is_absolute():
            fix += f" (relative paths resolve against {base_dir})"
        ctx.error(key, f"{what} {path} does not exist", code="path-missing", fix=fix)
    elif wrong:
        ctx.error(key, f"{what} {path} is not a {'folder' if kind == 'dir' else 'file'}", code="path-kind")


def check_main_paths(ctx: Context, data: Mapping[str, Any], base_dir: Path, *, demo: bool) -> None:
    """Model files, adapter sources and (by key) the dataset configs of a main config."""
    _check_output_dir(ctx, data.get("output_dir"), base_dir)
    model = data.get("model")
    if isinstance(model, Mapping):
        from dpipe_tui.profiles.model_schema import MODEL_CLASSES

        cls = MODEL_CLASSES.get(str(model.get("type")))
        for key, value in model.items():
            if cls is not None and key not in cls.model_fields:
                continue  # an unknown key: reported as such, never read by the trainer
            if key.endswith("_path") or key in MODEL_PATH_KEYS:
                check_path(ctx, ("model", key), value, base_dir, demo=demo)  # "path …": the key leads
        for i, entry in enumerate(_list(model.get("text_encoders"))):
            if isinstance(entry, Mapping):
                check_path(
                    ctx,
                    ("model", "text_encoders", i, "path"),
                    entry.get("path"),
                    base_dir,
                    demo=demo,
                    kind="any",
                    what="text encoder",
                )
                for j, p in enumerate(_list(entry.get("paths"))):
                    check_path(
                        ctx,
                        ("model", "text_encoders", i, "paths", j),
                        p,
                        base_dir,
                        demo=demo,
                        what="text encoder",
                    )
        for i, p in enumerate(_list(model.get("merge_adapters"))):
            check_path(
                ctx, ("model", "merge_adapters", i), p, base_dir, demo=demo, kind="file", what="adapter"
            )
    adapter = data.get("adapter")
    if isinstance(adapter, Mapping):
        _check_init_from_existing(ctx, adapter.get("init_from_existing"), base_dir, data, demo=demo)
        for i, entry in enumerate(_list(adapter.get("fuse_adapters"))):
            if isinstance(entry, Mapping):
                check_path(
                    ctx,
                    ("adapter", "fuse_adapters", i, "path"),
                    entry.get("path"),
                    base_dir,
                    demo=demo,
                    kind="file",
                    what="LoRA",
                )


def _check_output_dir(ctx: Context, value: object, base_dir: Path) -> None:
    """output_dir is created by the run, so only a placeholder or a file in its place is wrong."""
    if not isinstance(value, str) or not value:
        return
    path = resolve(value, base_dir)
    if "/path/to" in value:
        ctx.error(
            ("output_dir",),
            f"output folder {value} is still the recipe's placeholder",
            code="path-placeholder",
            fix="set the folder the run folders go into (created when missing), e.g. ~/training_runs/NAME",
        )
    elif path.is_file():
        ctx.error(("output_dir",), f"output folder {path} is a file", code="path-kind")


def _check_init_from_existing(
    ctx: Context, value: object, base_dir: Path, data: Mapping[str, Any], *, demo: bool
) -> None:
    if not isinstance(value, str) or not value:
        return
    key = ("adapter", "init_from_existing")
    path = resolve(value, base_dir)
    is_flux = isinstance(data.get("model"), Mapping) and data["model"].get("type") == "flux"
    if path.is_file() and is_flux:
        return
    if not path.is_dir():
        check_path(ctx, key, value, base_dir, demo=demo, kind="dir", what="init_from_existing folder")
        return
    found = sorted(p.name for p in path.glob("*.safetensors"))
    if len(found) != 1:
        ctx.error(
            key,
            f"init_from_existing folder {path} holds {len(found)} .safetensors files; diffusion-pipe "
            "needs exactly one",
            code="init-from-existing",
            fix="point at a folder with exactly one .safetensors (e.g. a previous epochN/)",
        )


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
