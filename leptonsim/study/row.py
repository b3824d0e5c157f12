"""One flat CSV row per simulated point: what was swept, what came out, what the
formulas predicted. Columns are documented in docs/studies.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..energy import cost_usd
from ..result import RunResult
from ..step_metrics import bubble_s as step_bubble_s

__all__ = ["FORMULA_COLUMNS", "METRIC_COLUMNS", "KEY_COLUMNS", "bubble_s", "columns",
           "metrics_row"]

Cell = float | int | str

KEY_COLUMNS = ("point_id", "variant")
FORMULA_COLUMNS = {
    "seed_parallel_time_s": "seed parallel time",
    "seed_hardware_efficiency": "seed hardware efficiency",
    "work_span_lower_bound_s": "work/span lower bound",
    "graham_bound_s": "Graham upper bound",
    "amdahl_speedup": "Amdahl's law",
    "gustafson_speedup": "Gustafson's law",
}
METRIC_COLUMNS = (
    "makespan_s", "critical_path_s", "total_work_s", "speedup", "parallel_efficiency",
    "effective_capacity", "units", "compute_s", "communication_s", "idle_s", "bubble_s",
    "samples_per_s", "tokens_per_s", "model_flops", "mfu", "hfu", "exposed_comm_s",
    "exposed_comm_max_s", "energy_j", "cost_usd", *FORMULA_COLUMNS,
)


def columns(parameters: Sequence[str]) -> tuple[str, ...]:
    """The header of results.csv: keys, one column per swept key path, then metrics."""
    return (*KEY_COLUMNS, *parameters, *METRIC_COLUMNS)


def metrics_row(result: RunResult, hourly_usd: float | None) -> dict[str, Cell]:
    """The metric columns of one run. `hourly_usd` is the whole cluster's price per hour
    (None: unknown, cost left empty)."""
    m = result.metrics
    units = len(m.units)
    busy = sum(u.busy_s for u in m.units)
    formulas = {r.name: r.prediction for r in result.formulas}
    sm = result.step_metrics
    row: dict[str, Any] = {
        "makespan_s": m.makespan_s, "critical_path_s": m.critical_path_s,
        "total_work_s": m.total_work_s, "speedup": m.speedup,
        "parallel_efficiency": m.parallel_efficiency, "effective_capacity": m.capacity,
        "units": units, "compute_s": busy,
        "communication_s": sum(c.busy_s for c in m.channels),
        "idle_s": max(units * m.makespan_s - busy, 0.0),
        "bubble_s": 0.0 if sm is None else sm.bubble_s,
        "energy_j": result.energy.total_j,
        "cost_usd": "" if hourly_usd is None else cost_usd(m.makespan_s, 1, hourly_usd),
        "exposed_comm_s": result.breakdown.exposed_comm_s * units,  # unit-seconds, as compute_s
    }
    for column in ("samples_per_s", "tokens_per_s", "model_flops", "mfu", "hfu",
                   "exposed_comm_max_s"):
        value = None if sm is None else getattr(sm, column)
        row[column] = "" if value is None else value
    for column, name in FORMULA_COLUMNS.items():
        row[column] = formulas.get(name, "")
    return row


def bubble_s(result: RunResult) -> float:
    """The pipeline bubble of a run's DNN step in unit-seconds (step_metrics.bubble_s)."""
    return step_bubble_s(result.scenario.step, result.trace)
