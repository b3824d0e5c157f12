"""Scenario files: TOML in, checked model objects out.

    [scenario] [hardware] [workload] [schedule] [claims] [objective] [variants.*]

`load(path)` returns one Scenario per variant (sorted by name), or the base scenario
alone when there are none. Every user mistake raises exactly one ScenarioError naming
the file, the key path, what was expected and what was found. The format is described
by `schema()` (JSON Schema, draft 2020-12) and in docs/scenarios.md.
"""

from __future__ import annotations

import copy
import os
from typing import Any

from ..errors import ScenarioError
from .build import Objective, Scenario, build
from .schema import schema
from .validate import (
    apply_override,
    check_structure,
    normalize,
    parse_key_path,
    parse_toml,
    relocate,
    variant_path,
)

__all__ = ["Objective", "Scenario", "ScenarioError", "check", "load", "loads", "schema"]


def load(path: str | os.PathLike[str]) -> list[Scenario]:
    """The scenarios of a TOML file: one per variant, or the base alone."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as fh:
            text = fh.read()
    except FileNotFoundError:
        raise ScenarioError("", "an existing scenario file", "<no such file>",
                            file=file) from None
    except UnicodeDecodeError:
        raise ScenarioError("", "a UTF-8 text file", "<undecodable bytes>", file=file) from None
    except OSError as exc:
        reason = (exc.strerror or type(exc).__name__).lower()
        raise ScenarioError("", "a readable scenario file", f"<{reason}>", file=file) from None
    return loads(text, file=file)


def check(path: str | os.PathLike[str]) -> list[Scenario]:
    """Load and check a scenario file without running anything (the same as load)."""
    return load(path)


def loads(text: str, file: str = "<string>") -> list[Scenario]:
    """The scenarios of TOML text; `file` names it in error messages."""
    try:
        return _loads(text, file)
    except ScenarioError as err:
        raise err.in_file(file) from None


def _loads(text: str, file: str) -> list[Scenario]:
    raw = parse_toml(text)
    check_structure(raw)
    variants: dict[str, dict[str, Any]] = raw.pop("variants", {})
    base = build(normalize(raw), "", file)
    if not variants:
        return [base]
    out = []
    for name in sorted(variants):
        overrides = {k: parse_key_path(name, k) for k in variants[name]}
        doc = copy.deepcopy(raw)
        for dotted, value in variants[name].items():
            apply_override(doc, overrides[dotted], copy.deepcopy(value),
                           variant_path(name, dotted))
        try:
            check_structure(doc)
            out.append(build(normalize(doc), name, file))
        except ScenarioError as err:
            raise relocate(err, name, overrides) from None
    return out
