"""One flat CSV row per simulated point: what was swept, what came out, what the
formulas predicted. Columns are documented in docs/studies.md."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..energy import cost_usd
from ..result import RunResult

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
    "energy_j", "cost_usd", *FORMULA_COLUMNS,
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
    row: dict[str, Any] = {
        "makespan_s": m.makespan_s, "critical_path_s": m.critical_path_s,
        "total_work_s": m.total_work_s, "speedup": m.speedup,
        "parallel_efficiency": m.parallel_efficiency, "effective_capacity": m.capacity,
        "units": units, "compute_s": busy,
        "communication_s": sum(c.busy_s for c in m.channels),
        "idle_s": max(units * m.makespan_s - busy, 0.0), "bubble_s": bubble_s(result),
        "energy_j": result.energy.total_j,
        "cost_usd": "" if hourly_usd is None else cost_usd(m.makespan_s, 1, hourly_usd),
    }
    for column, name in FORMULA_COLUMNS.items():
        row[column] = formulas.get(name, "")
    return row


def bubble_s(result: RunResult) -> float:
    """The pipeline bubble of a DNN step, in unit-seconds: summed over the units that run
    pipeline ops, the time each spends within the pipeline's window (from the first
    forward's start to the last backward's end, anywhere; the last forward's end in
    inference) neither running a task of its own nor sending or receiving a transfer.
    The window holds the fill and the drain of GPipe and 1F1B (Huang et al. 2019;
    Narayanan et al. 2021, section 2.2): with uniform stages and free transfers it is
    gpipe_bubble_fraction (p - 1)/(m + p - 1) of the window, less the optimizer steps
    that run in the drain. 0 without a pipeline (pp = 1) or a DNN step."""
    step, trace = result.scenario.step, result.trace
    if step is None or step.config.pp == 1 or not step.work:
        return 0.0
    pipeline = np.zeros(step.graph.size, bool)
    pipeline[[t for t, (what, _) in step.work.items() if what in ("F", "B")]] = True
    on = pipeline[trace.task]
    start, end = float(trace.task_start[on].min()), float(trace.task_end[on].max())
    unit_of = np.empty(step.graph.size, np.int64)
    unit_of[trace.task] = trace.task_unit
    total = 0.0
    for u in np.unique(trace.task_unit[on]).tolist():
        mine = trace.task_unit == u
        moving = (unit_of[trace.xfer_src_task] == u) | (unit_of[trace.xfer_dst_task] == u)
        busy = _covered(np.concatenate([trace.task_start[mine], trace.xfer_start[moving]]),
                        np.concatenate([trace.task_end[mine], trace.xfer_end[moving]]), start, end)
        total += (end - start - busy) * len(step.groups.get(u, (u,)))  # a symmetric group idles alike
    return total


def _covered(starts: np.ndarray, ends: np.ndarray, lo: float, hi: float) -> float:
    """The length of [lo, hi] that the union of the intervals [starts, ends] covers."""
    s, e = np.clip(starts, lo, hi), np.clip(ends, lo, hi)
    order = np.argsort(s, kind="stable")
    s, e = s[order], e[order]
    reached = np.concatenate([[lo], np.maximum.accumulate(e)[:-1]])
    return float(np.maximum(e - np.maximum(s, reached), 0.0).sum())
