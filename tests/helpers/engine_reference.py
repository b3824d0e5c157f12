"""The engine's fixed placement as it was before its own event loop: one simpy process
per unit, sleeping on an Alarm and woken by an Interrupt (commit dd4930a). Kept as the
oracle of tests/test_engine_loop.py: the event loop must give every task the same
start and end, and every hop the same times, on any graph and placement."""

from __future__ import annotations

from contextlib import suppress
from heapq import heappop, heappush
from math import inf

import numpy as np
import simpy

from leptonsim.cost import DEFAULT
from leptonsim.graph import TaskGraph
from leptonsim.hardware import Cluster
from leptonsim.sim.engine import NETWORKS, _column
from leptonsim.sim.network import Alarm, call_at
from leptonsim.sim.schedulers import SCHEDULERS


def simulate_reference(graph: TaskGraph, cluster: Cluster, scheduler: str = "static",
                       network: str = "fifo") -> tuple[np.ndarray, np.ndarray, tuple]:
    """Per-task (start, end) indexed by task id, and the hops (edge, channel, start, end)."""
    times = DEFAULT.task_times(graph, cluster)
    carrier = NETWORKS[network]
    plan = SCHEDULERS[scheduler]().plan(graph, cluster, times, carrier.cut_through)
    return _Reference(graph, cluster, plan.unit, plan.priority, times, carrier).run()


class _Reference:
    def __init__(self, graph, cluster, placed, priority, times, network) -> None:
        self.env = env = simpy.Environment()
        self.graph, self.cluster, self.times, n = graph, cluster, times, graph.size
        self.unit_of, self.prio = placed.tolist(), priority.tolist()
        self.pending = graph.in_degree.tolist()
        self.ready_at = [0.0] * n
        ptr, eids = graph.successors
        self.ptr, self.eids = ptr.tolist(), eids.tolist()
        self.dst, self.nbytes = graph.edge_dst.tolist(), graph.edge_bytes.tolist()
        units = cluster.size
        self.queues: list[list] = [[] for _ in range(units)]
        self.future: list[list] = [[] for _ in range(units)]
        self.idle: list = [None] * units
        self.wake_at = [inf] * units
        self.instant = (times[cluster.unit_type[placed], np.arange(n)] == 0).tolist()
        self.start = [0.0] * n
        self.network = network(env, cluster.channels, self.arrive)
        cost = [_column(row, np.float64) for row in times]
        types = cluster.unit_type.tolist()
        self.units = [env.process(self.unit(u, cost[types[u]])) for u in range(units)]

    def run(self):
        for t in np.flatnonzero(self.graph.in_degree == 0).tolist():
            if self.instant[t]:
                self.at_once(t, 0.0)
            else:
                heappush(self.future[self.unit_of[t]], (0.0, self.prio[t], t))
        self.env.run()
        start = np.array(self.start)
        end = start + self.times[self.cluster.unit_type[self.unit_of], np.arange(self.graph.size)]
        return start, end, self.network.hops(self.graph.edge_bytes)

    def unit(self, u, cost):
        env, own, future = self.env, self.queues[u], self.future[u]
        now = env.now
        while True:
            while future and future[0][0] <= now:
                _, p, t = heappop(future)
                heappush(own, (p, t))
            if not own:
                yield from self.sleep(u)
                now = env.now
                continue
            t = heappop(own)[1]
            end = now + cost[t]
            yield env.timeout(cost[t])
            self.start[t] = now
            self.push(t, u, end)
            now = end

    def push(self, t, u, at):
        for e in self.eids[self.ptr[t]:self.ptr[t + 1]]:
            v = self.unit_of[self.dst[e]]
            if v == u or self.nbytes[e] == 0:
                self.arrive(e, at)
            else:
                self.network.send(e, self.nbytes[e], self.cluster.route(u, v), at)

    def sleep(self, u):
        alarm = self.idle[u] = Alarm(self.env)
        self.wake_at[u] = inf
        if self.future[u]:
            self.wake(u, self.future[u][0][0])
        with suppress(simpy.Interrupt):
            yield alarm
        self.idle[u] = None

    def wake(self, u, when):
        if when >= self.wake_at[u]:
            return
        alarm, first = self.idle[u], self.wake_at[u] == inf
        self.wake_at[u] = when
        if first:
            alarm.ring_at(when)
        elif when <= self.env.now:
            self.units[u].interrupt()
        else:
            call_at(self.env, when, lambda _: self.idle[u] is alarm and self.units[u].interrupt())

    def arrive(self, e, at):
        w = self.dst[e]
        self.ready_at[w] = max(self.ready_at[w], at)
        self.pending[w] -= 1
        if self.pending[w] == 0:
            u, when = self.unit_of[w], self.ready_at[w]
            if self.instant[w]:
                self.at_once(w, when)
                return
            heappush(self.future[u], (when, self.prio[w], w))
            if self.idle[u] is not None:
                self.wake(u, when)

    def at_once(self, t, when):
        if when > self.env.now:
            call_at(self.env, when, lambda _: self.at_once(t, when))
            return
        self.due = getattr(self, "due", [])
        self.due.append((t, when))
        if len(self.due) == 1:
            while self.due:
                t0, w0 = self.due[0]
                self.start[t0] = w0
                self.push(t0, self.unit_of[t0], w0)
                self.due.pop(0)
