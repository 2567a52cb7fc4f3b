"""The editor's form, generated from the pydantic schema (never written field by field).

Why from the schema: the form, the validator and the help line then cannot disagree; a key added to
a model class shows up in the form with its docstring as help. Each table becomes a section; the
``[model]`` section holds only the keys of the chosen ``model.type``; arrays of tables
(``[[directory]]``, ``eval_datasets``) get one section per entry in the file. A field's ``kind``
says which control edits it: ``enum`` (a select), ``bool`` (a switch, or a select when it may be
unset), ``int``/``float`` (numeric inputs), ``str``/``path`` (text; a path shows whether it exists),
and ``toml`` for everything else (lists, mixed unions), typed as a TOML value.
"""

from __future__ import annotations

import math
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import tomlkit
from pydantic_core import PydanticUndefined

from dpipe_tui.profiles import dataset_schema
from dpipe_tui.profiles.context import SECRET_KEYS, section_classes
from dpipe_tui.profiles.model_schema import MODEL_CLASSES
from dpipe_tui.profiles.pathchecks import MODEL_PATH_KEYS
from dpipe_tui.profiles.schema import MainConfig

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from pydantic import BaseModel
    from pydantic.fields import FieldInfo

FieldKind = Literal["enum", "bool", "int", "float", "str", "path", "toml"]
KeyPath = tuple[str | int, ...]

UNSET = ""
"""What an empty control means: the key is removed (the trainer's default applies)."""

_PATH_NAMES = (
    frozenset(
        {
            "output_dir",
            "dataset",
            "path",
            "config",
            "mask_path",
            "control_path",
            "default_mask_file",
            "init_from_existing",
        }
    )
    | MODEL_PATH_KEYS
)
_UNITS = (
    ("_minutes", "min"),
    ("_steps", "steps"),
    ("_epochs", "epochs"),
    ("_examples", "examples"),
    ("_timeout_s", "s"),
    ("blocks_to_swap", "blocks"),
    ("warmup_steps", "steps"),
    ("max_steps", "steps"),
    ("epochs", "epochs"),
)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One key of the form."""

    key: KeyPath
    kind: FieldKind
    help: str
    required: bool
    default: str
    """The default as TOML text (``""`` when required or without one)."""
    choices: tuple[str, ...] = ()
    """For ``enum``: the allowed values as TOML-free text (strings bare, booleans ``true``/``false``)."""
    optional: bool = False
    """The key may be absent (its control can be emptied)."""
    unit: str = ""
    minimum: float | None = None
    secret: bool = False
    """A secret (the W&B key): the form refuses a value; it comes from the environment."""

    @property
    def name(self) -> str:
        """The key's own name."""
        return str(self.key[-1])

    @property
    def dotted(self) -> str:
        """``model.dtype``, ``directory[0].path``."""
        out = ""
        for part in self.key:
            out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
        return out


@dataclass(slots=True)
class SectionSpec:
    """One table (or array-of-tables entry) of the form."""

    title: str
    key: KeyPath
    fields: list[FieldSpec] = field(default_factory=list)


def _strip(annotation: Any) -> tuple[list[Any], bool]:
    """The union members of an annotation without ``None`` and ``Annotated``; and whether None was one."""
    members: list[Any] = []
    optional = False
    stack = [annotation]
    while stack:
        ann = stack.pop(0)
        origin = typing.get_origin(ann)
        if ann is type(None) or ann is None:
            optional = True
        elif origin is typing.Annotated:
            stack.insert(0, typing.get_args(ann)[0])
        elif origin in (typing.Union, types.UnionType):
            stack[:0] = list(typing.get_args(ann))
        else:
            members.append(ann)
    return members, optional


def _kind(name: str, members: list[Any]) -> tuple[FieldKind, tuple[str, ...]]:
    literals = [typing.get_args(m) for m in members if typing.get_origin(m) is Literal]
    if literals and len(literals) == len(members):
        values = [v for group in literals for v in group]
        if all(isinstance(v, str) for v in values):
            return "enum", tuple(values)
    if members == [bool]:
        return "bool", ()
    if members == [int]:
        return "int", ()
    if set(members) == {float, int}:
        return "float", ()
    if members == [str]:
        return ("path" if name in _PATH_NAMES or name.endswith(("_path", "_dir")) else "str"), ()
    return "toml", ()


def _minimum(info: FieldInfo) -> float | None:
    for meta in [*info.metadata, *_annotated_metadata(info.annotation)]:
        for attr in ("ge", "gt"):
            value = getattr(meta, attr, None)
            if isinstance(value, int | float):
                return float(value)
    return None


def _annotated_metadata(annotation: Any) -> Iterator[Any]:
    for arg in typing.get_args(annotation):
        if typing.get_origin(arg) is typing.Annotated:
            yield from arg.__metadata__
            for meta in arg.__metadata__:
                yield from getattr(meta, "metadata", ())
        yield from _annotated_metadata(arg)


def _default_text(info: FieldInfo) -> str:
    default = info.default
    if default is PydanticUndefined or default is None or (isinstance(default, list) and not default):
        return ""
    return value_text(default)


def value_text(value: Any) -> str:
    """A value as the form shows it: strings bare, everything else as TOML."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    return str(tomlkit.item(value).as_string())


def _unit(name: str) -> str:
    return next((unit for suffix, unit in _UNITS if name == suffix or name.endswith(suffix)), "")


def _fields(cls: type[BaseModel], prefix: KeyPath) -> tuple[list[FieldSpec], list[tuple[str, Any]]]:
    """The scalar fields of ``cls`` and its nested (name, annotation) tables."""
    out: list[FieldSpec] = []
    nested: list[tuple[str, Any]] = []
    for name, info in cls.model_fields.items():
        if section_classes(info.annotation):
            nested.append((name, info.annotation))
            continue
        members, _ = _strip(info.annotation)
        kind, choices = _kind(name, members)
        required = info.is_required()
        out.append(
            FieldSpec(
                key=(*prefix, name),
                kind=kind,
                help=info.description or "",
                required=required,
                default=_default_text(info),
                choices=choices,
                optional=not required,
                unit=_unit(name) if kind in ("int", "float") else "",
                minimum=_minimum(info) if kind in ("int", "float") else None,
                secret=name in SECRET_KEYS,
            )
        )
    return out, nested


def _type_field(key: KeyPath) -> FieldSpec:
    return FieldSpec(
        key=key,
        kind="enum",
        help="The model diffusion-pipe trains. Required; it decides which other [model] keys are read.",
        required=True,
        default="",
        choices=tuple(MODEL_CLASSES),
    )


def _model_section(data: Mapping[str, Any]) -> SectionSpec:
    model = data.get("model") if isinstance(data.get("model"), dict) else {}
    model_type = model.get("type") if isinstance(model, dict) else None
    section = SectionSpec("model", ("model",), [_type_field(("model", "type"))])
    cls = MODEL_CLASSES.get(str(model_type))
    if cls is not None:
        fields, _ = _fields(cls, ("model",))
        section.fields.extend(f for f in fields if f.name != "type")
    return section


def _entries(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    return len(value) if isinstance(value, list) else 0


def main_sections(data: Mapping[str, Any]) -> list[SectionSpec]:
    """The form of a main profile whose parsed table is ``data``."""
    top, nested = _fields(MainConfig, ())
    sections = [SectionSpec("general", (), top)]
    for name, annotation in nested:
        if name == "model":
            sections.append(_model_section(data))
            continue
        cls = section_classes(annotation)[0]
        if typing.get_origin(annotation) is list:
            for i in range(_entries(data, name)):
                fields, _ = _fields(cls, (name, i))
                sections.append(SectionSpec(f"{name}[{i}]", (name, i), fields))
            continue
        if name == "lora" and "lora" not in data:
            continue  # the legacy table: only shown where a file still has it
        fields, _ = _fields(cls, (name,))
        sections.append(SectionSpec(name, (name,), fields))
    return sections


def dataset_sections(data: Mapping[str, Any]) -> list[SectionSpec]:
    """The form of a dataset config whose parsed table is ``data``."""
    top, _ = _fields(dataset_schema.DatasetConfig, ())
    sections = [SectionSpec("dataset", (), top)]
    for i in range(_entries(data, "directory")):
        fields, _ = _fields(dataset_schema.DirectoryConfig, ("directory", i))
        sections.append(SectionSpec(f"directory[{i}]", ("directory", i), fields))
    return sections


def keys_not_applying(data: Mapping[str, Any], model_type: str) -> list[str]:
    """The ``[model]`` keys of ``data`` that a model of ``model_type`` does not read."""
    model = data.get("model")
    cls = MODEL_CLASSES.get(model_type)
    if not isinstance(model, dict) or cls is None:
        return []
    return [k for k in model if k not in cls.model_fields]


class FormValueError(ValueError):
    """Text a control holds is not a value of its field (says what is expected)."""


def parse_value(spec: FieldSpec, text: str) -> Any:
    """The value a control's ``text`` stands for (``UNSET`` → None: remove the key).

    Raises:
        FormValueError: not a number for a numeric field, not a choice, not a TOML value.
    """
    text = text.strip()
    if text == UNSET:
        return None
    if spec.kind == "enum":
        if text not in spec.choices:
            raise FormValueError(f"{spec.dotted}: one of {', '.join(spec.choices)}")
        return text
    if spec.kind == "bool":
        if text not in ("true", "false"):
            raise FormValueError(f"{spec.dotted}: true or false")
        return text == "true"
    if spec.kind in ("int", "float"):
        try:
            number: int | float = int(text) if spec.kind == "int" else float(text)
        except ValueError:
            what = "a whole number" if spec.kind == "int" else "a number"
            raise FormValueError(f"{spec.dotted}: {text!r} is not {what}") from None
        if spec.kind == "float" and number == int(number) and "." not in text and "e" not in text.lower():
            number = int(number)  # 1 stays 1 (diffusion-pipe accepts an int where a float goes)
        if not math.isfinite(number):
            raise FormValueError(f"{spec.dotted}: {text!r} is not a finite number")
        if spec.minimum is not None and number < spec.minimum:
            raise FormValueError(f"{spec.dotted}: at least {spec.minimum:g}")
        return number
    if spec.kind == "toml":
        try:
            return tomlkit.parse(f"v = {text}\n").unwrap()["v"]
        except Exception as exc:  # tomlkit raises several error types
            raise FormValueError(f"{spec.dotted}: not a TOML value ({exc})") from None
    return text
