"""Max-min fair sharing: every transfer in flight gets a fair share of each channel.

A flow-level model, as in SimGrid: a transfer of n bytes over the route c_1 ... c_k
first waits the route's latency Σ α_i, then streams over all k channels at once at a
rate that changes whenever a transfer starts or ends streaming. The rates are max-min
fair (progressive filling, `max_min_rates`): no transfer can go faster without slowing
one that is no faster than it. Alone, a transfer takes Σ α_i + n / min B_i, as on the
cut-through FIFO network (network.FifoNetwork); store-and-forward takes
Σ (α_i + n / B_i), the same on a single hop.

Incremental, as SimGrid's lazy lmm solver (Casanova, Giersch, Legrand, Quinson &
Suter, "Versatile, scalable, and accurate simulation of distributed applications and
platforms", JPDC 74(10), 2014, section 4): max-min fair rates separate over the
connected components of the flow-channel graph, so a start or end re-solves only the
flows that share a channel with a changed one, transitively. Changes at one timestamp
are solved once, after them all. A flow's bytes left are brought up to date only when
its rate changes, and the next start or end comes from the network's own heap behind
one simpy alarm (FairNetwork). One change costs O(component flows x hops + log
transfers), the whole network in the worst case (one shared bottleneck), and nothing
but the heap for a flow alone on its channels; `_FullFairNetwork` keeps the full
re-solve as a reference.
A transfer's trace rows, one per channel of its route, span its whole life (send to
arrival); on a shared channel they overlap, which is the point.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from heapq import heappop, heappush
from math import inf
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from ..hardware import Channel
from .network import call_at


def max_min_rates(paths: Sequence[Sequence[int]], capacity: Sequence[float]) -> list[float]:
    """Max-min fair rates of flows over channels (progressive filling).

    Repeatedly take the channel that offers its unfixed flows the smallest equal share
    of what is left of it (ties: lowest channel index), fix those flows at that share,
    and take their rates off every channel they cross. Every flow then has a bottleneck:
    a saturated channel on its path where no flow is faster than it.
    """
    rate = [0.0] * len(paths)
    left: dict[int, float] = {}
    users: dict[int, set[int]] = {}
    for i, path in enumerate(paths):
        for c in path:
            left[c] = float(capacity[c])
            users.setdefault(c, set()).add(i)
    while users:
        share, c = min((max(left[c], 0.0) / len(u), c) for c, u in users.items())
        for i in sorted(users[c]):
            rate[i] = share
            for d in paths[i]:
                left[d] -= share
                users[d].discard(i)
                if not users[d]:
                    del users[d]
    return rate


class _Flow:
    __slots__ = ("record", "edge", "path", "left", "rate", "since", "version", "streaming")

    def __init__(self, record: int, edge: int, path: tuple[int, ...], nbytes: float) -> None:
        self.record, self.edge, self.path, self.left, self.rate = record, edge, path, nbytes, 0.0
        self.since, self.version = 0.0, 0  # when `left` was taken; bumped at each new rate
        self.streaming = False             # past its latency (FairNetwork)


class _FullFairNetwork:
    """The full re-solve at every start or end, O(transfers x hops) per event: the
    reference the incremental FairNetwork is tested against."""

    cut_through = True  # a flow streams over its whole route at once

    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        self.env, self.arrived = env, arrived
        self.latency = np.array([ch.latency_s for ch in channels])
        self._latency = self.latency.tolist()
        self._capacity = [ch.bandwidth for ch in channels]
        self._streaming: list[_Flow] = []
        self._clock = 0.0     # when the flows' bytes left were last brought up to date
        self._token = 0       # the only scheduled end that still counts
        # one record per transfer: edge, its route, sent, arrived
        self._edge, self._start, self._end = array("q"), array("d"), array("d")
        self._paths: list[tuple[int, ...]] = []

    def send(self, edge: int, nbytes: float, path: tuple[int, ...], now: float, hop: int = 0) -> None:
        """Edge `edge`'s data leaves for the end of `path` at `now` (hop is FIFO-only)."""
        flow = _Flow(len(self._edge), edge, path, nbytes)
        self._edge.append(edge)
        self._start.append(now)
        self._end.append(now)
        self._paths.append(path)
        delay = sum(self._latency[c] for c in path)
        if delay > 0:
            call_at(self.env, now + delay, lambda _: self._stream(flow))
        else:
            self._stream(flow)

    def _stream(self, flow: _Flow) -> None:
        self._catch_up()
        self._streaming.append(flow)
        self._reshare()

    def _catch_up(self) -> None:
        """Take what each flow streamed since the last change off its bytes left."""
        now = self.env.now
        dt = now - self._clock
        if dt > 0:
            for f in self._streaming:
                f.left = max(f.left - f.rate * dt, 0.0)
        self._clock = now

    def _reshare(self) -> None:
        """New max-min rates for the flows streaming; schedule the first to end."""
        self._token += 1
        flows = self._streaming
        if not flows:
            return
        for f, r in zip(flows, max_min_rates([f.path for f in flows], self._capacity), strict=True):
            f.rate = r
        now = self.env.now
        ends = [now + f.left / f.rate for f in flows]
        first = min(ends)
        due = [f for f, end in zip(flows, ends, strict=True) if end <= first]
        token = self._token
        call_at(self.env, first, lambda _: self._end_of(token, due))

    def _end_of(self, token: int, due: list[_Flow]) -> None:
        if token != self._token:  # the shares changed since: a later end was scheduled
            return
        self._catch_up()
        now = self.env.now
        done = {f.record for f in due}
        self._streaming = [f for f in self._streaming if f.record not in done]
        self._reshare()
        for f in due:
            self._end[f.record] = now
            self.arrived(f.edge, now)

    def hops(self, edge_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """One row per (transfer, channel of its route): edge ids, channels, sent, arrived."""
        hops = np.array([len(p) for p in self._paths], np.int64)
        channel = np.array([c for p in self._paths for c in p], np.int32)  # as FifoNetwork's
        edge = np.repeat(np.array(self._edge, np.int64), hops)
        start = np.repeat(np.array(self._start, np.float64), hops)
        return edge, channel, start, np.repeat(np.array(self._end, np.float64), hops)


class _Tick:
    """An alarm: the least of a simpy event that Environment.step reads (its callbacks,
    `_ok`), pushed onto the event queue at an absolute time as network.Alarm is."""

    __slots__ = ("callbacks",)
    _ok = True

    def __init__(self, callbacks: list[Callable[[Any], None]]) -> None:
        self.callbacks = callbacks


class FairNetwork(_FullFairNetwork):
    """Max-min fair sharing, re-solving only the flows a start or end touches.

    The network keeps its own agenda, a heap of (time, record, version, flow): a flow's
    start of streaming (the end of its latency) or its end, valid while the flow's
    version is that entry's. One simpy alarm rings at the agenda's first time, however
    many flows are in flight (`_wake`; `_armed` keeps a time from being armed twice).
    A transfer sent onto channels no flow holds is registered at once as streaming
    alone from the end of its latency at min B_i, its end pushed: it costs no start
    event and no solve, and the first solve that finds it not yet started takes it off
    again until its start (`_postpone`). Channels whose flows are all single-hop form
    a component of their own, shared equally: no search, no progressive filling.
    """

    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        super().__init__(env, channels, arrived)
        self._capacity = [float(b) for b in self._capacity]
        self._users: list[list[_Flow]] = [[] for _ in channels]  # registered flows per channel
        self._multi = [0] * len(channels)   # how many of them cross more than one channel
        self._agenda: list[tuple[float, int, int, _Flow]] = []
        self._touched: list[int] = []       # channels whose flows changed at this time
        self._wake = inf                    # the alarm that answers for the agenda's first
        self._armed: set[float] = set()     # the times alarms are pending at
        self._routes: dict[tuple[int, ...], tuple[float, float]] = {}  # multi-hop: see _route
        self._rings: list[Callable[[Any], None]] = []  # every alarm's callbacks (step only reads them)
        self._rings.append(self._ringer())
        self.send = self._sender()  # type: ignore[method-assign]

    def _sender(self) -> Callable[..., None]:
        """send(edge, nbytes, path, now, hop=0): edge's data leaves for the end of `path`
        at `now` (hop is FIFO-only). A closure over plain lists, as it runs per transfer."""
        record_edge, record_start, record_end = self._edge.append, self._start.append, self._end.append
        record_path, records = self._paths.append, self._edge
        users, latency, capacity, routes = self._users, self._latency, self._capacity, self._routes
        agenda, register, new_route = self._agenda, self._register, self._route

        def send(edge: int, nbytes: float, path: tuple[int, ...], now: float, hop: int = 0) -> None:
            flow = _Flow(len(records), edge, path, nbytes)
            record_edge(edge)
            record_start(now)
            record_end(now)
            record_path(path)
            if len(path) == 1:  # most transfers: no route to look up (sum and min of one)
                c = path[0]
                delay, alone, lone = latency[c], capacity[c], not users[c]
            else:
                delay, alone = routes.get(path) or new_route(path)
                lone = all(not users[c] for c in path)
            start = now + delay if delay > 0 else now
            if lone:  # nothing to share with: streams alone from `start`
                flow.streaming, flow.since, flow.rate = True, start, alone
                if len(path) == 1:
                    users[c].append(flow)
                else:
                    register(flow)
                when = start + nbytes / alone
            else:
                when = start
            heappush(agenda, (when, flow.record, 0, flow))
            if when < self._wake:
                self._arm(when)
        return send

    def _route(self, path: tuple[int, ...]) -> tuple[float, float]:
        """The latency before a flow streams and its rate alone (max_min_rates of one)."""
        route = self._routes[path] = (sum(self._latency[c] for c in path),
                                      min(self._capacity[c] for c in path))
        return route

    def _arm(self, when: float) -> None:
        """Ring at `when` unless an alarm is pending then already."""
        self._wake = when
        if when not in self._armed:
            self._armed.add(when)
            env: Any = self.env
            heappush(env._queue, (when, NORMAL, next(env._eid), _Tick(self._rings)))

    def _register(self, flow: _Flow) -> None:
        for c in flow.path:
            self._users[c].append(flow)
        if len(flow.path) > 1:
            for c in flow.path:
                self._multi[c] += 1

    def _unregister(self, flow: _Flow) -> None:
        for c in flow.path:
            self._users[c].remove(flow)
        if len(flow.path) > 1:
            for c in flow.path:
                self._multi[c] -= 1

    def _ringer(self) -> Callable[[Any], None]:
        """The alarm's callback: every start and end due now, then one solve after them
        all (again if that solve or an arrival's consequences bring more due now). A
        single-hop flow's end touches its channel only if other flows remain on it."""
        env, armed, agenda, users = self.env, self._armed, self._agenda, self._users
        end, arrived, register, unregister = self._end, self.arrived, self._register, self._unregister
        sim: Any = env
        queue: list[Any] = sim._queue
        eid, rings = sim._eid, self._rings

        def ring(event: Any) -> None:
            now = sim._now  # Environment.now without its property call
            armed.discard(now)
            if now < self._wake:  # an earlier alarm took over
                return
            touched = self._touched
            while agenda and agenda[0][0] <= now:
                while agenda and agenda[0][0] <= now:
                    _, _, version, f = heappop(agenda)
                    if version != f.version:  # superseded by a later rate
                        continue
                    path = f.path
                    if not f.streaming:  # its latency is over: it streams from now
                        f.streaming = True
                        register(f)
                        touched.extend(path)
                        continue
                    f.version += 1  # ended: no later entry of it counts
                    if len(path) == 1:
                        flows = users[path[0]]
                        flows.remove(f)
                        if flows:
                            touched.append(path[0])
                    else:
                        unregister(f)
                        touched.extend(path)
                    end[f.record] = now
                    arrived(f.edge, now)
                if touched:
                    self._solve(now)
                    touched = self._touched
            while agenda and agenda[0][2] != agenda[0][3].version:
                heappop(agenda)
            if not agenda:
                self._wake = inf
                return
            self._wake = when = agenda[0][0]  # as _arm, inlined
            if when not in armed:
                armed.add(when)
                event.callbacks = rings  # this alarm again: step is done with it
                heappush(queue, (when, NORMAL, next(eid), event))
        return ring

    def _solve(self, now: float) -> None:
        """New rates for the flows connected to the touched channels."""
        chans = self._touched
        self._touched = []
        if len(chans) > 1:
            chans = list(dict.fromkeys(chans))
        users, multi, cap = self._users, self._multi, self._capacity
        if not any(multi[c] for c in chans):  # each channel's flows are a component
            agenda = self._agenda
            for c in chans:
                flows = users[c]
                if not flows:
                    continue
                if len(flows) > 1 or flows[0].since > now:
                    self._postpone_late(c, now)
                    if not flows:
                        continue
                r = cap[c] / len(flows)   # max_min_rates of flows on one channel
                for f in flows:           # as _rerate, inlined: the hot loop
                    left = f.left - f.rate * (now - f.since)
                    f.left = left = 0.0 if left < 0.0 else left  # = max(left, 0.0)
                    f.since, f.rate, f.version = now, r, f.version + 1
                    heappush(agenda, (now + left / r, f.record, f.version, f))
            return
        flows = sorted(self._component(chans, now), key=lambda f: f.record)
        if flows:
            self._rerate(flows, max_min_rates([f.path for f in flows], cap), now)

    def _component(self, chans: list[int], now: float) -> set[_Flow]:
        """The streaming flows connected to `chans` through shared channels."""
        seen: set[_Flow] = set()
        todo, done, users = list(chans), set(), self._users
        while todo:
            c = todo.pop()
            if c in done:
                continue
            done.add(c)
            self._postpone_late(c, now)
            for f in users[c]:
                if f not in seen:
                    seen.add(f)
                    todo.extend(f.path)
        return seen

    def _postpone_late(self, c: int, now: float) -> None:
        """Take off channel c the flows registered ahead of their start (see `send`):
        from now on they start as any other, at the end of their latency."""
        for f in [f for f in self._users[c] if f.since > now]:
            self._unregister(f)
            start = f.since
            f.streaming, f.since, f.rate, f.version = False, 0.0, 0.0, f.version + 1
            heappush(self._agenda, (start, f.record, f.version, f))

    def _rerate(self, flows: Sequence[_Flow], rates: Sequence[float], now: float) -> None:
        agenda = self._agenda
        for f, r in zip(flows, rates, strict=True):
            f.left = max(f.left - f.rate * (now - f.since), 0.0)
            f.since, f.rate, f.version = now, r, f.version + 1
            heappush(agenda, (now + f.left / r, f.record, f.version, f))
