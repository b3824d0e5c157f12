"""The discrete-event engine: one simpy process per unit and one per channel.

Per-task state is kept in flat Python lists indexed by task id (fast to touch from
simpy processes); a task is never an object or a process of its own. With a fixed
placement, a finished task pushes its output to each consumer's unit right away.
With run-time placement (greedy), a unit that picks a task pulls its inputs first.
"""

from __future__ import annotations

from array import array
from heapq import heappop, heappush

import numpy as np
import simpy

from ..cost import CostModel, Roofline
from ..graph import TaskGraph
from ..hardware import Cluster
from ..trace import Trace
from .network import FifoNetwork
from .schedulers import Heft, Plan, Scheduler


def simulate(graph: TaskGraph, cluster: Cluster, scheduler: Scheduler | None = None,
             cost: CostModel | None = None) -> Trace:
    """Run the graph on the cluster; return the trace of every task and transfer hop."""
    times = (cost or Roofline()).task_times(graph, cluster)
    plan = (scheduler or Heft()).plan(graph, cluster, times)
    return run_plan(graph, cluster, plan, times)


def run_plan(graph: TaskGraph, cluster: Cluster, plan: Plan, times: np.ndarray) -> Trace:
    """Execute an already computed plan with per-type task times (types x tasks)."""
    return _Run(graph, cluster, plan, times).run()


class _Run:
    def __init__(self, graph: TaskGraph, cluster: Cluster, plan: Plan, times: np.ndarray) -> None:
        self.env = env = simpy.Environment()
        self.graph, self.cluster, self.times = graph, cluster, times
        self.dynamic = plan.unit is None
        self.unit_of: list[int] = (graph.pin if plan.unit is None else plan.unit).tolist()
        self.prio: list[int] = plan.priority.tolist()
        self.pending: list[int] = graph.in_degree.tolist()
        ptr, eids = graph.successors
        self.succ_ptr, self.succ_edges = ptr.tolist(), eids.tolist()
        self.edge_dst: list[int] = graph.edge_dst.tolist()
        self.edge_bytes: list[float] = graph.edge_bytes.tolist()
        self.queues: list[list[tuple[int, int]]] = [[] for _ in range(cluster.size)]
        self.shared: list[tuple[int, int]] = []   # run-time placement: any unit may take these
        self.idle: list[simpy.Event | None] = [None] * cluster.size
        self.gates: dict[int, list] = {}          # pulling task -> [transfers left, event]
        delivered = self._delivered if self.dynamic else self._arrived
        self.network = FifoNetwork(env, cluster.channels, delivered)
        self.rec_task, self.rec_unit, self.rec_start = array("q"), array("q"), array("d")
        self.route_rows: list[list[tuple[int, ...] | None]] = [
            [None] * cluster.size for _ in range(cluster.size)]
        types = cluster.unit_type.tolist()
        cost = [row.tolist() for row in times]
        unit = self._dynamic_unit if self.dynamic else self._static_unit
        for u in range(cluster.size):
            env.process(unit(u, cost[types[u]]))

    def run(self) -> Trace:
        for t in np.flatnonzero(self.graph.in_degree == 0).tolist():
            self._ready(t)
        self.env.run()
        if len(self.rec_task) != self.graph.size:
            raise AssertionError("engine finished with unexecuted tasks")  # a bug, not input
        return self._trace()

    # -- units --------------------------------------------------------------------
    def _static_unit(self, u: int, cost: list[float]):  # simpy process
        """Fixed placement: run own ready tasks, lowest priority first. The hot loop of
        the engine, so attribute lookups are hoisted into locals."""
        env, own, idle, timeout = self.env, self.queues[u], self.idle, self.env.timeout
        rec_task, rec_unit = self.rec_task.append, self.rec_unit.append
        rec_start, finished = self.rec_start.append, self._push_outputs
        while True:
            while not own:
                idle[u] = env.event()
                yield idle[u]
            t = heappop(own)[1]
            start = env.now
            yield timeout(cost[t])
            rec_task(t)
            rec_unit(u)
            rec_start(start)
            finished(t, u)

    def _dynamic_unit(self, u: int, cost: list[float]):  # simpy process
        """Run-time placement: take a pinned task of this unit or the best shared one,
        pull its inputs, run it."""
        env, own, shared, idle = self.env, self.queues[u], self.shared, self.idle
        while True:
            while not own and not shared:
                idle[u] = env.event()
                yield idle[u]
            if own and (not shared or own[0] < shared[0]):
                t = heappop(own)[1]
            else:
                t = heappop(shared)[1]
                gate = self._pull(t, u)
                if gate is not None:
                    yield gate
            start = env.now
            yield env.timeout(cost[t])
            self.rec_task.append(t)
            self.rec_unit.append(u)
            self.rec_start.append(start)
            self._release_successors(t, u)

    def _ready(self, t: int) -> None:
        u = self.unit_of[t]
        if u >= 0:
            heappush(self.queues[u], (self.prio[t], t))
        else:
            heappush(self.shared, (self.prio[t], t))
            u = next((v for v, ev in enumerate(self.idle) if ev is not None), -1)
        ev = self.idle[u] if u >= 0 else None
        if ev is not None:  # wake the unit (the lowest-numbered idle one for shared work)
            self.idle[u] = None
            ev.succeed()

    # -- data movement -------------------------------------------------------------
    def _push_outputs(self, t: int, u: int) -> None:
        """Fixed placement: send t's output to each consumer's unit right away."""
        edges, nbytes, unit_of, dst = self.succ_edges, self.edge_bytes, self.unit_of, self.edge_dst
        pending, routes, send = self.pending, self.route_rows[u], self.network.send
        for i in range(self.succ_ptr[t], self.succ_ptr[t + 1]):
            e = edges[i]
            w = dst[e]
            v = unit_of[w]
            if v == u or nbytes[e] == 0:  # data already here: the dependency is met now
                pending[w] -= 1
                if pending[w] == 0:
                    self._ready(w)
                continue
            path = routes[v]
            if path is None:
                path = routes[v] = self.cluster.route(u, v)
            send(e, nbytes[e], path)

    def _release_successors(self, t: int, u: int) -> None:
        """Run-time placement: successors become ready now and pull data when placed."""
        edges = self.succ_edges
        for i in range(self.succ_ptr[t], self.succ_ptr[t + 1]):
            self._arrived(edges[i])

    def _arrived(self, e: int) -> None:
        """Edge e's data (or, with run-time placement, its producer's end) has arrived."""
        w = self.edge_dst[e]
        left = self.pending[w] - 1
        self.pending[w] = left
        if left == 0:
            self._ready(w)

    def _pull(self, t: int, u: int) -> simpy.Event | None:
        """Place t on u and start the transfers of its inputs; an event for their arrival."""
        self.unit_of[t] = u
        ptr, eids = self.graph.predecessors
        count = 0
        for e in eids[ptr[t]:ptr[t + 1]].tolist():
            src_unit = self.unit_of[int(self.graph.edge_src[e])]
            if src_unit != u and self.edge_bytes[e] > 0:
                self.network.send(e, self.edge_bytes[e], self.cluster.route(src_unit, u))
                count += 1
        if count == 0:
            return None
        gate = self.env.event()
        self.gates[t] = [count, gate]
        return gate

    def _delivered(self, e: int) -> None:
        gate = self.gates[self.edge_dst[e]]
        gate[0] -= 1
        if gate[0] == 0:
            del self.gates[self.edge_dst[e]]
            gate[1].succeed()

    # -- result ----------------------------------------------------------------------
    def _trace(self) -> Trace:
        g, net = self.graph, self.network
        task, unit = _ints(self.rec_task), _ints(self.rec_unit)
        start = _floats(self.rec_start)
        # ends are recomputed exactly as simpy computed them: start + duration
        end = start + self.times[self.cluster.unit_type[unit], task]
        edge, chan = _ints(net.edge), _ints(net.channel)
        xstart = _floats(net.start)
        xend = xstart + (net.latency[chan] + g.edge_bytes[edge] * net.inv_bw[chan])
        return Trace(
            task_names=g.names, task_kinds=g.kinds or (),
            unit_names=[u.name for u in self.cluster.units],
            channel_names=[c.name for c in self.cluster.channels],
            task=task, task_unit=unit, task_start=start, task_end=end,
            xfer_src_task=g.edge_src[edge], xfer_dst_task=g.edge_dst[edge], xfer_channel=chan,
            xfer_bytes=g.edge_bytes[edge], xfer_start=xstart, xfer_end=xend,
        )


def _ints(a: array) -> np.ndarray:
    return np.frombuffer(a, np.int64).copy() if len(a) else np.zeros(0, np.int64)


def _floats(a: array) -> np.ndarray:
    return np.frombuffer(a, np.float64).copy() if len(a) else np.zeros(0)
