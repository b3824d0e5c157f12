"""A sweep file in, checked points out; one point (× variant) in, one CSV row out.

The `[sweep]` table is taken off the raw TOML before the rest goes through the scenario
machinery (`check_structure`, `normalize`, `build`, `apply_override`), exactly as
`leptonsim.scenario.loads` does for variants. Every swept value is checked against the
base (and each variant) before anything runs; what only a combination of values can get
wrong (a unit count that does not divide into nodes) is reported by the point itself.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError
from ..scenario import read_text
from ..scenario.build import build
from ..scenario.validate import check_structure, format_path, normalize, parse_toml
from ..scenario.variants import apply_override, parse_key_path, relocate, variant_path
from .sampling import Point, points
from .spec import MAX_POINTS, Parameter, SweepSpec, param_where, parse_sweep

__all__ = ["PointTask", "Sweep", "load_sweep", "loads_sweep"]

Doc = dict[str, Any]


@dataclass(frozen=True)
class PointTask:
    """Everything a worker needs to simulate one point of one variant (picklable)."""

    point: Point
    variant: str
    doc: Doc                      # the variant's raw document, before the point's overrides
    parameters: tuple[Parameter, ...]
    file: str
    price_per_unit_hour: float | None

    def order(self) -> tuple[int, str]:
        return self.point.index, self.variant


@dataclass(frozen=True)
class Sweep:
    file: str
    spec: SweepSpec
    docs: dict[str, Doc]          # variant name ("" for a file without variants) -> raw doc
    points: tuple[Point, ...]

    @property
    def parameter_names(self) -> tuple[str, ...]:
        return tuple(p.dotted for p in self.spec.parameters)

    def tasks(self, price_per_unit_hour: float | None = None) -> Iterator[PointTask]:
        """Every (point, variant) in point order, variants by name within a point."""
        for point in self.points:
            for name in sorted(self.docs):
                yield PointTask(point, name, self.docs[name], self.spec.parameters, self.file,
                                price_per_unit_hour)

    def __len__(self) -> int:
        return len(self.points) * len(self.docs)

    def fingerprints(self) -> dict[str, str]:
        """SHA-256 of each variant's normalised document (SI values, defaults filled in):
        what its rows are computed from besides the point, however the file is written."""
        out = {}
        for name, doc in self.docs.items():
            text = json.dumps(normalize(copy.deepcopy(doc)), sort_keys=True, default=str)
            out[name] = hashlib.sha256(text.encode()).hexdigest()
        return out


def load_sweep(path: str | os.PathLike[str]) -> Sweep:
    file = os.fspath(path)
    return loads_sweep(read_text(file), file)  # a bounded, regular file, as scenario.load reads


def loads_sweep(text: str, file: str = "<string>") -> Sweep:
    """The sweep of TOML text with a [sweep] table; `file` names it in error messages."""
    try:
        return _loads_sweep(text, file)
    except ScenarioError as err:
        raise err.in_file(file) from None


def _loads_sweep(text: str, file: str) -> Sweep:
    raw = parse_toml(text)
    table = raw.pop("sweep", None)
    check_structure(raw)
    spec = parse_sweep(table)
    variants: dict[str, Doc] = raw.pop("variants", {})
    rows = spec.size * max(len(variants), 1)
    if rows > MAX_POINTS:  # before a variant is copied or a point drawn
        raise ScenarioError("sweep", f"at most {MAX_POINTS} rows (points x variants)",
                            f"<{spec.size} points x {len(variants)} variants>")
    normalize(raw)  # the base must be valid on its own, as for variants
    docs = {name: _variant(raw, name, variants[name]) for name in sorted(variants)} or {"": raw}
    for name, doc in docs.items():
        for p in spec.parameters:
            _check_values(doc, p, name)
    return Sweep(file, spec, docs, tuple(points(spec)))


def _variant(raw: Doc, name: str, table: Doc) -> Doc:
    overrides = {k: parse_key_path(name, k) for k in table}
    doc = copy.deepcopy(raw)
    for dotted, value in table.items():
        apply_override(doc, overrides[dotted], copy.deepcopy(value), variant_path(name, dotted))
    try:
        check_structure(doc)
        normalize(doc)
    except ScenarioError as err:
        raise relocate(err, name, overrides) from None
    return doc


def _probes(p: Parameter) -> list[tuple[tuple[str | int, ...], Any]]:
    """(where under the parameter, value) for every value a point can take; a continuous
    range is checked at its ends (the field's bounds are intervals)."""
    if p.choices is None:
        return [(("min",), p.at(0.0)), (("max",), p.at(1.0))]
    return [((i,), v) for i, v in enumerate(p.choices)]


def _check_values(doc: Doc, p: Parameter, variant: str) -> None:
    for rest, value in _probes(p):
        trial = copy.deepcopy(doc)
        try:
            apply_override(trial, list(p.path), copy.deepcopy(value), param_where(p.dotted))
            check_structure(trial)
            normalize(trial)
        except ScenarioError as err:
            raise _point_error(err, {p.dotted: p.path}, variant, rest) from None


def _point_error(err: ScenarioError, paths: dict[str, tuple[str | int, ...]], variant: str,
                 rest: tuple[str | int, ...] = (), point: str = "") -> ScenarioError:
    """An error a swept value caused, at its sweep key (`sweep.parameters."x"[2]`)."""
    notes = [n for n in (err.hint, f"in variant {variant!r}" if variant else "",
                         f"at sweep point {point}" if point else "") if n]
    for dotted, path in paths.items():
        base = format_path(path)
        if err.path == base or err.path.startswith((base + ".", base + "[")):
            where = param_where(dotted, *rest) + err.path[len(base):]
            return ScenarioError(where, err.expected, err.found, hint="; ".join(notes))
    return ScenarioError(err.path, err.expected, err.found, hint="; ".join(notes))


def scenario_of(task: PointTask) -> tuple[Any, Doc]:
    """The built Scenario of a point, and its normalised document."""
    doc = copy.deepcopy(task.doc)
    paths = {p.dotted: p.path for p in task.parameters}
    overrides = task.point.overrides(task.parameters)
    label = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
    try:
        for p in task.parameters:
            apply_override(doc, list(p.path), copy.deepcopy(overrides[p.dotted]),
                           param_where(p.dotted))
        check_structure(doc)
        norm = normalize(doc)
        return build(norm, task.variant, task.file), norm
    except ScenarioError as err:
        raise _point_error(err, paths, task.variant, point=f"{task.point.point_id} ({label})"
                           ).in_file(task.file) from None
