"""From text to a checked, normalised document: TOML, JSON Schema, presets, quantities.

Every failure becomes exactly one ScenarioError whose path is a dotted key path with
list indices (`hardware.units[2].efficiency`). When several things are wrong, the one
that comes first in the file is reported, so the answer never depends on dict order
inside jsonschema.
"""

from __future__ import annotations

import json
import math
import operator
import re
import tomllib
from collections.abc import Iterable, Sequence
from functools import cache, lru_cache
from typing import Any

import jsonschema

from ..errors import QuantityError, ScenarioError, did_you_mean, found
from ..limits import MAGNITUDES, SIZES, check_magnitude, check_size
from ..presets import device_presets, link_presets
from ..quantities import EXAMPLES, parse_quantity
from .bulk import bulk_arrays, thinned, unseen
from .schema import Schema, schema

Segment = str | int
Path = list[Segment]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")
_MISSING = "<nothing>"


# -- paths and wording ----------------------------------------------------------------

def key(k: str) -> str:
    """A key as TOML would write it: bare when it can be, else quoted."""
    return k if _BARE_KEY.match(k) else json.dumps(k, ensure_ascii=False)


def format_path(path: Iterable[Segment]) -> str:
    out = ""
    for seg in path:
        out += f"[{seg}]" if isinstance(seg, int) else (f".{key(seg)}" if out else key(seg))
    return out


def one_of(choices: Sequence[str]) -> str:
    return "one of " + ", ".join(repr(c) for c in choices)


_NOUNS = {
    "time": "a duration", "bytes": "a size", "bandwidth": "a bandwidth",
    "flops": "a FLOP count", "flop_rate": "a compute rate", "power": "a power",
    "energy": "an energy", "energy_per_byte": "an energy per byte", "dimensionless": "a number",
    "price_per_hour": "a price per unit-hour", "objective": "a number",  # x-magnitude kinds
    "parameter_rate": "a parameter rate",
}


def bounds(node: Schema) -> str:
    """'> 0', '>= 0', 'in (0, 1]' from the schema's numeric bounds."""
    lo = next(((b, node[k]) for k, b in (("exclusiveMinimum", "("), ("minimum", "["))
               if k in node), None)
    hi = next(((b, node[k]) for k, b in (("exclusiveMaximum", ")"), ("maximum", "]"))
               if k in node), None)
    if lo and hi:
        return f"in {lo[0]}{lo[1]:g}, {hi[1]:g}{hi[0]}"
    if lo:
        return f"{'>' if lo[0] == '(' else '>='} {lo[1]:g}"
    if hi:
        return f"{'<' if hi[0] == ')' else '<='} {hi[1]:g}"
    return ""


def describe(node: Schema) -> str:
    """What a schema node expects, in words: 'a bandwidth > 0 such as '25 GB/s''."""
    limit = bounds(node)
    limit = f" {limit}" if limit else ""
    if "x-quantity" in node:
        kind = node["x-quantity"]
        example = "" if kind == "dimensionless" else f" such as {EXAMPLES[kind]!r}"
        unit = " with its unit," if "pattern" in node else ""  # a bare number is ambiguous
        return f"{_NOUNS[kind]}{limit}{unit}{example}"
    if "enum" in node:
        return one_of(node["enum"])
    kind = node.get("type")
    if kind == "integer":
        return f"an integer{limit}"
    if kind == "number":
        return f"a number{limit}"
    if kind == "string":
        return "a non-empty string" if node.get("minLength") else "a string"
    if kind == "boolean":
        return "true or false"
    if kind == "object":
        return "a table"
    if kind == "array":
        items = node.get("items", {})
        what = "tables" if items.get("type") == "object" else "strings"
        least = node.get("minItems", 0)
        return f"an array of {what}" + (f" with at least {least} entry" if least else "")
    return "a value"


# -- TOML -------------------------------------------------------------------------------

_LOCATION = re.compile(r"\s*\((at line \d+, column \d+|at end of document)\)$")


def parse_toml(text: str) -> dict[str, Any]:
    """The document of TOML text, nested at most SIZES["nesting"] deep. A leading UTF-8
    byte-order mark (Windows editors write one) carries no content and is skipped."""
    try:
        doc = tomllib.loads(text.removeprefix("\ufeff"))
    except RecursionError:  # tomllib recurses per level of inline arrays and tables
        doc = None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        where = _LOCATION.search(message)
        detail = message[:where.start()] if where else message
        at = where.group(1) if where else "somewhere"
        raise ScenarioError("", "valid TOML", f"<a syntax error {at}>",
                            hint=detail[:1].lower() + detail[1:]) from None
    _check_depth(doc)
    assert doc is not None
    return doc


def _check_depth(doc: dict[str, Any] | None) -> None:
    """Refuse tables and arrays nested deeper than the bound, before anything recurses
    into them (measured without recursion; None: too deep for tomllib to parse)."""
    size = SIZES["nesting"]
    if doc is None or _too_deep(doc, size.maximum):
        path = _path_deeper_than(doc, size.maximum) if doc is not None else []
        raise ScenarioError(format_path(path), f"at most {size.maximum} {size.noun}",
                            f"<more than {size.maximum}>", hint=size.why)


def _containers(node: Any) -> Iterable[tuple[Segment, Any]]:
    pairs = node.items() if isinstance(node, dict) else enumerate(node)
    return ((k, v) for k, v in pairs if isinstance(v, dict | list))


def _too_deep(doc: Any, bound: int) -> bool:
    level = [doc]  # breadth first, a level at a time: a tight loop over a big document
    for _ in range(bound + 1):  # level k holds the containers k deep
        level = [c for node in level for c in (node.values() if isinstance(node, dict)
                                                else node) if isinstance(c, dict | list)]
        if not level:
            return False
    return True


def _path_deeper_than(doc: Any, bound: int) -> Path:
    """A path to a table or array nested more than `bound` deep (one exists)."""
    stack: list[tuple[Any, Path]] = [(doc, [])]
    while stack:
        node, path = stack.pop()
        if len(path) > bound:
            return path
        stack.extend((child, [*path, k]) for k, child in _containers(node))
    raise AssertionError("no path deeper than the bound")


# -- JSON Schema ----------------------------------------------------------------------

@cache
def _validator() -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema())


def segments(at: str | Sequence[Segment]) -> Path:
    """A key path as segments: "workload.model" or ["workload", "model"]; () is the top."""
    return list(at.split(".") if at else []) if isinstance(at, str) else list(at)


def check_structure(doc: dict[str, Any], at: str | Sequence[Segment] = ()) -> None:
    """Raise the first (in file order) JSON Schema violation as one ScenarioError; with
    `at` (a key path such as "workload.model"), `doc` is the table there alone. Long
    arrays of like tables are checked once per shape (see bulk.py). A name the schema
    takes in any case ("x-any-case") is first set to its spelling in the enum, in place."""
    prefix = segments(at)
    node = schema_at(prefix)
    fold_case(doc, node)
    arrays = bulk_arrays(doc, node)
    validator = _validator().evolve(schema=node) if prefix else _validator()
    errors = [_convert(e, prefix) for e in validator.iter_errors(thinned(doc, arrays))]
    for path, items, array in arrays:
        entries = validator.evolve(schema=items)
        for i, entry in unseen(array, entries.is_valid):
            errors.extend(_convert(e, [*prefix, *path, i]) for e in entries.iter_errors(entry))
    if errors:
        errors.sort(key=lambda pe: (_position(doc, pe[0][len(prefix):]), pe[1].path,
                                    pe[1].line()))
        raise errors[0][1]


def fold_case(doc: Any, node: Schema) -> None:
    """Set each string at an "x-any-case" enum of `node` (tables only: no such name sits
    in an array) to the enum's spelling of it: ResNet50 is resnet50."""
    if not isinstance(doc, dict):
        return
    for k, v in doc.items():
        sub = node.get("properties", {}).get(k)
        if not isinstance(sub, dict):
            continue
        if isinstance(v, str) and sub.get("x-any-case"):
            doc[k] = next((e for e in sub["enum"] if e.lower() == v.lower()), v)
        elif isinstance(v, dict):
            fold_case(v, sub)


def _position(doc: Any, path: Path) -> tuple[tuple[int, str], ...]:
    """Where a path points in the file: key order of appearance, array index."""
    out: list[tuple[int, str]] = []
    node = doc
    for seg in path:
        if isinstance(seg, int):
            out.append((seg, ""))
            node = node[seg] if isinstance(node, list) and seg < len(node) else None
        elif isinstance(node, dict) and seg in node:
            out.append((list(node).index(seg), seg))
            node = node[seg]
        else:  # a missing key sorts after every present one
            out.append((1 << 30, seg))
            node = None
    return tuple(out)


_TABLE_KEYWORDS = frozenset({"additionalProperties", "required", "dependentRequired", "oneOf",
                             "minProperties"})


def _convert(err: jsonschema.ValidationError, prefix: Sequence[Segment] = ()
             ) -> tuple[Path, ScenarioError]:
    path: Path = [*prefix, *err.absolute_path]
    node, value, kind = err.schema, err.instance, err.validator
    if not isinstance(node, dict):
        node = {}
    if kind in _TABLE_KEYWORDS and not isinstance(value, dict):
        # JSON Schema applies these to tables only, but `oneOf` of `required`s fails
        # on anything else (every branch passes): the mistake is the missing table
        return path, ScenarioError(format_path(path), "a table", found(value))
    if kind == "additionalProperties":
        props = node.get("properties", {})
        extra = next(k for k in value if k not in props)
        return path + [extra], ScenarioError(
            format_path(path + [extra]), f"a key of {format_path(path) or 'the top level'} "
            f"({', '.join(props)})", f"<unknown key {extra!r}>", hint=did_you_mean(extra, props))
    if kind == "required":
        missing = next(k for k in err.validator_value if k not in value)
        parent = schema_at(path)
        want = describe(parent.get("properties", {}).get(missing, {}))
        return path + [missing], ScenarioError(
            format_path(path + [missing]), want, _MISSING, hint=node.get("x-why", ""))
    if kind == "dependentRequired":
        dependent = next(d for d, needs in err.validator_value.items()
                         if d in value and any(n not in value for n in needs))
        need = next(n for n in err.validator_value[dependent] if n not in value)
        return path + [dependent], ScenarioError(
            format_path(path + [dependent]), f"{need!r} alongside {dependent!r}",
            f"<{dependent!r} without {need!r}>")
    if kind == "oneOf" and all(set(s) == {"required"} for s in err.validator_value):
        names = [s["required"][0] for s in err.validator_value]
        present = [n for n in names if n in value]
        what = "neither" if not present else "both " + " and ".join(map(repr, present))
        return path, ScenarioError(format_path(path), "exactly one of "
                                   + " or ".join(map(repr, names)), f"<{what}>")
    if kind == "anyOf":  # a value of either form (recompute: a mode or a boolean)
        return path, ScenarioError(format_path(path), " or ".join(
            describe(alternative) for alternative in err.validator_value), found(value))
    if kind == "enum":
        return path, ScenarioError(format_path(path), one_of(err.validator_value),
                                   found(value), hint=did_you_mean(value, err.validator_value))
    if kind in ("type", "minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum",
                "minItems", "minLength", "pattern"):
        return path, ScenarioError(format_path(path), describe(node), found(value))
    if kind == "minProperties":
        return path, ScenarioError(format_path(path), "a table with at least one key",
                                   "<an empty table>")
    return path, ScenarioError(format_path(path), err.message, found(value))


def schema_at(path: Sequence[Segment]) -> Schema:
    """The schema node of a key path (an unknown key: its table's additionalProperties)."""
    node = schema_root()
    for seg in path:
        if isinstance(seg, int):
            node = node.get("items", {})
        else:
            sub = node.get("properties", {}).get(seg)
            node = sub if sub is not None else node.get("additionalProperties") or {}
    return node


@cache
def schema_root() -> Schema:
    """The schema, shared read-only inside this package."""
    return schema()


# -- presets, quantities, defaults ---------------------------------------------------

@cache
def _catalogs() -> dict[str, dict[str, dict[str, Any]]]:
    return {"devices": device_presets(), "links": link_presets()}


_IDENTITY_KEYS = frozenset({"name", "count", "preset", "a", "b"})


def normalize(doc: dict[str, Any], at: str | Sequence[Segment] = ()) -> dict[str, Any]:
    """The structurally valid document with presets merged, quantities parsed to SI
    floats and every default the schema gives filled in (a [workload.model] gets a
    [parallel] table of defaults when it has none). With `at`, a key path such as
    "hardware" or "workload.model", `doc` is the table there alone. Raises ScenarioError
    for a value out of range. The input is not modified."""
    path = segments(at)
    if not path and "model" in doc["workload"] and "parallel" not in doc:
        doc = {**doc, "parallel": {}}
    out = _normalize(schema_at(path), doc, path)
    assert isinstance(out, dict)
    return out


def _normalize(node: Schema, value: Any, path: Path) -> Any:
    if "x-quantity" in node:
        return _quantity(node, value, path)
    if isinstance(value, str):
        check_size("text_chars", len(value), format_path(path))
    if node.get("type") == "integer":
        _integer(node, value, path)
    if isinstance(value, float) and not math.isfinite(value):
        raise ScenarioError(format_path(path), f"a finite {describe(node)[2:]}", found(value))
    if "x-magnitude" in node and isinstance(value, int | float) and not isinstance(value, bool):
        _magnitude(node, node["x-magnitude"], value, value, path)
    props = node.get("properties")
    if isinstance(value, dict) and props is not None:
        if "x-preset" in node and "preset" in value:
            value = _merge_preset(node["x-preset"], props, value, path)
        # keys the schema leaves open (a layer's op arguments) pass through as given
        out = {k: _normalize(props[k], v, path + [k]) if k in props else v
               for k, v in value.items()}
        for k, sub in props.items():
            if k not in out and "default" in sub:
                out[k] = _normalize(sub, sub["default"], path + [k])
        return out
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [_normalize(node["items"], v, path + [i]) for i, v in enumerate(value)]
    return value


def _integer(node: Schema, value: Any, path: Path) -> None:
    """JSON Schema counts 1e308 as an integer; a TOML float is not one, and an integer past
    2^53 is not exact in the float arithmetic it meets (an OverflowError at 10**400)."""
    most = SIZES["integer"].maximum
    if isinstance(value, float) or (isinstance(value, int) and abs(value) > most):
        raise ScenarioError(format_path(path), f"{describe(node)} of magnitude at most 2^53",
                            found(value), hint=SIZES["integer"].why)


def _merge_preset(catalog: str, props: Schema, table: dict[str, Any],
                  path: Path) -> dict[str, Any]:
    presets = _catalogs()[catalog]
    name = table["preset"]
    if name not in presets:
        kind = "device" if catalog == "devices" else "link"
        raise ScenarioError(format_path(path + ["preset"]),
                            f"a {kind} preset ({', '.join(presets)})", name,
                            hint=did_you_mean(name, presets))
    shadowed = {s for k in table if k in props for s in props[k].get("x-shadows", ())}
    merged = {k: v for k, v in presets[name].items()
              if k in props and k not in _IDENTITY_KEYS | table.keys() | shadowed}
    return {**table, **merged}


_COMPARE = {"minimum": operator.ge, "exclusiveMinimum": operator.gt,
            "maximum": operator.le, "exclusiveMaximum": operator.lt}


@lru_cache(maxsize=1 << 12, typed=True)  # typed: True and 1 parse differently
def _parse(value: str | int | float, kind: str) -> float:
    return parse_quantity(value, kind)


def _quantity(node: Schema, value: Any, path: Path) -> float:
    try:
        x = _parse(value, node["x-quantity"]) if isinstance(value, str | int | float) \
            else parse_quantity(value, node["x-quantity"])
    except QuantityError as exc:
        expected, hint = _split_detail(exc.expected)
        raise ScenarioError(format_path(path), expected, found(value), hint=hint) from None
    for word, ok in _COMPARE.items():
        if word in node and not ok(x, node[word]):
            raise ScenarioError(format_path(path), describe(node), found(value))
    _magnitude(node, node["x-quantity"], x, value, path)
    return x


def _magnitude(node: Schema, kind: str, x: float, value: Any, path: Path) -> None:
    """Every number the engine computes with stays inside limits.MAGNITUDES."""
    if MAGNITUDES[kind].admits(x):
        return
    zero = node.get("exclusiveMinimum", -1) < 0 and node.get("minimum", 0) <= 0
    check_magnitude(kind, x, format_path(path), _NOUNS[kind], found(value), zero=zero)


def _split_detail(expected: str) -> tuple[str, str]:
    """'a bandwidth such as '25 GB/s' (got a size)' -> ('a bandwidth such as ...', 'got a size')."""
    match = re.fullmatch(r"(.*?) \((.*)\)", expected)
    return (match.group(1), match.group(2)) if match else (expected, "")
