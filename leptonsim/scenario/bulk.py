"""JSON Schema checks of long arrays of like tables (an explicit task list) at the cost
of one check per distinct shape instead of one per entry.

jsonschema spends ~100 us of Python dispatch on each task table, so a 400k-task file
took a minute to check. The tables of such a list differ in their names and numbers,
not in their shape, and for a schema that looks only at keys, types, whether a string
is empty and the sign of a number, two values of the same *skeleton* (that much of
them) are valid alike. So an entry whose skeleton was seen valid is skipped; the
others are checked by jsonschema as before, so every error is exactly what a full
check reports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

Schema = dict[str, Any]

# Keywords whose verdict on a value depends on its skeleton alone (bounds at 0 and
# minLength <= 1 only; annotations never decide anything).
_SOUND = frozenset({
    "type", "properties", "additionalProperties", "required", "dependentRequired", "oneOf",
    "allOf", "anyOf", "if", "then", "else", "not", "items", "minLength", "minItems",
    "minimum", "exclusiveMinimum", "description", "default", "title",
    "x-quantity", "x-magnitude", "x-preset", "x-why", "x-claim-key", "x-any-case",
})


def sound(node: Any) -> bool:
    """Whether values with one skeleton are all valid or all invalid under `node`."""
    if not isinstance(node, dict):
        return isinstance(node, bool)
    for word, arg in node.items():
        if word not in _SOUND:
            return False
        if word == "minLength" and arg > 1 or word in ("minimum", "exclusiveMinimum") and arg != 0:
            return False
        if word == "properties" and not all(sound(s) for s in arg.values()):
            return False
        if word in ("oneOf", "allOf", "anyOf") and not all(sound(s) for s in arg):
            return False
        if word in ("items", "if", "then", "else", "not", "additionalProperties") and \
                not sound(arg):
            return False
    return True


def skeleton(value: Any) -> Any:
    """Keys and order, array lengths, types, empty or not, sign and integrality."""
    if isinstance(value, dict):
        return ("d", tuple((k, skeleton(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("l", tuple(skeleton(v) for v in value))
    if isinstance(value, str):
        return ("s", bool(value))
    if isinstance(value, int | float) and not isinstance(value, bool):
        whole = float(value).is_integer() if math.isfinite(value) else None
        return (type(value).__name__, value > 0, value == 0, value < 0, whole)
    return (type(value).__name__, value if isinstance(value, bool) else None)


def bulk_arrays(doc: dict[str, Any], root: Schema) -> list[tuple[list[Any], Schema, list[Any]]]:
    """(path, items schema, array) of every array of more than one entry that lies
    under tables only and whose entries can be checked by skeleton."""
    out = []
    stack: list[tuple[Any, Schema, list[Any]]] = [(doc, root, [])]
    while stack:
        value, node, path = stack.pop()
        if isinstance(value, dict):
            props = node.get("properties", {})
            stack.extend((v, props[k], [*path, k]) for k, v in value.items()
                         if isinstance(props.get(k), dict))
        elif (isinstance(value, list) and len(value) > 1 and node.get("type") == "array"
              and set(node) <= {"type", "items", "description", "minItems"}
              and node.get("minItems", 0) <= 1 and sound(node.get("items"))):
            out.append((path, node["items"], value))
    return out


def thinned(doc: dict[str, Any], arrays: list[tuple[list[Any], Schema, list[Any]]]
            ) -> dict[str, Any]:
    """The document with each bulk array cut to its first entry (copied along the way)."""
    if not arrays:  # `doc` may be any value an override put there
        return doc
    out = dict(doc)
    for path, _, array in arrays:
        node = out
        for seg in path[:-1]:
            node[seg] = dict(node[seg])
            node = node[seg]
        node[path[-1]] = array[:1]
    return out


def unseen(array: list[Any], valid: Callable[[Any], bool]) -> Iterator[tuple[int, Any]]:
    """(index, entry) of the entries after the first whose skeleton is not known valid."""
    verdicts: dict[Any, bool] = {}
    for i in range(1, len(array)):
        shape = skeleton(array[i])
        ok = verdicts.get(shape)
        if ok is None:
            ok = verdicts[shape] = valid(array[i])
        if not ok:
            yield i, array[i]
