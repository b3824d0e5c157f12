"""The pipeline's second stage, variants and overrides: dotted key paths checked against
the schema, applied to a copy of a document (`overridden`, the one way both a variant and
a sweep point change a document), and errors found under an override pointed back at
the override's key."""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ScenarioError, closest, found
from ..limits import check_size
from .validate import Path, check_structure, format_path, key, schema_root

Doc = dict[str, Any]


@dataclass(frozen=True)
class Override:
    """Set the document at `path` to `value`; `where` is the key that says so, for errors."""

    path: Path
    value: Any
    where: str


def overridden(doc: Doc, overrides: Iterable[Override]) -> Doc:
    """A copy of `doc` with every override applied in order, checked against the schema.
    `doc` has passed check_structure, and the schema's root constrains only which tables
    there are, so only the top-level tables an override touched are checked again: a
    variant costs what it changes, not what the file holds (125,000 unit tables)."""
    out = copy.deepcopy(doc)
    touched = set()
    for o in overrides:
        apply_override(out, o.path, copy.deepcopy(o.value), o.where)
        touched.add(o.path[0])
    for table in (t for t in out if t in touched):  # in file order, as the first error is
        check_structure(out[table], [table])
    return out


@dataclass(frozen=True)
class Variant:
    """One document of a scenario file: a variant's, or the base's ("") when the file has
    no variants, with the key paths its overrides set (to point errors back at them)."""

    name: str
    doc: Doc
    overrides: dict[str, Path] = field(default_factory=dict)

    def relocate(self, err: ScenarioError) -> ScenarioError:
        """An error found in this document, at the variant's key when it lies under one
        (an error at a key of the variant's table already names it)."""
        if not self.name or err.path.startswith(f"variants.{key(self.name)}."):
            return err
        return relocate(err, self.name, self.overrides)


def variants(doc: Doc) -> list[Variant]:
    """Stage 2: the document of each [variants.*] table (by name), the base with that
    variant's overrides applied; the base alone when there are none. `doc` has passed
    check_structure."""
    base = {k: v for k, v in doc.items() if k != "variants"}
    tables: dict[str, Doc] = doc.get("variants", {})  # optional, and without a default
    if not tables:
        return [Variant("", base)]
    out = []
    for name in sorted(tables):
        check_size("variant_name_chars", len(name), "variants")
        paths = {k: parse_key_path(name, k) for k in tables[name]}
        variant = Variant(name, {}, paths)
        try:
            changed = overridden(base, (Override(paths[k], v, variant_path(name, k))
                                        for k, v in tables[name].items()))
        except ScenarioError as err:
            raise variant.relocate(err) from None
        out.append(Variant(name, changed, paths))
    return out

_SEGMENT = re.compile(r"([^.\[\]]+)((?:\[\d+\])*)")


def variant_path(variant: str, dotted: str) -> str:
    return f"variants.{key(variant)}.{json.dumps(dotted, ensure_ascii=False)}"


def parse_key_path(variant: str, dotted: str, where: str | None = None) -> Path:
    """The segments of a variant's key path, checked against the schema; `where` names
    it in errors (default: the variant's key)."""
    where = where or variant_path(variant, dotted)
    parts = dotted.split(".")
    matches = [_SEGMENT.fullmatch(p) for p in parts]
    example = "a key path such as 'workload.generator.kind' or 'hardware.units[0].count'"
    if not dotted or not all(matches):
        raise ScenarioError(where, example, dotted)
    node = schema_root()
    out: Path = []
    for i, m in enumerate(matches):
        assert m is not None
        name = m.group(1)
        props = node.get("properties", {}) if node.get("type") == "object" else {}
        if node.get("type") == "array":
            raise ScenarioError(where, f"a key path of the scenario format ({format_path(out)}"
                                f" is an array: index it, as in {format_path(out)}[0].{name})",
                                dotted)
        if name not in props or (not out and name == "variants"):
            choices = [k for k in props if out or k != "variants"]
            close = closest(name, choices)
            fixed = ".".join([*parts[:i], close + m.group(2), *parts[i + 1:]]) if close else ""
            scope = format_path(out) or "the top level"
            raise ScenarioError(where, f"a key path of the scenario format ({name!r} is not a "
                                f"key of {scope})", dotted,
                                hint=f"did you mean {fixed!r}?" if fixed else "")
        out.append(name)
        node = props[name]
        for index in re.findall(r"\[(\d+)\]", m.group(2)):
            if node.get("type") != "array":
                raise ScenarioError(where, f"a key path of the scenario format "
                                    f"({format_path(out)} is not an array)", dotted)
            out.append(int(index))
            node = node["items"]
    return out


def apply_override(doc: dict[str, Any], path: Path, value: Any, where: str) -> None:
    """Set doc at path to value, creating missing tables on the way. Another override
    may have put a scalar or an array where the path goes on: that is refused here."""
    node: Any = doc
    for depth, seg in enumerate(path):
        here = format_path(path[:depth])
        if isinstance(seg, int):
            if not isinstance(node, list):
                raise ScenarioError(where, f"an array at {here} to index", found(node))
            if seg >= len(node):
                raise ScenarioError(where, f"an index of an existing entry of {here} "
                                    f"(it has {len(node)})", f"<index {seg}>")
        elif not isinstance(node, dict):
            raise ScenarioError(where, f"a table at {here or 'the top level'} to set "
                                f"{seg!r} in", found(node))
        elif seg not in node and depth + 1 < len(path):
            node[seg] = [] if isinstance(path[depth + 1], int) else {}
        if depth + 1 == len(path):
            node[seg] = value
        else:
            node = node[seg]


def relocate(err: ScenarioError, variant: str, overrides: dict[str, Path]) -> ScenarioError:
    """An error found in a variant: point at the variant's key when it lies under one."""
    for dotted, path in overrides.items():
        base = format_path(path)
        if err.path == base or err.path.startswith((base + ".", base + "[")):
            return type(err)(variant_path(variant, dotted) + err.path[len(base):],
                             err.expected, err.found, file=err.file, hint=err.hint)
    note = f"in variant {variant!r}"
    hint = f"{err.hint}; {note}" if err.hint else note
    return type(err)(err.path, err.expected, err.found, file=err.file, hint=hint)
