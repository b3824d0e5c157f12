"""Cost models: how long a task takes on a kind of unit.

One interface (`CostModel.task_times`) so the analytic roofline and, later, a
calibrated or measured model are interchangeable. Transfers are costed by the
network (per hop: latency + bytes / bandwidth), not here.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from .graph import TaskGraph
from .hardware import Cluster, ComputeUnit


class CostModel(Protocol):
    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        """Seconds, shape (len(cluster.unit_types), graph.size)."""
        ...


class Roofline:
    """t = max(flops / (peak * E), bytes / mem_bw) + overhead; fixed tasks take d / E,
    fixed communication stand-ins (graph.comm) take d."""

    name = "roofline"

    def task_times(self, graph: TaskGraph, cluster: Cluster) -> np.ndarray:
        return np.stack([self.unit_times(graph, u) for u in cluster.unit_types])

    @staticmethod
    def seconds(flops: np.ndarray, nbytes: np.ndarray, unit: ComputeUnit) -> np.ndarray:
        """Roofline time of FLOP/byte columns on one unit."""
        compute = flops / (unit.peak_flops * unit.efficiency)
        return np.maximum(compute, nbytes / unit.memory_bandwidth) + unit.overhead_s

    @classmethod
    def unit_times(cls, graph: TaskGraph, unit: ComputeUnit) -> np.ndarray:
        t = cls.seconds(graph.flops, graph.nbytes, unit)
        fixed = ~np.isnan(graph.duration_s)
        t[fixed] = graph.duration_s[fixed] / unit.efficiency
        comm = fixed & graph.comm
        t[comm] = graph.duration_s[comm]
        return t


def unit_times(times: np.ndarray, cluster: Cluster) -> np.ndarray:
    """Expand per-type times to per-unit times, shape (cluster.size, tasks)."""
    return times[cluster.unit_type]
