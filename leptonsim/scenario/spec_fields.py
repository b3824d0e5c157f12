"""The JSON Schema of a size spec's fields (zoo.spec.TransformerSpec, zoo.dlrm_spec.DLRMSpec),
from their type hints: one rule for every spec a scenario key is generated from."""

from __future__ import annotations

import typing
from typing import Any

Schema = dict[str, Any]


def field_schema(hint: Any) -> Schema:
    """A field's schema: booleans, counts (integers >= 0), names, ratios (numbers >= 0),
    choices (a Literal's values), widths (a tuple of integers >= 1); anything else is a
    bool | None (qkv_bias, where None means "as bias")."""
    if hint is bool:
        return {"type": "boolean"}
    if hint is int:
        return {"type": "integer", "minimum": 0}
    if hint is str:
        return {"type": "string"}
    if hint is float:
        return {"type": "number", "minimum": 0, "x-magnitude": "dimensionless"}
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return {"enum": list(typing.get_args(hint))}
    if origin in (tuple, list):
        return {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 1}
    return {"type": "boolean"}
