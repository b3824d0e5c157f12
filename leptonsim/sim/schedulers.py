"""Schedulers turn (graph, cluster, task times) into a Plan the engine executes.

A Plan fixes each task's unit (or leaves it to run time, for the greedy baseline)
and a priority: among ready tasks, a unit always runs the lowest priority value
first, ties broken by task id. Everything here is deterministic.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import numpy as np

from ..errors import SimulationError
from ..graph import TaskGraph
from ..hardware import Cluster


@dataclass(frozen=True)
class Plan:
    unit: np.ndarray | None  # per task; None = chosen at run time by the first idle unit
    priority: np.ndarray     # per task; lower runs first
    scheduler: str


class Scheduler(Protocol):
    name: str

    def plan(self, graph: TaskGraph, cluster: Cluster, times: np.ndarray,
             cut_through: bool = True) -> Plan:
        """`cut_through`: whether the network the plan runs on cuts through switches
        (the planners that price transfers price them as it will carry them)."""


def _check_pins(graph: TaskGraph, cluster: Cluster) -> None:
    bad = np.flatnonzero(graph.pin >= cluster.size)
    if bad.size:
        t = int(bad[0])
        raise SimulationError(f"task {graph.names[t]} is pinned to unit {graph.pin[t]}, "
                              f"but the cluster has {cluster.size} units")


class Static:
    """Every task runs where it is pinned, in task-id order among ready tasks."""

    name = "static"

    def plan(self, graph: TaskGraph, cluster: Cluster, times: np.ndarray,
             cut_through: bool = True) -> Plan:
        _check_pins(graph, cluster)
        free = np.flatnonzero(graph.pin < 0)
        if free.size:
            raise SimulationError(f"static scheduler: task {graph.names[int(free[0])]} "
                                  "is not pinned to a unit (set unit = ... or use heft)")
        return Plan(graph.pin, np.arange(graph.size), self.name)  # read, never written


class Greedy:
    """Baseline: whenever a unit is idle it takes the ready task with the lowest id
    (pinned tasks wait for their unit). Work-conserving, so Graham's bound applies."""

    name = "greedy"

    def plan(self, graph: TaskGraph, cluster: Cluster, times: np.ndarray,
             cut_through: bool = True) -> Plan:
        _check_pins(graph, cluster)
        return Plan(None, np.arange(graph.size), self.name)


class Heft:
    """HEFT (Topcuoglu et al., 2002) without insertion: tasks in decreasing upward
    rank (mean task and transfer costs) are placed on the unit giving the earliest
    finish time, counting uncontended transfer time from each predecessor."""

    name = "heft"

    def plan(self, graph: TaskGraph, cluster: Cluster, times: np.ndarray,
             cut_through: bool = True) -> Plan:
        _check_pins(graph, cluster)
        per_unit = times[cluster.unit_type]  # (units, tasks)
        lat, gap = cluster.comm_tables(cut_through)
        off = ~np.eye(cluster.size, dtype=bool)
        mean_lat = float(lat[off].mean()) if cluster.size > 1 else 0.0
        mean_gap = float(gap[off].mean()) if cluster.size > 1 else 0.0
        edge_cost = np.where(graph.edge_bytes > 0, mean_lat + graph.edge_bytes * mean_gap, 0.0)
        rank = graph.upward_rank(per_unit.mean(axis=0), edge_cost)
        order = np.lexsort((np.arange(graph.size), graph.level_of, -rank))
        unit = self._place(graph, cluster, per_unit, order, lat, gap, cut_through)
        priority = np.empty(graph.size, np.int64)
        priority[order] = np.arange(graph.size)
        return Plan(unit, priority, self.name)

    @staticmethod
    def _place(graph: TaskGraph, cluster: Cluster, per_unit: np.ndarray, order: np.ndarray,
               lat: np.ndarray, gap: np.ndarray, cut_through: bool) -> np.ndarray:
        unit = np.full(graph.size, -1, np.int64)
        finish = np.zeros(graph.size)
        avail = np.zeros(cluster.size)
        ptr, eids = graph.predecessors
        src, nbytes, pin = graph.edge_src, graph.edge_bytes, graph.pin
        for v in order.tolist():
            ready = np.zeros(cluster.size)
            for e in eids[ptr[v]:ptr[v + 1]].tolist():
                p = src[e]
                arrive = finish[p] + (lat[unit[p]] + nbytes[e] * gap[unit[p]]
                                      if nbytes[e] > 0 else 0.0)
                np.maximum(ready, arrive, out=ready)
            eft = np.maximum(avail, ready) + per_unit[:, v]
            u = int(pin[v]) if pin[v] >= 0 else int(np.argmin(eft))
            unit[v], finish[v] = u, eft[u]
            avail[u] = eft[u]
        return unit


class HeftContention(Heft):
    """HEFT that sees the links it loads: the same ranks, but a predecessor's data
    reaches a candidate unit as the engine's FIFO channels would carry it, behind the
    transfers already planned on each channel of the route (contention-aware list
    scheduling, Sinnen and Sousa, IEEE TPDS 16(1), 2005). Like the units, the channels
    are planned without insertion: a transfer queues behind everything planned on them,
    cut-through or store-and-forward as the network will carry it."""

    name = "heft_contention"

    @staticmethod
    def _place(graph: TaskGraph, cluster: Cluster, per_unit: np.ndarray, order: np.ndarray,
               lat: np.ndarray, gap: np.ndarray, cut_through: bool) -> np.ndarray:
        plan = _LinkPlan(graph, cluster, cut_through)
        cost = per_unit.T.tolist()
        avail = [0.0] * cluster.size
        for v in order.tolist():
            pinned, inputs = int(graph.pin[v]), plan.inputs(v)
            choices = []
            for u in [pinned] if pinned >= 0 else range(cluster.size):
                ready, booked = plan.arrival(inputs, u)
                choices.append((max(avail[u], ready) + cost[v][u], u, booked))
            eft, u, booked = min(choices, key=lambda c: (c[0], c[1]))
            avail[u] = eft
            plan.commit(v, u, eft, booked)
        return plan.unit


class _LinkPlan:
    """The placement so far and each channel's planned transfers (when they end)."""

    def __init__(self, graph: TaskGraph, cluster: Cluster, cut_through: bool) -> None:
        self.cluster, self.cut_through = cluster, cut_through
        self.unit = np.full(graph.size, -1, np.int64)
        self.finish = [0.0] * graph.size
        self.free = [0.0] * len(cluster.channels)
        self.hop = [(c.latency_s, 1.0 / c.bandwidth) for c in cluster.channels]
        self.ptr, self.eids = graph.predecessors
        self.src, self.nbytes = graph.edge_src.tolist(), graph.edge_bytes.tolist()

    def inputs(self, v: int) -> list[tuple[float, int]]:
        """v's input edges with their producers' finish times, in the order the engine
        sends them: by producer finish."""
        return sorted((self.finish[self.src[e]], e) for e in self.eids[self.ptr[v]:self.ptr[v + 1]].tolist())

    def arrival(self, inputs: list[tuple[float, int]], u: int) -> tuple[float, dict[int, float]]:
        """When all those inputs would be on unit u, and the channel bookings for it: each
        hop queued as network.FifoNetwork (cut-through) or StoreAndForward queue it."""
        src, nbytes, hop, cut_through = self.src, self.nbytes, self.hop, self.cut_through
        ready, booked = 0.0, dict[int, float]()
        for t, e in inputs:
            at = int(self.unit[src[e]])
            if at != u and nbytes[e] > 0:
                tail = 0.0
                for c in self.cluster.route(at, u):
                    start = max(t, booked.get(c, self.free[c]))
                    tail = booked[c] = max(start + (hop[c][0] + nbytes[e] * hop[c][1]),
                                           tail + hop[c][0])
                    t = start + hop[c][0] if cut_through else tail
                t = tail
            ready = max(ready, t)
        return ready, booked

    def commit(self, v: int, u: int, finish: float, booked: dict[int, float]) -> None:
        self.unit[v], self.finish[v] = u, finish
        for c, t in booked.items():
            self.free[c] = t


SCHEDULERS: dict[str, type[Scheduler]] = {"static": Static, "heft": Heft,
                                           "heft_contention": HeftContention, "greedy": Greedy}

T = TypeVar("T")


def by_name(registry: Mapping[str, T], name: str, what: str) -> T:
    """registry[name]; for an unknown name, a one-line ValueError naming the choices.
    The schedulers and the networks are both chosen this way (SCHEDULERS, NETWORKS)."""
    try:
        return registry[name]
    except (KeyError, TypeError):  # TypeError: an unhashable name, such as a list
        choices = ", ".join(map(repr, registry))
        raise ValueError(f"unknown {what} {name!r}: expected one of {choices}") from None
