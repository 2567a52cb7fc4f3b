"""Loading and checking the main and dataset TOML for the built-in engine (torch-free).

Why a separate, torch-free module: a bad config must fail before any model is loaded (and
before torch is even imported), with findings in the validator's one-line form
``file:line:col: error: key: message``. The project's profile validator
(``dpipe_tui.profiles.validate_file``) always runs first; the engine adds the checks only it can
make (which model types, optimizers and adapters *this* trainer implements).

The config stays a plain dict, like train.py's, so keys the engine does not know pass through
(diffusion-pipe ignores unknown keys too). Relative paths are resolved against the main profile's
directory (design contract for the builtin engine); frozen copies carry absolute paths anyway.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DTYPES = ("float32", "float16", "bfloat16", "float8", "float8_e4m3fn", "float8_e5m2")
MODEL_TYPES = ("chroma",)
ADAPTER_TYPES = ("lora",)
OPTIMIZERS = ("adamw", "adamw_optimi", "stableadamw", "sgd")
SCHEDULERS = ("constant", "linear", "cosine")
_MAIN_PATH_KEYS = (("output_dir",), ("dataset",), ("model", "diffusers_path"), ("model", "transformer_path"))
_DIR_PATH_KEYS = ("path", "mask_path", "control_path", "default_mask_file")


@dataclass(frozen=True)
class Problem:
    """One config finding, printed as ``file:line:col: severity: key: message``."""

    file: Path
    key: str
    message: str
    line: int | None = None
    column: int | None = None
    severity: str = "error"

    def render(self) -> str:
        """Return the validator's one-line form."""
        return f"{self.file}:{self.line or 1}:{self.column or 1}: {self.severity}: {self.key}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be trained; carries every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.render() for p in problems))
        self.problems = problems


def locate(text: str, dotted: str) -> tuple[int | None, int | None]:
    """Best-effort (line, column) of a dotted key in TOML text; (None, None) when absent."""
    *tables, leaf = dotted.split(".")
    lines = text.splitlines()
    start = 0
    if tables:
        header = re.compile(r"^\s*\[+\s*" + re.escape(".".join(tables)) + r"\s*\]+")
        start = next((i for i, line in enumerate(lines) if header.match(line)), -1)
        if start < 0:
            return None, None
    pattern = re.compile(r"^(\s*)" + re.escape(leaf) + r"\s*=")
    for i in range(start, len(lines)):
        if i > start and tables and lines[i].lstrip().startswith("["):
            break
        if match := pattern.match(lines[i]):
            return i + 1, len(match.group(1)) + 1
    return None, None


def _read_toml(path: Path) -> tuple[dict[str, Any], str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(path, "config", f"cannot read file: {exc.strerror}")]) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+), column (\d+)", str(exc))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        raise ConfigError([Problem(path, "toml", f"invalid TOML: {exc}", line, col)]) from exc
    # Round-trip through JSON like train.py (plain dicts/lists only).
    return json.loads(json.dumps(data)), text


def _resolve(base: Path, value: Any) -> Any:
    if isinstance(value, str) and value and not Path(value).expanduser().is_absolute():
        return str((base / value).resolve())
    if isinstance(value, str) and value:
        return str(Path(value).expanduser())
    return value


def resolve_paths(config: dict[str, Any], base: Path) -> None:
    """Make the main config's path keys absolute against ``base`` (in place)."""
    for keys in _MAIN_PATH_KEYS:
        table = config
        for k in keys[:-1]:
            table = table.get(k, {}) if isinstance(table.get(k), dict) else {}
        if keys[-1] in table:
            table[keys[-1]] = _resolve(base, table[keys[-1]])
    adapter = config.get("adapter")
    if isinstance(adapter, dict) and "init_from_existing" in adapter:
        adapter["init_from_existing"] = _resolve(base, adapter["init_from_existing"])
    for entry in config.get("eval_datasets", []) or []:
        if isinstance(entry, dict) and "config" in entry:
            entry["config"] = _resolve(base, entry["config"])


def load_dataset_config(path: Path, base: Path) -> dict[str, Any]:
    """Read a dataset TOML and make its directory paths absolute against ``base``."""
    data, _ = _read_toml(path)
    for directory in data.get("directory", []) or []:
        for key in _DIR_PATH_KEYS:
            if key in directory:
                directory[key] = _resolve(base, directory[key])
    return data


def _project_findings(path: Path) -> list[Problem]:
    """Errors from the project's validator (a hard dependency: skipping it silently would let a
    profile the CLI refuses train here)."""
    from dpipe_tui.profiles import Severity, validate_file

    report = validate_file(path, base_dir=path.parent)
    return [
        Problem(Path(f.file or path), f.key, f.message, f.line, f.column)
        for f in report.findings
        if f.severity is Severity.ERROR
    ]


def engine_checks(config: dict[str, Any], path: Path, text: str) -> list[Problem]:
    """The checks of what this engine implements (run after the project's validator)."""
    out: list[Problem] = []

    def bad(key: str, message: str) -> None:
        line, col = locate(text, key)
        out.append(Problem(path, key, message, line, col))

    for key in ("output_dir", "dataset", "epochs"):
        if key not in config:
            bad(key, f"required key '{key}' is missing")
    if not any(k in config for k in ("save_every_n_epochs", "save_every_n_steps", "save_every_n_examples")):
        bad("save_every_n_epochs", "set at least one of save_every_n_epochs / save_every_n_steps / _examples")
    model = config.get("model")
    if not isinstance(model, dict):
        bad("model", "the [model] table is required")
        model = {}
    mtype = model.get("type")
    if mtype not in MODEL_TYPES:
        bad("model.type", f"model type {mtype!r} is not available in the built-in engine; available: chroma")
    for key in ("dtype", "transformer_dtype"):
        if key in model and model[key] not in DTYPES:
            bad(f"model.{key}", f"unknown dtype {model[key]!r}; one of {', '.join(DTYPES)}")
    if "dtype" not in model:
        bad("model.dtype", "required key 'dtype' is missing")
    random_init = bool((config.get("dpipe_tui") or {}).get("random_init", False))
    for key in ("diffusers_path",) + (() if random_init else ("transformer_path",)):
        if key not in model:
            bad(f"model.{key}", f"required key '{key}' is missing")
    adapter = config.get("adapter")
    if isinstance(adapter, dict):
        if adapter.get("type") not in ADAPTER_TYPES:
            bad("adapter.type", f"adapter type {adapter.get('type')!r} is not available; available: lora")
        if "alpha" in adapter:
            bad("adapter.alpha", "alpha is forced to rank (as diffusion-pipe); remove alpha")
        if not isinstance(adapter.get("rank"), int) or adapter["rank"] <= 0:
            bad("adapter.rank", "rank must be a positive integer")
    optimizer = config.get("optimizer")
    if not isinstance(optimizer, dict) or "type" not in optimizer:
        bad("optimizer.type", "the [optimizer] table with a type is required")
    elif str(optimizer["type"]).lower() not in OPTIMIZERS:
        bad(
            "optimizer.type",
            f"optimizer {optimizer['type']!r} is not available in the built-in engine; "
            f"available: {', '.join(OPTIMIZERS)}",
        )
    if config.get("lr_scheduler", "constant") not in SCHEDULERS:
        bad("lr_scheduler", f"unknown lr_scheduler; one of {', '.join(SCHEDULERS)}")
    if config.get("activation_checkpointing") not in (None, False, True):
        bad("activation_checkpointing", "the built-in engine supports only true/false")
    if config.get("blocks_to_swap", 0):
        bad("blocks_to_swap", "block swapping is not available in the built-in engine")
    for entry in config.get("eval_datasets", []) or []:
        if not isinstance(entry, dict) or "name" not in entry or "config" not in entry:
            bad("eval_datasets", "each entry must be a table {name = ..., config = ...}")
    return out


def _path_checks(config: dict[str, Any], path: Path, text: str) -> list[Problem]:
    out = []
    model = config.get("model") or {}
    random_init = bool((config.get("dpipe_tui") or {}).get("random_init", False))
    checks = [("dataset", config.get("dataset")), ("model.diffusers_path", model.get("diffusers_path"))]
    if not random_init:
        checks.append(("model.transformer_path", model.get("transformer_path")))
    checks += [(f"eval_datasets.{e.get('name')}", e.get("config")) for e in config.get("eval_datasets") or []]
    for key, value in checks:
        if isinstance(value, str) and not Path(value).exists():
            line, col = locate(text, key)
            out.append(Problem(path, key, f"path does not exist: {value}", line, col))
    return out


def load_config(path: str | Path, *, check_paths: bool = True) -> dict[str, Any]:
    """Load, check and normalise a main TOML for training.

    Args:
        path: the main profile (``--config``).
        check_paths: also require the dataset/model paths to exist.

    Returns:
        The config dict with absolute paths and ``_config_path`` / ``_base_dir`` set.

    Raises:
        ConfigError: with every finding, before anything heavy happens.
    """
    path = Path(path).expanduser().resolve()
    config, text = _read_toml(path)
    problems = _project_findings(path)
    problems += engine_checks(config, path, text)
    base = path.parent
    resolve_paths(config, base)
    if check_paths and not problems:
        problems += _path_checks(config, path, text)
    if problems:
        raise ConfigError(problems)
    config["_config_path"] = str(path)
    config["_base_dir"] = str(base)
    return config
