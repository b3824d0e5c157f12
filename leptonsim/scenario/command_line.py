"""What the command line changes in a scenario file: `--set KEY=VALUE` overrides, applied
after the file's own variants (the command line has the last word), and `--variant NAME`,
which keeps one variant. Both go through the same key-path check and `overridden` as a
variant's overrides, so `--set` refuses what a variant would refuse, in one line that
names the flag."""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError, did_you_mean
from .validate import Path, Schema, format_path, schema_at
from .variants import Override, Variant, overridden, parse_key_path


@dataclass(frozen=True)
class CommandLine:
    """The `--set` overrides (in order) and the `--variant` to keep (None: every one)."""

    sets: tuple[Override, ...] = ()
    variant: str | None = None

    @classmethod
    def parse(cls, sets: Sequence[str] = (), variant: str | None = None,
              file: str = "<scenario>") -> CommandLine:
        """The flags of a command on scenario `file` (which a mistake in them names)."""
        try:
            return cls(tuple(parse_set(s) for s in sets), variant)
        except ScenarioError as err:
            raise err.in_file(file) from None

    def apply(self, v: Variant) -> Variant:
        """The variant's document with every --set applied; an error under a set key
        points at its flag."""
        if not self.sets:
            return v
        try:
            return Variant(v.name, overridden(v.doc, self.sets), v.overrides)
        except ScenarioError as err:
            raise self.relocate(err) from None

    def relocate(self, err: ScenarioError) -> ScenarioError:
        """An error at or under a key a --set changed, named as that --set."""
        for o in reversed(self.sets):  # the last set of a key is the one that stands
            base = format_path(o.path)
            if err.path == base or err.path.startswith((base + ".", base + "[")):
                return type(err)(o.where + err.path[len(base):], err.expected, err.found,
                                 file=err.file, hint=err.hint)
        return err

    def settings(self, v: Variant) -> tuple[tuple[str, Any], ...]:
        """The keys `v` and the command line set (dotted, as written) and their values."""
        mine: dict[str, Any] = {}
        for dotted, path in v.overrides.items():
            mine.update(_leaves(dotted, _at(v.doc, path)))
        for o in self.sets:
            mine.update(_leaves(o.where.removeprefix("--set "), o.value))
        return tuple(mine.items())

    def side_by_side(self, docs: list[tuple[Variant, dict[str, Any]]]
                     ) -> list[tuple[tuple[str, Any], ...]]:
        """Per variant, every key some variant or --set gave: its value as written where
        this variant gave it, else its normalised value (where it has one)."""
        given = [dict(self.settings(v)) for v, _ in docs]
        keys = list(dict.fromkeys(k for g in given for k in g))
        out = []
        for mine, (_, doc) in zip(given, docs, strict=True):
            for k in keys:
                if k not in mine and (value := _find(doc, k)) is not None:
                    mine[k] = value
            out.append(tuple((k, mine[k]) for k in keys if k in mine))
        return out

    def chosen(self, variants: list[Variant]) -> list[Variant]:
        """The variants to run: the one --variant names, or all of them."""
        if self.variant is None:
            return variants
        names = [v.name for v in variants if v.name]
        if not names:
            raise ScenarioError("--variant", "a file with [variants.*] tables",
                                "<a file without variants>")
        keep = [v for v in variants if v.name == self.variant]
        if not keep:
            raise ScenarioError("--variant", f"one of the file's variants ({', '.join(names)})",
                                self.variant, hint=did_you_mean(self.variant, names))
        return keep


def _leaves(dotted: str, value: Any) -> list[tuple[str, Any]]:
    """A table set whole, as the keys it sets: parallel = {dp = 8} is parallel.dp = 8."""
    if not isinstance(value, dict):
        return [(dotted, value)]
    return [leaf for k, v in value.items() for leaf in _leaves(f"{dotted}.{k}", v)]


def _find(doc: Any, dotted: str) -> Any:
    """The value at a dotted key path of a document, None where it has none."""
    try:
        return _at(doc, parse_key_path("", dotted))
    except (KeyError, IndexError, TypeError, ScenarioError):
        return None


def _at(doc: Any, path: Path) -> Any:
    for seg in path:
        doc = doc[seg]
    return doc


def add_scenario_options(p: argparse.ArgumentParser) -> None:
    """FILE, --set and --variant: for every command that loads a scenario file (run,
    check, serve-capacity)."""
    p.add_argument("file", help="scenario TOML file")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key of the file, after its variants, e.g. --set "
                        "parallel.tp=4 or --set 'hardware.units[0].preset=h100_sxm'; VALUE "
                        "is typed by the key (a number, true/false, [1, 2], or text); "
                        "repeatable")
    p.add_argument("--variant", metavar="NAME",
                   help="run only this one of the file's [variants.*]")


def parse_set(text: str) -> Override:
    """`KEY=VALUE`, KEY a key path of the scenario format; VALUE typed by the schema."""
    dotted, sep, raw = text.partition("=")
    dotted = dotted.strip()
    if not sep or not dotted:
        raise ScenarioError("--set", "KEY=VALUE, e.g. --set parallel.tp=4", text)
    where = f"--set {dotted}"
    path = parse_key_path("", dotted, where=where)
    return Override(path, typed(raw.strip(), schema_at(path), where), where)


def typed(raw: str, node: Schema, where: str) -> Any:
    """VALUE as the schema's type at its key: a TOML value (4, 1.5, true, [1, 2],
    "quoted"), or the text itself where the key takes a string (`preset=a100`)."""
    takes_text = "string" in _types(node)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        if takes_text:
            return raw
        raise ScenarioError(where, "a TOML value such as 4, 1.5, true, \"text\" or [1, 2]",
                            raw) from None
    if takes_text and not isinstance(value, str) and _json_type(value) not in _types(node):
        return raw  # scenario.name=2024 is the text "2024"
    return value


def _types(node: Schema) -> set[str]:
    """The JSON types a schema node accepts (any, when it does not say)."""
    kind = node.get("type")
    if isinstance(kind, str):
        return {kind} | ({"integer"} if kind == "number" else set())
    if isinstance(kind, list):
        return set(kind)
    if "enum" in node:
        return {_json_type(v) for v in node["enum"]}
    alternatives = node.get("anyOf", []) + node.get("oneOf", [])
    if alternatives:
        return set().union(*(_types(a) for a in alternatives))
    return {"string", "number", "integer", "boolean", "array", "object"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


__all__ = ["CommandLine", "add_scenario_options", "parse_set", "typed"]
