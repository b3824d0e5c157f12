"""The engine's loop for a fixed placement: every unit's turns as entries of one Clock.

A unit is not a simpy process: its state is a few list cells (asleep, a sleep count,
when it is due to wake, when its task started), and a turn is one tuple on the clock's
heap, (time, priority, eid, arg << UNIT_BITS | unit): arg >= 0, the unit's task `arg`
ends then; arg < 0, the unit wakes from its sleep number -1 - arg (a later wake-up, or
a sleep that already ended, makes an entry stale: it is skipped, as simpy skips an Alarm whose process was
interrupted). Every entry is pushed where the simpy engine scheduled its Timeout, Alarm
or Interrupt, with the same priority, so both process the same events in the same
order: tests/test_engine_loop.py holds the two to identical starts and ends.

The loop is the engine's hot path (an iteration per task): everything it touches is
a local, and a task's end, its outputs and its unit's next choice are one iteration.
"""

from __future__ import annotations

from heapq import heappop, heappush
from math import inf
from typing import TYPE_CHECKING

from .clock import NORMAL, UNIT_BITS, UNIT_MASK, URGENT, fire
from .network import FifoNetwork

if TYPE_CHECKING:
    from .engine import _Run


def run_fixed(run: _Run) -> None:
    """Process the clock's entries until none is left (the simpy engine's env.run())."""
    clock, network = run.env, run.network
    queue, key, costs, started = clock.queue, clock.key, run.costs, run.started
    asleep, sleeps, wake_at, own_q, future = run.asleep, run.sleeps, run.wake_at, run.queues, run.future
    rec_task, rec_start, k = run.rec_task, run.rec_start, run.done   # k: rows recorded
    ptr, edges, dst, unit_of = run.succ_ptr, run.succ_edges, run.edge_dst, run.unit_of
    nbytes, routes, send = run.edge_bytes, run.route_rows, network.send
    ready_at, pending, instant, prio, at_once = run.ready_at, run.pending, run.instant, run.prio, run._at_once
    one_hop = isinstance(network, FifoNetwork)   # FIFO: one-hop routes carried here
    if isinstance(network, FifoNetwork):
        latency, inv_bw, free, rec_link, rec_hop = network.one_hop()
    directs = [_Direct(routes[u], one_hop) for u in range(len(routes))]
    if len(asleep) > UNIT_MASK + 1:  # limits.py's unit bound keeps far below
        raise AssertionError(f"{len(asleep)} units do not fit a turn's {UNIT_BITS} bits")
    for u in range(len(asleep)):  # simpy's Initialize: every unit decides first, urgent
        asleep[u] = True
        heappush(queue, (0.0, URGENT, key(), -1 << UNIT_BITS | u))
    while queue:
        now, _, _, turn = heappop(queue)
        if turn.__class__ is not int:  # a callback, or a simpy-shaped event of fair.py:
            clock.now, clock._now, run.done = now, now, k  # it may end a zero-duration task
            fire(turn)
            k = run.done
            continue
        u, t = turn & UNIT_MASK, turn >> UNIT_BITS
        if t >= 0:  # u's task t ends: its outputs leave now
            rec_task[k] = t
            rec_start[k] = started[u]
            k += 1
            direct = directs[u]
            for e in edges[ptr[t]:ptr[t + 1]]:
                w = dst[e]
                v = unit_of[w]
                b = nbytes[e]
                if v == u or b == 0:  # data already here: the dependency is met now
                    at = now
                else:
                    c = direct[v]
                    if c < 0:  # a route of several hops, or a network that is not FIFO
                        clock.now, clock._now, run.done = now, now, k
                        send(e, b, routes[u][v], now)
                        k = run.done
                        continue
                    at = free[c]  # network.send's hop 0, inlined (FifoNetwork.one_hop)
                    if now > at:
                        at = now
                    rec_link(e << 32 | c)
                    rec_hop(at)
                    at = free[c] = at + (latency[c] + b * inv_bw[c])
                # run.arrive(e, at), inlined: w's input is in at `at`; w's last input
                # leaves its two cells as they were (nothing reads them after it)
                left = pending[w] - 1
                if left:
                    pending[w] = left
                    if at > ready_at[w]:
                        ready_at[w] = at
                    continue
                r = ready_at[w]
                if at > r:
                    r = at
                if instant[w]:
                    clock.now, clock._now, run.done = now, now, k
                    at_once(w, r)
                    k = run.done
                else:
                    heappush(future[v], (r, prio[w], w))
                    if asleep[v]:
                        clock.now = clock._now = now
                        wake(run, v, r)
        elif asleep[u] and sleeps[u] == -1 - t:
            asleep[u] = False
        else:
            continue  # a stale wake-up
        own, fu = own_q[u], future[u]
        if fu and fu[0][0] <= now:
            _, p, w = heappop(fu)
            if own or (fu and fu[0][0] <= now):  # several ready: the lowest priority first
                heappush(own, (p, w))
                while fu and fu[0][0] <= now:
                    _, p, w = heappop(fu)
                    heappush(own, (p, w))
                w = heappop(own)[1]
            started[u] = now
            heappush(queue, (now + costs[u][w], NORMAL, key(), w << UNIT_BITS | u))
        elif own:
            w = heappop(own)[1]
            started[u] = now
            heappush(queue, (now + costs[u][w], NORMAL, key(), w << UNIT_BITS | u))
        else:  # sleep until the earliest input in flight is in, or until woken
            s = sleeps[u] = sleeps[u] + 1
            asleep[u] = True
            if fu:
                wake_at[u] = when = fu[0][0]
                heappush(queue, (when, NORMAL, key(), (-1 - s) << UNIT_BITS | u))
            else:
                wake_at[u] = inf
    run.done = k


def wake(run: _Run, u: int, when: float) -> None:
    """Make the sleeping unit u decide again at `when`, if it would sleep longer: as
    simpy's engine rang its Alarm (first), interrupted it (now) or set a timer to
    interrupt it then unless it had woken by itself in between (rare)."""
    wake_at = run.wake_at
    if when >= wake_at[u]:
        return
    clock, first, s = run.env, wake_at[u] == inf, run.sleeps[u]
    wake_at[u] = when
    if first:
        clock.turn(when, u, -1 - s)
    elif when <= clock.now:
        clock.turn(clock.now, u, -1 - s, urgent=True)
    else:
        def interrupt(_: None) -> None:
            if run.asleep[u] and run.sleeps[u] == s:
                clock.turn(clock.now, u, -1 - s, urgent=True)
        clock.call(when, interrupt)


class _Direct(dict):
    """Unit u's one-hop channel to each unit it sends to (-1: the route has several hops,
    or the network carries every hop itself), from its routes (engine._Routes), on
    first use: one lookup per transfer instead of the route, its length and its hop."""

    def __init__(self, routes: dict[int, tuple[int, ...]], one_hop: bool) -> None:
        super().__init__()
        self.routes, self.one_hop = routes, one_hop

    def __missing__(self, v: int) -> int:
        path = self.routes[v]
        c = self[v] = path[0] if self.one_hop and len(path) == 1 else -1
        return c
