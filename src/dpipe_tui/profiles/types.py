"""Shared field types for the config schemas.

Why strict types: diffusion-pipe uses TOML values as they come (``"true"`` is not true, ``'4'`` is
not 4), so our models must not coerce either. Floats accept integers (``gradient_clipping = 1`` is
valid TOML for diffusion-pipe), lists stand for TOML arrays.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr

Int = StrictInt
Float = StrictFloat | StrictInt
Bool = StrictBool
Str = StrictStr
PosInt = Annotated[StrictInt, Field(ge=1)]
NonNegInt = Annotated[StrictInt, Field(ge=0)]

DTYPES = ("float32", "float16", "bfloat16", "float8", "float8_e4m3fn", "float8_e5m2")
"""diffusion-pipe's DTYPE_MAP keys (spec §2.2); anything else raises KeyError there."""

Dtype = Literal["float32", "float16", "bfloat16", "float8", "float8_e4m3fn", "float8_e5m2"]


class Section(BaseModel):
    """Base of every table model: strict, unknown keys kept (reported as findings, not errors)."""

    model_config = ConfigDict(strict=True, extra="allow", use_attribute_docstrings=True)
