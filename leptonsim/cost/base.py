"""The cost-model interface, and the rules every model shares.

A model answers two questions. `seconds(flops, nbytes, unit, kinds)`: the compute time
of FLOP/byte columns on one unit type; `work_seconds(..., gemms, kernels)` the same
columns with the GEMM shapes and kernel counts they hold (graph.GemmRows), what code
that has layer columns rather than a graph calls (step partitioning, the optimizer's
estimate): a model that reads shapes (cost/gpu.py) prices them, the others ignore
them and answer `seconds`. `task_times(graph,
cluster)`: every task's time on every unit type, what the schedulers and the engine
need. `TaskCost` derives the second from the first, and applies the two rules of a
task whose duration d is given instead of its work, here and nowhere else:

* a fixed task takes d / E on a unit of efficiency E (d is the time at full speed);
* a communication stand-in (a fixed task with graph.comm set: a collapsed
  collective, a transfer's placeholder) takes d: links, not cores, set its pace;
* every other task takes `unit.slowdown` times longer (a noise draw, leptonsim.noise).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from ..graph import GemmRows, TaskGraph
from ..hardware import Cluster, ComputeUnit


class CostModel(Protocol):
    name: str

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        """Compute seconds of FLOP/byte columns (of op kinds `kinds`) on `unit`."""
        ...

    def work_seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                     kinds: Sequence[str] | None = None, gemms: GemmRows | None = None,
                     kernels: np.ndarray | None = None) -> np.ndarray:
        """`seconds` of columns holding the GEMMs `gemms` (rows' task = column index)
        and launching `kernels` kernels each."""
        ...

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        """Seconds, shape (len(cluster.unit_types), graph.size)."""
        ...


def fixed_times(graph: TaskGraph, unit: ComputeUnit, times: np.ndarray) -> np.ndarray:
    """`times` (per task, on `unit`) with the fixed-duration tasks' times put in: d / E,
    and d for communication stand-ins; all but those stand-ins x unit.slowdown."""
    fixed = ~np.isnan(graph.duration_s)
    out = np.array(times, dtype=float)
    out[fixed] = graph.duration_s[fixed] / unit.efficiency
    if unit.slowdown != 1.0:  # a noise draw's straggler (leptonsim.noise)
        out *= unit.slowdown
    if graph.comm is not None:
        comm = fixed & graph.comm
        out[comm] = graph.duration_s[comm]
    return out


class TaskCost:
    """Base of the models: task_times from `compute_times` per unit type and the
    fixed-task rules. A model defines `name` and `seconds`; one that needs more of a
    graph than its FLOP, byte and kind columns overrides `compute_times`."""

    name = "task-cost"

    def seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                kinds: Sequence[str] | None = None) -> np.ndarray:
        raise NotImplementedError

    def work_seconds(self, flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit,
                     kinds: Sequence[str] | None = None, gemms: GemmRows | None = None,
                     kernels: np.ndarray | None = None) -> np.ndarray:
        """A model blind to shapes: `seconds` of the FLOP/byte columns."""
        return self.seconds(flops, nbytes, unit, kinds)

    def compute_times(self, graph: TaskGraph, unit: ComputeUnit) -> np.ndarray:
        """Per task, its work's seconds on `unit` (fixed tasks are overwritten)."""
        return self.seconds(graph.flops, graph.nbytes, unit, graph.kinds)

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        rows = [fixed_times(graph, u, self.compute_times(graph, u)) for u in cluster.unit_types]
        return np.stack(rows) if rows else np.zeros((0, graph.size))
