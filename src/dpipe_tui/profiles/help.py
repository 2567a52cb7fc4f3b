"""Help text of a config key, from the schema's attribute docstrings (the editor's help line).

Why from the schema: the help the editor shows and the rules the validator applies come from one
place, so they cannot drift apart.
"""

from __future__ import annotations

import ast
import functools
import inspect
import itertools
import textwrap
from typing import Literal

from pydantic import BaseModel

from dpipe_tui.profiles import dataset_schema
from dpipe_tui.profiles.context import section_classes
from dpipe_tui.profiles.document import KeyPathLike, parse_key_path
from dpipe_tui.profiles.model_schema import MODEL_CLASSES
from dpipe_tui.profiles.schema import MainConfig


@functools.cache
def _attribute_docs(cls: type[BaseModel]) -> dict[str, str]:
    """Attribute docstrings read from the source, for models without ``use_attribute_docstrings``."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not (isinstance(klass, type) and issubclass(klass, BaseModel)) or klass is BaseModel:
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in itertools.pairwise(body):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = inspect.cleandoc(nxt.value.value)
    return docs


def _walk(cls: type[BaseModel] | None, path: list[str]) -> str | None:
    description: str | None = None
    for part in path:
        field = cls.model_fields.get(part) if cls is not None else None
        if field is None:
            return None
        description = field.description or (_attribute_docs(cls).get(part) if cls is not None else None)
        nested = section_classes(field.annotation)
        cls = nested[0] if nested else None
    return description


def field_help(
    key_path: KeyPathLike, *, model_type: str | None = None, kind: Literal["main", "dataset"] | None = None
) -> str | None:
    """The documented meaning and default of a key, or None for an unknown key.

    Args:
        key_path: ``"model.transformer_path"``, ``"directory[0].path"`` or a tuple path.
        model_type: pick the ``[model]`` class of this type (else the first type that has the key).
        kind: "main" or "dataset"; None tries the main config first, then the dataset config.
    """
    path = [p for p in parse_key_path(key_path) if isinstance(p, str)]
    if not path:
        return None
    if kind != "dataset":
        if path[:2] == ["model", "type"] and len(path) == 2 and model_type not in MODEL_CLASSES:
            return (
                "The model diffusion-pipe trains. Required; it decides which other [model] keys are "
                "read. One of: " + ", ".join(MODEL_CLASSES)
            )
        if path[0] == "model" and len(path) > 1:
            classes = (
                [MODEL_CLASSES[model_type]] if model_type in MODEL_CLASSES else list(MODEL_CLASSES.values())
            )
            for cls in classes:
                if path[1] in cls.model_fields:
                    return _walk(cls, path[1:])
            return None
        found = _walk(MainConfig, path)
        if found is not None or kind == "main":
            return found
    return _walk(dataset_schema.DatasetConfig, path)
