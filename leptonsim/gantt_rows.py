"""The Gantt chart's rows for large runs: units grouped per pipeline stage, data-parallel
replica or node, each row showing what fraction of its units run each kind of task
over time (issue 14: one row per unit is unreadable at 16,384 units, and slow to draw).

A run that simulated one unit for several (`StepGraph.groups`: tensor-parallel groups in
symmetric mode, mirrored data-parallel replicas) counts each row of the trace once per
unit it stands for, so the fractions are those of every unit, without expanding the trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .export import task_columns
from .trace import Trace

if TYPE_CHECKING:
    from .scenario import Scenario

__all__ = ["GANTT_ROWS", "MAX_UNIT_ROWS", "Grouping", "busy_fractions", "grouping"]

GANTT_ROWS = ("auto", "unit", "stage", "replica", "node")
MAX_UNIT_ROWS = 64  # above this many units, `auto` draws groups, not units
BINS = 600  # time bins of a group row: ~2 px each on the 11-inch chart


@dataclass(frozen=True)
class Grouping:
    """Rows of units: `labels[g]` names row g; `of_unit[u]` is unit u's row;
    `members[u]` the units that unit u's trace rows stand for (u itself if absent)."""

    by: str
    labels: list[str]
    of_unit: np.ndarray
    members: dict[int, tuple[int, ...]]


def grouping(scenario: Scenario, by: str = "auto") -> Grouping | None:
    """How to group the scenario's units for its Gantt chart; None: one row per unit.
    `auto`: one row per unit up to MAX_UNIT_ROWS units, else per stage of a pipelined
    step, else per replica of a data-parallel step, else per node, else per block of
    consecutive units (at most MAX_UNIT_ROWS rows)."""
    n = scenario.cluster.size
    if by == "unit" or (by == "auto" and n <= MAX_UNIT_ROWS):
        return None
    step = scenario.step
    members = {} if step is None else dict(step.groups)
    choices = [by] if by != "auto" else ["stage", "replica", "node"]
    for choice in choices:
        rows = _rows_by(scenario, choice)
        if rows is not None and (by != "auto" or 1 < len(rows[0]) <= MAX_UNIT_ROWS):
            return Grouping(choice, rows[0], rows[1], members)
    size = -(-n // MAX_UNIT_ROWS)
    of_unit = np.arange(n) // size
    labels = [f"units {g * size}-{min(n, (g + 1) * size) - 1}" for g in range(of_unit[-1] + 1)]
    return Grouping("block", labels, of_unit, members)


def _rows_by(scenario: Scenario, by: str) -> tuple[list[str], np.ndarray] | None:
    """(labels, row of each unit) for `by`, or None where the scenario has no such rows."""
    n = scenario.cluster.size
    if by == "node":
        per = scenario.cluster.units_per_node
        if per is None:
            return None
        of_unit = np.minimum(np.arange(n) // per, n // per)  # offload's hosts: one last row
        return _labelled("node", of_unit, n // per, per), of_unit
    step = scenario.step
    if step is None:
        return None
    cfg = step.config
    count = cfg.pp if by == "stage" else cfg.replicas
    of_unit = np.full(n, count, np.int64)  # hosts (offload) beyond the GPUs: their own row
    for r in range(cfg.replicas):
        for p in range(cfg.pp):
            for t in range(cfg.tp):
                of_unit[cfg.replica_rank(r, p, t)] = p if by == "stage" else r
    return _labelled(by, of_unit, count, n // max(count, 1)), of_unit


def _labelled(by: str, of_unit: np.ndarray, count: int, size: int) -> list[str]:
    labels = [f"{by} {g} ({size} units)" for g in range(count)]
    return labels + ["hosts"] if of_unit.max(initial=0) >= count else labels


def busy_fractions(trace: Trace, rows: Grouping, kind_of_task: np.ndarray, kinds: int,
                   makespan: float) -> tuple[np.ndarray, np.ndarray]:
    """(edges of BINS time bins over [0, makespan], fraction[row, kind, bin]): the
    share of the row's units that ran a task of each kind in each bin, exactly (each
    interval's overlap with each bin, not a sample)."""
    task, unit, start, end = task_columns(trace)
    edges = np.linspace(0.0, max(makespan, 1e-300), BINS + 1)
    n_rows = len(rows.labels)
    per_unit = _weights(rows, n_rows)
    # the part of each interval inside each bin it touches: full bins via a running sum
    width = edges[1] - edges[0]
    first = np.minimum((start / width).astype(np.int64), BINS - 1)
    last = np.minimum((end / width).astype(np.int64), BINS - 1)
    kind = kind_of_task[task]
    busy = np.zeros((n_rows, kinds, BINS + 1))
    for g in range(n_rows):
        w = per_unit[:, g][unit]
        on = np.flatnonzero(w)
        if not len(on):
            continue
        k, f, la, s, e, wo = kind[on], first[on], last[on], start[on], end[on], w[on]
        same = f == la
        np.add.at(busy[g], (k[same], f[same]), wo[same] * (e[same] - s[same]))
        k, f, la, s, e, wo = k[~same], f[~same], la[~same], s[~same], e[~same], wo[~same]
        np.add.at(busy[g], (k, f), wo * (edges[f + 1] - s))
        np.add.at(busy[g], (k, la), wo * (e - edges[la]))
        full = np.zeros((kinds, BINS + 1))  # +w from bin f+1, -w from bin la: a running sum
        np.add.at(full, (k, f + 1), wo * width)
        np.add.at(full, (k, la), -wo * width)
        busy[g] += np.cumsum(full, axis=1)
    units = np.bincount(rows.of_unit, minlength=n_rows).astype(float)
    return edges, busy[:, :, :BINS] / (units[:, None, None] * width)


def _weights(rows: Grouping, n_rows: int) -> np.ndarray:
    """(units, rows) matrix: how many units of each row a unit's trace rows stand for."""
    n_units = len(rows.of_unit)
    per_unit = np.zeros((n_units, n_rows))
    per_unit[np.arange(n_units), rows.of_unit] = 1.0
    for u, members in rows.members.items():
        per_unit[u] = np.bincount(rows.of_unit[list(members)], minlength=n_rows)
    return per_unit
