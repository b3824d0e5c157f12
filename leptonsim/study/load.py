"""A sweep file in, checked points out; one point (× variant) in, one CSV row out.

The `[sweep]` table is taken off the parsed document before the rest goes through the
scenario pipeline's stages (variants, normalize; `leptonsim.scenario.documents`), as
`leptonsim.scenario.loads` does. A point is its variant's document with the swept values
applied by the same override stage as a variant's (`overridden`), then normalised and
built. Every swept value is checked against the base (and each variant) before anything
runs; what only a combination of values can get wrong (a unit count that does not divide
into nodes) is reported by the point itself.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from ..errors import ScenarioError
from ..scenario import Override, documents, normalize, overridden, read_text
from ..scenario.build import build
from ..scenario.validate import check_structure, format_path, parse_toml
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

    @property
    def labels(self) -> dict[str, str]:
        """Each swept key path's name in figures ([sweep.labels], else humanised)."""
        return {p.dotted: p.label for p in self.spec.parameters}

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
            text = json.dumps(normalize(doc), sort_keys=True, default=str)
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
    raw = parse_toml(text)  # stage 1, with [sweep] taken off for its own checks
    table = raw.pop("sweep", None)
    check_structure(raw)
    spec = parse_sweep(table)
    variants = len(raw.get("variants", {}))  # optional, and without a default
    rows = spec.size * max(variants, 1)
    if rows > MAX_POINTS:  # before a variant is copied or a point drawn
        raise ScenarioError("sweep", f"at most {MAX_POINTS} rows (points x variants)",
                            f"<{spec.size} points x {variants} variants>")
    docs = {v.name: v.doc for v, _ in documents(raw)}
    for name, doc in docs.items():
        for p in spec.parameters:
            _check_values(doc, p, name)
    return Sweep(file, spec, docs, tuple(points(spec)))


def _probes(p: Parameter) -> list[tuple[tuple[str | int, ...], Any]]:
    """(where under the parameter, value) for every value a point can take; a continuous
    range is checked at its ends (the field's bounds are intervals)."""
    if p.choices is None:
        return [(("min",), p.at(0.0)), (("max",), p.at(1.0))]
    return [((i,), v) for i, v in enumerate(p.choices)]


def _check_values(doc: Doc, p: Parameter, variant: str) -> None:
    for rest, value in _probes(p):
        try:
            normalize(overridden(doc, [Override(list(p.path), value, param_where(p.dotted))]))
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
    paths = {p.dotted: p.path for p in task.parameters}
    overrides = task.point.overrides(task.parameters)
    label = ", ".join(f"{k} = {v!r}" for k, v in overrides.items())
    try:
        norm = normalize(overridden(task.doc, [
            Override(list(p.path), overrides[p.dotted], param_where(p.dotted))
            for p in task.parameters]))
        return build(norm, task.variant, task.file), norm
    except ScenarioError as err:
        raise _point_error(err, paths, task.variant, point=f"{task.point.point_id} ({label})"
                           ).in_file(task.file) from None
