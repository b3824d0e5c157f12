"""A results CSV as columns, for the figures: numbers, groups, labels.

Only the CSV is read: the swept parameters are the columns between `variant` and
`makespan_s`, and their units come from the scenario format (by key path).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..quantities import format_quantity
from ..scenario.schema import SI_UNIT
from .labels import humanise, read_labels
from .row import KEY_COLUMNS, METRIC_COLUMNS
from .spec import parameter_kind, parameter_unit
from .store import StudyError

__all__ = ["Table", "read_table"]


@dataclass(frozen=True)
class Table:
    rows: tuple[dict[str, str], ...]
    parameters: tuple[str, ...]
    labels: dict[str, str] = field(default_factory=dict)  # [sweep.labels]; else humanised

    def __len__(self) -> int:
        return len(self.rows)

    def num(self, column: str, rows: Sequence[int] | None = None) -> np.ndarray:
        """A column as floats; empty or non-numeric cells are NaN."""
        picked = self.rows if rows is None else [self.rows[i] for i in rows]
        return np.array([_float(r.get(column, "")) for r in picked])

    def numeric(self, column: str) -> bool:
        return bool(self.rows) and all(math.isfinite(_float(r[column])) for r in self.rows)

    def unit(self, parameter: str) -> str:
        return parameter_unit(parameter)

    def name(self, parameter: str) -> str:
        """A parameter's readable name: 'units' for hardware.units[0].count."""
        return self.labels.get(parameter) or humanise(parameter, self.parameters)

    def axis(self, parameter: str) -> str:
        """An axis label: 'units (count)', 'bandwidth (B/s)'."""
        return f"{self.name(parameter)} ({self.unit(parameter)})"

    def varies(self, column: str) -> bool:
        """The column takes more than one value."""
        return len({r[column] for r in self.rows}) > 1

    def show(self, column: str, text: str) -> str:
        """A cell as a reader wants it: '25 GB/s', '8', 'chain'."""
        return _show(text, parameter_kind(column))[:20]

    def label(self, i: int, skip: Sequence[str] = ()) -> str:
        """'variant, a=1, b=25 GB/s' for row i, leaving out the columns in `skip`."""
        r = self.rows[i]
        parts = [r["variant"]] if r["variant"] and "variant" not in skip else []
        parts += [f"{self.name(p)}={self.show(p, r[p])}" for p in self.parameters
                  if p not in skip]
        return ", ".join(parts) or "(base)"

    def groups(self, within: Sequence[str]) -> list[list[int]]:
        """Row indices grouped by variant and every parameter not in `within` ("variant"
        among them: not by variant), in order of first appearance."""
        out: dict[tuple[str, ...], list[int]] = {}
        for i, r in enumerate(self.rows):
            key = (r["variant"] if "variant" not in within else "",
                   *(r[p] for p in self.parameters if p not in within))
            out.setdefault(key, []).append(i)
        return list(out.values())

    def unit_determining(self) -> list[str]:
        """Parameters (and "variant") that change the unit count when the others stay
        fixed: what the scaling figure puts on its x axis."""
        out = []
        for p in (*self.parameters, "variant"):
            for rows in self.groups([p]):
                if len({self.rows[i]["units"] for i in rows}) > 1:
                    out.append(p)
                    break
        return out


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def _show(text: str, kind: str | None = None) -> str:
    """A cell for a label: '25 GB/s' for a quantity, '8' for a count, text as it is."""
    x = _float(text)
    if not math.isfinite(x):
        return text
    return format_quantity(x, kind) if kind in SI_UNIT else f"{x:.4g}"


def read_table(path: str | Path) -> Table:
    with open(path, encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh)
        header = list(reader.fieldnames or [])
        rows = tuple(r for r in reader if None not in r.values())
    first = header.index(METRIC_COLUMNS[0]) if METRIC_COLUMNS[0] in header else len(header)
    missing = [c for c in (*KEY_COLUMNS, *METRIC_COLUMNS) if c not in header]
    if missing:
        raise StudyError(f"{path}: not a sweep results file (no column {missing[0]!r})")
    parameters = tuple(header[len(KEY_COLUMNS):first])
    return Table(rows, parameters, read_labels(Path(path), parameters))
