"""The textbook simpy pattern the engine avoids: one simpy process per task.

Used by `engine_throughput.py` as the baseline. Each task is a process that

1. waits for its inputs: one simpy Event per edge (a single event, or AllOf when
   the task has several inputs);
2. requests its unit, a capacity-1 simpy resource;
3. holds it for the task time, then releases it;
4. for every out-edge: an edge to the same unit (or of zero bytes) succeeds the
   edge event at once; an edge to another unit starts one transfer process, which
   requests each channel Resource on the route in turn (store-and-forward: per hop
   hold latency + bytes / bandwidth, release) and then succeeds the edge event.

It simulates the same system as `leptonsim.sim.simulate`: the same plan (unit per
task and priority, from the same scheduler), the same task times (the same cost
model), the same routes (`Cluster.route`) and channels, and the hop time computed
with the same floating-point expression (latency + bytes * (1 / bandwidth)).

Unit queue discipline. The engine's units run, among their ready tasks, the one
with the lowest plan priority (for `Static`, the lowest task id). A FIFO
`simpy.Resource` runs them in the order they became ready instead, which is a
different scheduling policy, so it gives another schedule and another makespan.
`unit_queue="priority"` (the default) uses `simpy.PriorityResource` keyed by the
plan priority and reproduces the engine's schedule whenever no two events fall on
the same instant; `unit_queue="fifo"` is the plain textbook Resource, kept for a
timing comparison only. Channels are FIFO in both, as in the engine.

Where simultaneous events can occur the two simulators may break ties differently
(e.g. the engine releases a unit's same-unit successors before the unit picks its
next task; here the freed unit is granted to an already waiting request first), so
only tie-free configurations can be compared exactly.
"""

from __future__ import annotations

from array import array
from dataclasses import dataclass

import numpy as np
import simpy

from leptonsim.cost import CostModel, Roofline
from leptonsim.graph import TaskGraph
from leptonsim.hardware import Cluster
from leptonsim.sim.schedulers import Scheduler, Static


@dataclass(frozen=True)
class BaselineResult:
    makespan_s: float
    task_start: np.ndarray   # per task id
    task_unit: np.ndarray    # per task id
    hops: int                # transfer hops carried (same count as the engine's trace)


def simulate_per_task(graph: TaskGraph, cluster: Cluster, scheduler: Scheduler | None = None,
                      cost: CostModel | None = None, unit_queue: str = "priority"
                      ) -> BaselineResult:
    """Counterpart of `leptonsim.sim.simulate` (fixed placement only)."""
    times = (cost or Roofline()).task_times(graph, cluster)
    plan = (scheduler or Static()).plan(graph, cluster, times)
    if plan.unit is None:
        raise ValueError("the per-task baseline needs a plan with a fixed unit per task")
    return run_per_task(graph, cluster, plan.unit, plan.priority, times, unit_queue)


def run_per_task(graph: TaskGraph, cluster: Cluster, unit: np.ndarray, priority: np.ndarray,
                 times: np.ndarray, unit_queue: str = "priority") -> BaselineResult:
    if unit_queue not in ("priority", "fifo"):
        raise ValueError(f"unit_queue must be 'priority' or 'fifo', got {unit_queue!r}")
    env = simpy.Environment()
    n = graph.size
    unit_of: list[int] = unit.tolist()
    prio: list[int] = priority.tolist()
    types: list[int] = cluster.unit_type.tolist()
    cost_rows = [row.tolist() for row in times]
    dur = [cost_rows[types[unit_of[t]]][t] for t in range(n)]

    by_priority = unit_queue == "priority"
    units = [simpy.PriorityResource(env, 1) if by_priority else simpy.Resource(env, 1)
             for _ in range(cluster.size)]
    channels = cluster.channels
    chan = [simpy.Resource(env, 1) for _ in channels]
    latency = [ch.latency_s for ch in channels]
    inv_bw = (1.0 / np.array([ch.bandwidth for ch in channels])).tolist()  # as the engine does

    edge_dst: list[int] = graph.edge_dst.tolist()
    edge_bytes: list[float] = graph.edge_bytes.tolist()
    edge_done = [env.event() for _ in range(graph.num_edges)]
    pptr, peids = (a.tolist() for a in graph.predecessors)
    sptr, seids = (a.tolist() for a in graph.successors)

    start = array("d", bytes(8 * n))
    placed = array("q", bytes(8 * n))
    hops = [0]

    def transfer(e: int, nbytes: float, path: tuple[int, ...]):
        for c in path:  # store-and-forward: hold one channel at a time
            req = chan[c].request()
            yield req
            yield env.timeout(latency[c] + nbytes * inv_bw[c])
            chan[c].release(req)
            hops[0] += 1
        edge_done[e].succeed()

    def task(t: int):
        a, b = pptr[t], pptr[t + 1]
        if b - a == 1:
            yield edge_done[peids[a]]
        elif b > a:
            yield env.all_of([edge_done[e] for e in peids[a:b]])
        u = unit_of[t]
        res = units[u]
        req = res.request(priority=prio[t]) if by_priority else res.request()
        yield req
        start[t] = env.now
        placed[t] = u
        yield env.timeout(dur[t])
        res.release(req)
        for i in range(sptr[t], sptr[t + 1]):
            e = seids[i]
            v = unit_of[edge_dst[e]]
            if v == u or edge_bytes[e] == 0:
                edge_done[e].succeed()
            else:
                env.process(transfer(e, edge_bytes[e], cluster.route(u, v)))

    for t in range(n):
        env.process(task(t))
    env.run()
    return BaselineResult(
        makespan_s=float(env.now),
        task_start=np.frombuffer(start, np.float64).copy(),
        task_unit=np.frombuffer(placed, np.int64).copy(),
        hops=hops[0],
    )
