"""The discrete-event engine: with a fixed placement its own event loop (fixed.py: a
unit's turn is a tuple on one heap, in simpy's event order), with run-time placement
one simpy process per unit; channels are analytic FIFOs (cut-through by default,
store-and-forward on request) or max-min fair.

Per-task and per-edge state is kept in flat columns indexed by task or edge id: memoryviews
onto the graph's and the plan's NumPy arrays (no copy; an item reads back as a plain
Python int or float, nearly as fast as a list's) and a few new arrays of 8 bytes an
entry for what the run writes. A task is never an object or a process of its own, and
the records of what ran are `array` columns that become the trace's NumPy columns
without a copy: about 100 bytes per task besides the graph, where lists of Python
numbers took about 450 (docs/performance.md, "Memory per task").

With a fixed placement a finished task pushes its output to each consumer's unit at
once. The network answers with the arrival time, so a task whose last input is
still in flight waits in its unit's `future` heap, and the unit itself takes it up
when it next decides: an event per task, not one per transfer. With run-time
placement (greedy) a unit that picks a task pulls its inputs first.

With a fixed placement a task of zero duration on its unit (a collective's ring step,
a join) does not take a turn on the unit: it ends the moment its last input is in,
beside whatever the unit computes, as NCCL's kernels run on their own stream and SMs
beside the compute kernels. So a gradient all-reduce advances while the backward
runs, not only at its task boundaries.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from heapq import heappop, heappush
from math import inf
from typing import Any

import numpy as np
import simpy

from ..cost import DEFAULT, CostModel
from ..graph import TaskGraph
from ..hardware import Cluster
from ..trace import Trace
from .clock import Clock
from .fair import FairNetwork
from .fixed import run_fixed, wake
from .network import Alarm, FifoNetwork, StoreAndForward, call_at
from .schedulers import SCHEDULERS, Plan, by_name

NETWORKS: dict[str, type[FifoNetwork | FairNetwork]] = {
    "fifo": FifoNetwork, "fair": FairNetwork, "store_and_forward": StoreAndForward}
"""fifo: each link direction one transfer at a time, cut-through switches (the default);
fair: max-min fair sharing (also cut-through); store_and_forward: FIFO, per-hop."""


def simulate(graph: TaskGraph, cluster: Cluster, scheduler: str = "heft",
             cost: CostModel | None = None, network: str = "fifo") -> Trace:
    """Run the graph on the cluster; return the trace of every task and transfer hop.
    Both are chosen by name: `scheduler` from SCHEDULERS (static, heft, heft_contention,
    greedy) and `network` from NETWORKS: "fifo" (each channel one transfer at a time,
    cut-through), "fair" (max-min sharing) or "store_and_forward" (FIFO, per hop)."""
    planner = by_name(SCHEDULERS, scheduler, "scheduler")()
    carrier = by_name(NETWORKS, network, "network")  # refused before any work
    times = (cost or DEFAULT).task_times(graph, cluster)
    plan = planner.plan(graph, cluster, times, carrier.cut_through)
    return run_plan(graph, cluster, plan, times, network)


def run_plan(graph: TaskGraph, cluster: Cluster, plan: Plan, times: np.ndarray,
             network: str = "fifo") -> Trace:
    """Execute an already computed plan with per-type task times (types x tasks)."""
    return _Run(graph, cluster, plan, times, by_name(NETWORKS, network, "network")).run()


class _Run:
    def __init__(self, graph: TaskGraph, cluster: Cluster, plan: Plan, times: np.ndarray,
                 network: type[FifoNetwork | FairNetwork]) -> None:
        self.graph, self.cluster, self.times = graph, cluster, times
        self.dynamic = dynamic = plan.unit is None
        env: Any = simpy.Environment() if dynamic else Clock()  # fair.py types it simpy's
        self.env = env
        n, units = graph.size, cluster.size
        placed = graph.pin.copy() if dynamic else plan.unit  # greedy places as it runs
        self.unit_of = _column(placed, np.int64)  # type: ignore[arg-type]
        self.prio = _column(plan.priority, np.int64)
        self.pending = _column(graph.in_degree.astype(np.int32), np.int32)  # inputs to come
        self.ready_at = _column(np.zeros(n), np.float64)      # latest input arrival so far
        ptr, eids = graph.successors
        self.succ_ptr, self.succ_edges = _column(ptr, ptr.dtype), _column(eids, eids.dtype)
        self.edge_dst = _column(graph.edge_dst, np.int64)
        self.edge_bytes = _column(graph.edge_bytes, np.float64)
        self.queues: list[list[tuple[int, int]]] = [[] for _ in range(units)]  # (prio, task)
        # fixed placement: released tasks not yet taken up by their unit, (ready, prio, task)
        self.future: list[list[tuple[float, int, int]]] = [[] for _ in range(units)]
        self.shared: list[tuple[int, int]] = []   # run-time placement: any unit may take these
        self.idle: list[simpy.Event | None] = [None] * units   # run-time: a waiting unit's event
        # fixed placement (fixed.py): is a unit asleep, its sleeps so far, when it wakes,
        # when its running task started
        self.asleep, self.sleeps = [False] * units, [0] * units
        self.wake_at: list[float] = [inf] * units
        self.started: list[float] = [0.0] * units
        self.gates: dict[int, list] = {}  # pulling task -> [transfers left, last arrival, Alarm]
        self.instant = _column(np.zeros(n, bool) if dynamic else
                               times[cluster.unit_type[plan.unit], np.arange(n)] == 0, np.bool_)
        self.due: deque[tuple[int, float]] = deque()  # instant tasks whose inputs are in
        self.arrive = self._arrival()
        self.network = network(env, cluster.channels, self._delivered if dynamic else self.arrive)
        self.release = self._ready if dynamic else self._release
        # what ran, in the order it ended: every task ends once, so the columns are
        # allocated whole and filled by index (`done` rows so far), a store where an
        # append was a call. Task ids as int32 (4 bytes; past 2**31 - 1 raises OverflowError)
        self.order, self.begun = np.empty(n, np.int32), np.empty(n)
        self.rec_task, self.rec_start = _column(self.order, np.int32), _column(self.begun, np.float64)
        self.done = 0
        self.route_rows = [_Routes(cluster, u) for u in range(units)]  # routes used, from u
        types = cluster.unit_type.tolist()
        cost = [_column(row, np.float64) for row in times]
        self.costs = [cost[types[u]] for u in range(units)]  # per unit, its type's times
        if dynamic:
            self.units = [env.process(self._dynamic_unit(u, self.costs[u])) for u in range(units)]

    def run(self) -> Trace:
        self.simulate()
        return self._trace()

    def simulate(self) -> None:
        """Every task, from the roots on: simpy's processes with run-time placement, the
        engine's own loop (fixed.py) with a fixed one."""
        for t in np.flatnonzero(self.graph.in_degree == 0).tolist():
            self.release(t)
        if self.dynamic:
            self.env.run()
        else:
            run_fixed(self)
        if self.done != self.graph.size:
            raise AssertionError("engine finished with unexecuted tasks")  # a bug, not input

    # -- fixed placement (the loop itself is fixed.run_fixed) ------------------------
    def _arrival(self) -> Callable[[int, float], None]:
        """arrive(edge, at): edge's data arrives at time `at` (now or later). Once the
        consumer's last input is in or in flight, it is queued on its unit for when that
        input is in. A closure over plain lists: it runs for every edge."""
        edge_dst, ready_at, pending, unit_of = self.edge_dst, self.ready_at, self.pending, self.unit_of
        future, prio, asleep = self.future, self.prio, self.asleep
        instant, at_once = self.instant, self._at_once

        def arrive(e: int, at: float) -> None:
            w = edge_dst[e]
            if at > ready_at[w]:
                ready_at[w] = at
            left = pending[w] - 1
            pending[w] = left
            if left == 0:
                u, when = unit_of[w], ready_at[w]
                if instant[w]:
                    at_once(w, when)
                    return
                heappush(future[u], (when, prio[w], w))
                if asleep[u]:
                    wake(self, u, when)
        return arrive

    def _release(self, t: int) -> None:
        """A task without inputs: ready at time 0."""
        if self.instant[t]:
            self._at_once(t, 0.0)
        else:
            heappush(self.future[self.unit_of[t]], (0.0, self.prio[t], t))

    def _at_once(self, t: int, when: float) -> None:
        """Run the zero-duration task t at `when` (now or later), off its unit's turn.
        Queued and drained in a loop, so a chain of them never nests calls."""
        if when > self.env.now:
            call_at(self.env, when, lambda _: self._at_once(t, when))
            return
        self.due.append((t, when))
        if len(self.due) == 1:
            while self.due:
                self._end_instant(*self.due[0])
                self.due.popleft()

    def _record(self, t: int, start: float) -> None:
        """Task t, started at `start`, has ended (the fixed loop does this inline)."""
        k = self.done
        self.rec_task[k], self.rec_start[k] = t, start
        self.done = k + 1

    def _end_instant(self, t: int, when: float) -> None:
        self._record(t, when)
        u = self.unit_of[t]
        for i in range(self.succ_ptr[t], self.succ_ptr[t + 1]):
            e = self.succ_edges[i]
            v = self.unit_of[self.edge_dst[e]]
            if v == u or self.edge_bytes[e] == 0:
                self.arrive(e, when)
            else:
                self.network.send(e, self.edge_bytes[e], self.route_rows[u][v], when)

    # -- run-time placement -------------------------------------------------------------
    def _dynamic_unit(self, u: int, cost: memoryview):  # simpy process
        """Take a pinned task of this unit or the best shared one, pull its inputs, run it."""
        env, own, shared, idle = self.env, self.queues[u], self.shared, self.idle
        while True:
            while not own and not shared:
                idle[u] = env.event()
                yield idle[u]
            t = heappop(own if own and (not shared or own[0] < shared[0]) else shared)[1]
            gate = self._pull(t, u)
            if gate is not None:
                yield gate
            start = env.now
            yield env.timeout(cost[t])
            self._record(t, start)
            self._release_successors(t)

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

    def _release_successors(self, t: int) -> None:
        """Successors become ready when their last producer ends; they pull data when placed."""
        for i in range(self.succ_ptr[t], self.succ_ptr[t + 1]):
            w = self.edge_dst[self.succ_edges[i]]
            self.pending[w] -= 1
            if self.pending[w] == 0:
                self._ready(w)

    def _pull(self, t: int, u: int) -> simpy.Event | None:
        """Place t on u and start the transfers of its inputs; an event for their arrival."""
        self.unit_of[t] = u
        ptr, eids = self.graph.predecessors
        inputs = [(e, self.unit_of[int(self.graph.edge_src[e])]) for e in eids[ptr[t]:ptr[t + 1]].tolist()]
        remote = [(e, v) for e, v in inputs if v != u and self.edge_bytes[e] > 0]
        if not remote:
            return None
        gate = Alarm(self.env)
        self.gates[t] = [len(remote), 0.0, gate]   # before sending: arrivals come at once
        now = self.env.now
        for e, v in remote:
            self.network.send(e, self.edge_bytes[e], self.cluster.route(v, u), now)
        return gate

    def _delivered(self, e: int, at: float) -> None:
        gate = self.gates[self.edge_dst[e]]
        gate[0] -= 1
        gate[1] = max(gate[1], at)
        if gate[0] == 0:
            del self.gates[self.edge_dst[e]]
            gate[2].ring_at(gate[1])

    # -- result ----------------------------------------------------------------------
    def _trace(self) -> Trace:
        """The records as the trace's columns, shared with them, not copied."""
        g = self.graph
        task, start = self.order, self.begun
        unit = np.asarray(self.unit_of)[task]
        # ends are recomputed exactly as simpy computed them: start + duration
        end = self.times[self.cluster.unit_type[unit], task]
        end += start  # = start + duration, in place
        edge, chan, xstart, xend = self.network.hops(g.edge_bytes)
        return Trace(
            task_names=g.names, task_kinds=g.kinds or (),
            unit_names=[u.name for u in self.cluster.units],
            channel_names=[c.name for c in self.cluster.channels],
            task=task, task_unit=unit, task_start=start, task_end=end,
            xfer_src_task=g.edge_src[edge], xfer_dst_task=g.edge_dst[edge], xfer_channel=chan,
            xfer_bytes=g.edge_bytes[edge], xfer_start=xstart, xfer_end=xend,
        )


class _Routes(dict):
    """Unit u's routes to the units it has sent to, by destination, looked up on first
    use. A dict per unit, not a units x units table: 16,384 units made that 2 GB."""

    def __init__(self, cluster: Cluster, u: int) -> None:
        super().__init__()
        self.cluster, self.u = cluster, u

    def __missing__(self, v: int) -> tuple[int, ...]:
        path = self[v] = self.cluster.route(self.u, v)
        return path


def _column(values: np.ndarray, dtype: type | np.dtype) -> Any:
    """A flat memoryview of `values` as `dtype` (copied only if it is not that already):
    the engine's columns. Indexing it gives plain Python numbers, as the hot loops want
    (Any: the stubs cannot say a "d" view holds floats)."""
    return np.ascontiguousarray(values, dtype).data
