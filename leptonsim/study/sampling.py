"""Points of a sweep: a grid in a fixed order, or seeded random / Latin-hypercube samples.

Random and LHS draw quantiles in the unit cube with numpy's PCG64 seeded by the sweep's
seed, and map each through its parameter's inverse CDF (`Parameter.at`), so the same
seed always gives the same points. A point's id is a hash of its overrides, so it does
not depend on its position: resuming, reordering or growing a sweep keeps ids stable.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .spec import Parameter, SweepSpec

__all__ = ["Point", "lhs_unit", "point_id", "points", "random_unit"]


@dataclass(frozen=True)
class Point:
    index: int                      # position in point order (grid order or sample order)
    point_id: str                   # stable hash of the overrides
    values: tuple[Any, ...]         # one per parameter, as written into the scenario

    def overrides(self, parameters: Iterable[Parameter]) -> dict[str, Any]:
        return {p.dotted: v for p, v in zip(parameters, self.values, strict=True)}


def point_id(overrides: dict[str, Any]) -> str:
    """12 hex digits of SHA-256 over the overrides as canonical JSON."""
    text = json.dumps(sorted(overrides.items()), separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def random_unit(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n independent uniform points in [0, 1)^d."""
    return rng.random((n, d))


def lhs_unit(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    """n Latin-hypercube points in [0, 1)^d: in every dimension, exactly one point
    falls in each stratum [k/n, (k+1)/n)."""
    out = np.empty((n, d))
    for j in range(d):
        strata = rng.permutation(n)
        u = (strata + rng.random(n)) / n
        for _ in range(4):  # float round-off must not push a point out of its stratum
            k = np.floor(u * n)
            u = np.where(k > strata, np.nextafter(u, 0.0), np.where(k < strata, np.nextafter(u, 1.0), u))
        out[:, j] = u
    return out


def _grid(spec: SweepSpec) -> Iterable[tuple[Any, ...]]:
    """Cartesian product; the last parameter varies fastest (file order)."""
    return itertools.product(*(p.choices or () for p in spec.parameters))


def _sampled(spec: SweepSpec) -> Iterable[tuple[Any, ...]]:
    rng = np.random.default_rng(spec.seed)
    draw = lhs_unit if spec.mode == "lhs" else random_unit
    cube = draw(spec.samples, len(spec.parameters), rng)
    for row in cube:
        yield tuple(p.at(float(u)) for p, u in zip(spec.parameters, row, strict=True))


def points(spec: SweepSpec) -> list[Point]:
    """Every point of the sweep in point order; repeated configurations (possible when
    sampling lists or integers) are kept once, at their first position."""
    source = _grid(spec) if spec.mode == "grid" else _sampled(spec)
    seen: set[str] = set()
    out: list[Point] = []
    for values in source:
        pid = point_id({p.dotted: v for p, v in zip(spec.parameters, values, strict=True)})
        if pid not in seen:
            seen.add(pid)
            out.append(Point(len(out), pid, values))
    return out
