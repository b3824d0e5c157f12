"""What runs on a worker (a local process, a Dask worker, or in-process): one point.

`evaluate` never raises for a mistake in the sweep: a ScenarioError does not survive
pickling (its constructor takes several arguments), so it comes back as a PointFailure
the caller turns into the error again.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..energy import hourly_price
from ..errors import ScenarioError
from ..result import run
from .load import PointTask, scenario_of
from .row import Cell, metrics_row

__all__ = ["PointFailure", "evaluate"]


@dataclass(frozen=True)
class PointFailure:
    file: str
    path: str
    expected: str
    found: object
    hint: str

    def error(self) -> ScenarioError:
        return ScenarioError(self.path, self.expected, self.found, file=self.file, hint=self.hint)


def unit_prices(doc: dict[str, Any]) -> list[float | None]:
    """USD per unit-hour of every unit, from `price_per_hour` of each units table."""
    out: list[float | None] = []
    for table in doc["hardware"]["units"]:
        out += [table.get("price_per_hour")] * int(table["count"])  # price: None if not given
    return out


def evaluate(task: PointTask) -> dict[str, Cell] | PointFailure:
    """The CSV row of one point of one variant."""
    try:
        scenario, doc = scenario_of(task)
    except ScenarioError as err:
        return PointFailure(err.file, err.path, err.expected, err.found, err.hint)
    result = run(scenario)
    row: dict[str, Cell] = {"point_id": task.point.point_id, "variant": task.variant}
    for p, value in zip(task.parameters, task.point.values, strict=True):
        row[p.dotted] = p.si(value)
    row.update(metrics_row(result, hourly_price(unit_prices(doc), task.price_per_unit_hour)))
    return row
