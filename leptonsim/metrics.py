"""Metrics of one run, computed from the graph, the cluster, the task times and the
trace alone, so they apply equally to a simulated and a measured trace."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .graph import TaskGraph
from .hardware import Cluster
from .trace import Trace, busy_seconds, spread_to_groups


@dataclass(frozen=True)
class UnitStats:
    name: str
    tasks: int
    busy_s: float
    utilization: float


@dataclass(frozen=True)
class ChannelStats:
    name: str
    transfers: int
    bytes: float
    busy_s: float
    utilization: float


@dataclass(frozen=True)
class Metrics:
    makespan_s: float
    total_work_s: float          # W: every task on the best single unit type
    best_single_unit: str
    capacity: float              # C_eff: units counted in multiples of that best unit
    critical_path_s: float       # CP: heaviest path, each task at its fastest, no communication
    critical_path: tuple[str, ...]
    speedup: float               # W / makespan
    parallel_efficiency: float   # W / (C_eff * makespan)
    transfer_bytes: float
    identical_units: bool
    units: tuple[UnitStats, ...]
    channels: tuple[ChannelStats, ...]


def relative_speeds(times: np.ndarray, ref: int) -> np.ndarray:
    """s_k = max over tasks of t_ref / t_k: unit type k is never more than s_k times
    as fast as the reference on any task, so W_ref <= makespan * sum_i s_i holds for
    every schedule. For fixed-duration tasks s_k = E_k / E_ref exactly."""
    ref_t = times[ref]
    speeds = []
    for row in times:
        mask = ref_t > 0
        if not mask.any():
            speeds.append(1.0)
            continue
        with np.errstate(divide="ignore"):
            speeds.append(float(np.max(ref_t[mask] / row[mask])))
    return np.array(speeds)


def work_times(graph: TaskGraph, times: np.ndarray) -> np.ndarray:
    """The task times as work: 0 for communication tasks (graph.comm, a collapsed
    collective). Communication is not work in any mode: spelled out as transfers it
    adds no task time, so W, CP and T_i count compute alone."""
    return np.where(graph.comm, 0.0, times) if graph.comm is not None and graph.comm.any() else times


def compute(graph: TaskGraph, cluster: Cluster, times: np.ndarray, trace: Trace,
            copies: np.ndarray | None = None,
            groups: dict[int, tuple[int, ...]] | None = None) -> Metrics:
    """times: per unit type, per task (as from a CostModel). copies[i]: how many units
    run task i at once (a symmetric tensor-parallel group's size; 1 when None), so W
    counts the work of every unit the task stands for. Communication tasks count as
    no work, are weightless on the critical path and keep no unit busy. groups: the
    simulated units that stand for others (StepGraph.mirrored): each member's unit
    figures are its representative's, as in trace.mirror_units, without its rows."""
    times = work_times(graph, times)
    ref = int(np.argmin(times.sum(axis=1))) if graph.size else 0
    work = float(times[ref].sum() if copies is None else (times[ref] * copies).sum())
    capacity = float(relative_speeds(times, ref)[cluster.unit_type].sum())
    span, path = graph.longest_path(times.min(axis=0)) if graph.size else (0.0, [])
    makespan = trace.makespan_s
    safe = makespan if makespan > 0 else 1.0
    return Metrics(
        makespan_s=makespan, total_work_s=work,
        best_single_unit=_type_name(cluster, ref), capacity=capacity,
        critical_path_s=span, critical_path=tuple(graph.names[i] for i in path),
        speedup=work / safe if makespan > 0 else 1.0,
        parallel_efficiency=work / (capacity * safe) if makespan > 0 else 1.0,
        transfer_bytes=_transfer_bytes(graph, trace),
        identical_units=len(cluster.unit_types) == 1,
        units=_unit_stats(cluster, trace, safe, graph.comm, groups),
        channels=_channel_stats(trace, safe),
    )


def _type_name(cluster: Cluster, k: int) -> str:
    return cluster.units[int(np.flatnonzero(cluster.unit_type == k)[0])].name


def _transfer_bytes(graph: TaskGraph, trace: Trace) -> float:
    """Bytes of every edge whose producer and consumer ran on different units."""
    unit = np.empty(graph.size, np.int64)
    unit[trace.task] = trace.task_unit
    crossing = unit[graph.edge_src] != unit[graph.edge_dst]
    return float(graph.edge_bytes[crossing].sum())


def _unit_stats(cluster: Cluster, trace: Trace, makespan: float, comm: np.ndarray | None,
                groups: dict[int, tuple[int, ...]] | None) -> tuple[UnitStats, ...]:
    n = cluster.size
    busy = spread_to_groups(busy_seconds(trace, n, comm), groups)
    count = spread_to_groups(np.bincount(trace.task_unit, minlength=n), groups)
    return tuple(UnitStats(u.name, int(count[i]), float(busy[i]), float(busy[i] / makespan))
                 for i, u in enumerate(cluster.units))


def _channel_stats(trace: Trace, makespan: float) -> tuple[ChannelStats, ...]:
    n = len(trace.channel_names)
    busy = covered(trace.xfer_channel, trace.xfer_start, trace.xfer_end, n)
    nbytes = np.bincount(trace.xfer_channel, trace.xfer_bytes, minlength=n)
    count = np.bincount(trace.xfer_channel, minlength=n)
    return tuple(ChannelStats(name, int(count[c]), float(nbytes[c]), float(busy[c]),
                              float(busy[c] / makespan))
                 for c, name in enumerate(trace.channel_names))


def covered(resource: np.ndarray, start: np.ndarray, end: np.ndarray, n: int) -> np.ndarray:
    """Per resource 0..n-1: the length of the union of its [start, end) intervals.
    Overlaps count once (transfers sharing a channel under fair sharing)."""
    out = np.zeros(n)
    order = np.lexsort((start, resource))
    r, s, e = np.asarray(resource)[order], np.asarray(start)[order], np.asarray(end)[order]
    for idx in np.split(np.arange(len(r)), np.flatnonzero(np.diff(r)) + 1):
        if len(idx):
            reach = np.maximum.accumulate(e[idx])
            before = np.concatenate([s[idx[:1]], reach[:-1]])   # covered so far
            out[r[idx[0]]] = float(np.maximum(e[idx] - np.maximum(s[idx], before), 0.0).sum())
    return out
