"""The `[sweep]` table of a scenario file: which key paths vary, over what, sampled how.

    [sweep]
    mode = "lhs"                 # "grid" (default) | "random" | "lhs"
    samples = 32                 # random / lhs only
    seed = 7                     # random / lhs only (default 0)
    [sweep.parameters]
    "hardware.units[0].count" = [1, 2, 4, 8]
    "hardware.link.bandwidth" = { min = "10 GB/s", max = "400 GB/s", log = true }
    [sweep.labels]               # optional: names for figures (labels.py)
    "hardware.units[0].count" = "GPUs"

Key paths have the syntax of variants and are checked against the scenario schema. A
value is a non-empty list, a stepped range `{ start, stop, step }` (stop inclusive) or a
continuous range `{ min, max, log }` (needs `num` in grid mode). Quantities in ranges are
read in SI and written back into the scenario as numbers. Every mistake is one
ScenarioError at `sweep...`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import QuantityError, ScenarioError, did_you_mean, found
from ..limits import SIZES
from ..quantities import parse_quantity
from ..scenario.schema import SI_UNIT, SWEEP_MODES
from ..scenario.validate import Path, one_of, schema_root
from ..scenario.variants import parse_key_path, variant_path
from .labels import labels_of, parse_labels

__all__ = ["MAX_POINTS", "MODES", "Parameter", "SweepSpec", "param_where", "parameter_kind",
           "parameter_unit", "parse_sweep"]

MODES = SWEEP_MODES
SWEEP_KEYS = ("mode", "samples", "seed", "parameters", "labels")
STEPPED = ("start", "stop", "step")
CONTINUOUS = ("min", "max", "log", "num")
MAX_POINTS = SIZES["sweep_points"].maximum  # grid, range and samples alike
RANGE_EXAMPLE = ("a non-empty list of values or a range table such as "
                 "{ start = 1, stop = 16, step = 1 } or { min = '10 GB/s', max = '400 GB/s' }")


@dataclass(frozen=True)
class Parameter:
    """One swept key path: discrete `choices`, or a continuous [low, high] range."""

    dotted: str
    path: tuple[str | int, ...]
    kind: str | None            # the quantity kind of the field, if it is a quantity
    integer: bool               # the field is an integer: continuous draws are floored
    choices: tuple[Any, ...] | None
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    label: str = ""             # its name in figures: [sweep.labels] or humanised

    def at(self, u: float) -> Any:
        """The value at quantile u in [0, 1]: the inverse CDF of the parameter's range."""
        if self.choices is not None:
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        top = self.high + 1 if self.integer else self.high
        if self.log:
            x = math.exp(math.log(self.low) + u * (math.log(top) - math.log(self.low)))
        else:
            x = self.low + u * (top - self.low)
        return min(int(math.floor(x)), int(self.high)) if self.integer else float(x)

    def si(self, value: Any) -> float | int | str:
        """The CSV cell of a value: SI number for quantities, JSON for tables and lists."""
        if self.kind is not None and isinstance(value, str | int | float) \
                and not isinstance(value, bool):
            return parse_quantity(value, self.kind)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            return value
        return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class SweepSpec:
    mode: str
    samples: int
    seed: int
    parameters: tuple[Parameter, ...]

    @property
    def size(self) -> int:
        """How many points the sweep has at most (a grid's product, or the samples)."""
        if self.mode != "grid":
            return self.samples
        return math.prod(len(p.choices or ()) for p in self.parameters)


def param_where(dotted: str, *rest: str | int) -> str:
    """`sweep.parameters."hardware.link.bandwidth".min`, `...[2]`."""
    out = f"sweep.parameters.{json.dumps(dotted, ensure_ascii=False)}"
    for seg in rest:
        out += f"[{seg}]" if isinstance(seg, int) else f".{seg}"
    return out


def parse_sweep(table: Any) -> SweepSpec:
    if table is None:
        raise ScenarioError("sweep", "a [sweep] table with [sweep.parameters] "
                            "(see docs/studies.md)", "<nothing>")
    if not isinstance(table, dict):
        raise ScenarioError("sweep", "a table", found(table))
    for k in table:
        if k not in SWEEP_KEYS:
            raise ScenarioError(f"sweep.{k}", f"a key of sweep ({', '.join(SWEEP_KEYS)})",
                                f"<unknown key {k!r}>", hint=did_you_mean(k, SWEEP_KEYS))
    mode = table.get("mode", "grid")
    if mode not in MODES:
        raise ScenarioError("sweep.mode", one_of(MODES), found(mode), hint=did_you_mean(mode, MODES))
    seed = _integer(table, "seed", 0, 0)
    samples = _integer(table, "samples", None if mode != "grid" else 1, 1, MAX_POINTS)
    params = table.get("parameters")
    if not isinstance(params, dict) or not params:
        shown = "<nothing>" if params is None else "<an empty table>" if params == {} \
            else found(params)
        raise ScenarioError("sweep.parameters", "a table of key paths to values, such as "
                            "\"hardware.units[0].count\" = [1, 2, 4]", shown)
    parameters = tuple(_parameter(d, v, mode) for d, v in params.items())
    _check_disjoint(parameters)
    names = [p.dotted for p in parameters]
    labels = labels_of(names, parse_labels(table.get("labels"), names))
    parameters = tuple(_with(p, label=labels[p.dotted]) for p in parameters)
    spec = SweepSpec(mode, samples, seed, parameters)
    if spec.size > MAX_POINTS:
        raise ScenarioError("sweep.parameters", f"a grid of at most {MAX_POINTS} points",
                            f"<{spec.size} points>", hint="use mode = 'lhs' with samples")
    return spec


def _integer(table: dict[str, Any], key: str, default: int | None, least: int,
             most: int | None = None) -> int:
    value = table.get(key, default)
    expected = f"an integer >= {least}" if most is None else f"an integer from {least} to {most}"
    if value is None:
        raise ScenarioError(f"sweep.{key}", f"{expected} (mode = {table.get('mode')!r} needs it)",
                            "<nothing>")
    if isinstance(value, bool) or not isinstance(value, int) or value < least \
            or (most is not None and value > most):
        raise ScenarioError(f"sweep.{key}", expected, found(value))
    return value


def _key_path(dotted: str) -> Path:
    try:
        path = parse_key_path("", dotted)
    except ScenarioError as err:
        at = param_where(dotted) + err.path[len(variant_path("", dotted)):]
        raise ScenarioError(at, err.expected, err.found, hint=err.hint) from None
    if path[0] == "sweep":
        raise ScenarioError(param_where(dotted), "a key path outside [sweep]", dotted)
    return path


def _field(path: Sequence[str | int]) -> dict[str, Any]:
    """The schema node a checked key path points at."""
    node: dict[str, Any] = schema_root()
    for seg in path:
        node = node["items"] if isinstance(seg, int) else node["properties"][seg]
    return node


def parameter_kind(dotted: str) -> str | None:
    """The quantity kind of a key path ('bandwidth'), 'integer', 'number', or None."""
    try:
        node = _field(parse_key_path("", dotted))
    except (ScenarioError, KeyError):
        return None
    if "x-quantity" in node:
        return str(node["x-quantity"])
    kind = node.get("type")
    return kind if kind in ("integer", "number") else None


def parameter_unit(dotted: str) -> str:
    """What a swept column is measured in, for axis labels: 'B/s', 's', 'count', ..."""
    kind = parameter_kind(dotted)
    if kind in SI_UNIT:
        return SI_UNIT[kind] or "ratio"
    return {"integer": "count", "number": "number"}.get(str(kind), "category")


def _parameter(dotted: str, value: Any, mode: str) -> Parameter:
    path = _key_path(dotted)
    node = _field(path)
    kind = node.get("x-quantity")
    integer = node.get("type") == "integer"
    base = Parameter(dotted, tuple(path), kind, integer, None)
    if isinstance(value, list):
        if not value:
            raise ScenarioError(param_where(dotted), "a non-empty list of values", "<an empty array>")
        for i, v in enumerate(value):
            _check_cell(base, v, dotted, i)
        return _with(base, choices=tuple(value))
    if not isinstance(value, dict):
        raise ScenarioError(param_where(dotted), RANGE_EXAMPLE, found(value))
    if kind is None and not integer and node.get("type") != "number":
        raise ScenarioError(param_where(dotted), f"a list of values ({dotted} is not a number, "
                            "so it has no range)", "<a range table>")
    stepped = any(k in value for k in STEPPED)
    allowed = STEPPED if stepped else CONTINUOUS
    for k in value:
        if k not in allowed:
            raise ScenarioError(param_where(dotted, k), f"a key of a range table "
                                f"({', '.join(allowed)})", f"<unknown key {k!r}>",
                                hint=did_you_mean(k, (*STEPPED, *CONTINUOUS)))
    return _stepped(base, value) if stepped else _continuous(base, value, mode)


def _check_cell(p: Parameter, value: Any, dotted: str, index: int) -> None:
    try:
        p.si(value)
    except QuantityError as exc:
        raise ScenarioError(param_where(dotted, index), exc.expected, found(value)) from None


def _number(p: Parameter, table: dict[str, Any], key: str, default: float | None = None) -> float:
    where = param_where(p.dotted, key)
    if key not in table:
        if default is not None:
            return default
        raise ScenarioError(where, "a number" + (f" or {p.kind}" if p.kind else ""), "<nothing>")
    value = table[key]
    try:
        return parse_quantity(value, p.kind or "dimensionless")
    except QuantityError as exc:
        raise ScenarioError(where, exc.expected, found(value)) from None


def _stepped(p: Parameter, table: dict[str, Any]) -> Parameter:
    start, stop = _number(p, table, "start"), _number(p, table, "stop")
    step = _number(p, table, "step", 1.0)
    if step <= 0:
        raise ScenarioError(param_where(p.dotted, "step"), "a step > 0", found(table["step"]))
    if stop < start:
        raise ScenarioError(param_where(p.dotted, "stop"), f"a stop >= start ({start:g})",
                            found(table["stop"]))
    count = math.floor((stop - start) / step * (1 + 1e-12)) + 1
    if count > MAX_POINTS:
        raise ScenarioError(param_where(p.dotted), f"a range of at most {MAX_POINTS} values",
                            f"<{count} values>")
    as_int = p.integer or all(isinstance(table.get(k, 1), int) for k in STEPPED)
    values = [float(f"{start + i * step:.12g}") for i in range(count)]
    return _with(p, choices=tuple(dict.fromkeys(int(round(v)) if as_int else v for v in values)))


def _continuous(p: Parameter, table: dict[str, Any], mode: str) -> Parameter:
    low, high = _number(p, table, "min"), _number(p, table, "max")
    log = table.get("log", False)
    if not isinstance(log, bool):
        raise ScenarioError(param_where(p.dotted, "log"), "true or false", found(log))
    if high < low:
        raise ScenarioError(param_where(p.dotted, "max"), f"a max >= min ({low:g})",
                            found(table["max"]))
    if log and low <= 0:
        raise ScenarioError(param_where(p.dotted, "min"), "a min > 0 (log = true)",
                            found(table["min"]))
    if p.integer and (low != int(low) or high != int(high)):
        raise ScenarioError(param_where(p.dotted, "min" if low != int(low) else "max"),
                            "an integer (the field is an integer)",
                            found(table["min" if low != int(low) else "max"]))
    ranged = _with(p, low=low, high=high, log=log)
    if mode != "grid":
        if "num" in table:
            raise ScenarioError(param_where(p.dotted, "num"), "no 'num' (it is for mode = "
                                "'grid'; 'samples' sets how many points)", found(table["num"]))
        return ranged
    num = table.get("num")
    if isinstance(num, bool) or not isinstance(num, int) or not 1 <= num <= MAX_POINTS:
        raise ScenarioError(param_where(p.dotted, "num"), "an integer >= 1: how many grid "
                            "values between min and max", "<nothing>" if num is None else found(num))
    flat = _with(ranged, integer=False)
    values = [flat.at(i / (num - 1)) for i in range(1, num - 1)] if num > 2 else []
    values = [low, *values, high][:num] if num > 1 else [low]
    if p.integer:
        values = [int(round(v)) for v in values]
    return _with(p, choices=tuple(dict.fromkeys(values)))


def _with(p: Parameter, **changes: Any) -> Parameter:
    fields = {**p.__dict__, **changes}
    return Parameter(**fields)


def _check_disjoint(parameters: Sequence[Parameter]) -> None:
    for i, a in enumerate(parameters):
        for b in parameters[i + 1:]:
            short, long = sorted((a, b), key=lambda p: len(p.path))
            if long.path[:len(short.path)] == short.path:
                raise ScenarioError(param_where(b.dotted), f"a key path that does not overlap "
                                    f"{a.dotted!r}", b.dotted)
