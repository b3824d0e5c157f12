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
its rate changes, and the next end comes from a heap. One event costs
O(component flows x hops + log transfers), the whole network in the worst case (one
shared bottleneck); `_FullFairNetwork` keeps the full re-solve as a reference.
A transfer's trace rows, one per channel of its route, span its whole life (send to
arrival); on a shared channel they overlap, which is the point.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from heapq import heappop, heappush

import numpy as np
import simpy

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
    __slots__ = ("record", "edge", "path", "left", "rate", "since", "version")

    def __init__(self, record: int, edge: int, path: tuple[int, ...], nbytes: float) -> None:
        self.record, self.edge, self.path, self.left, self.rate = record, edge, path, nbytes, 0.0
        self.since, self.version = 0.0, 0  # when `left` was taken; bumped at each new rate


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


class FairNetwork(_FullFairNetwork):
    """Max-min fair sharing, re-solving only the flows a start or end touches."""

    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        super().__init__(env, channels, arrived)
        self._users: list[set[_Flow]] = [set() for _ in channels]  # streaming flows per channel
        self._touched: list[_Flow] = []   # flows started or ended since the last solve
        self._ends: list[tuple[float, int, int, _Flow]] = []  # (end, record, version, flow)
        self._wake: float | None = None   # the earliest end an alarm is set for

    def _stream(self, flow: _Flow) -> None:
        for c in flow.path:
            self._users[c].add(flow)
        self._touch(flow)

    def _touch(self, flow: _Flow) -> None:
        """Solve once after every change at this timestamp (an alarm at now runs after
        the events already due now, so zero-delay sends join the batch)."""
        if not self._touched:
            call_at(self.env, self.env.now, lambda _: self._solve())
        self._touched.append(flow)

    def _component(self) -> list[_Flow]:
        """The streaming flows connected to a touched one through shared channels."""
        seen: set[_Flow] = set()
        todo = [c for f in self._touched for c in f.path]
        done: set[int] = set()
        while todo:
            c = todo.pop()
            if c in done:
                continue
            done.add(c)
            for f in self._users[c] - seen:
                seen.add(f)
                todo.extend(f.path)
        return sorted(seen, key=lambda f: f.record)

    def _solve(self) -> None:
        now = self.env.now
        flows = self._component()
        self._touched = []
        for f, r in zip(flows, max_min_rates([f.path for f in flows], self._capacity), strict=True):
            f.left = max(f.left - f.rate * (now - f.since), 0.0)
            f.since, f.rate, f.version = now, r, f.version + 1
            heappush(self._ends, (now + f.left / r, f.record, f.version, f))
        self._alarm()

    def _alarm(self) -> None:
        ends = self._ends
        while ends and ends[0][2] != ends[0][3].version:  # superseded by a later rate
            heappop(ends)
        if ends and (self._wake is None or ends[0][0] < self._wake):
            self._wake = first = ends[0][0]
            call_at(self.env, first, lambda _: self._end_due(first))

    def _end_due(self, when: float) -> None:
        if when != self._wake:  # an earlier alarm took over
            return
        self._wake = None
        ends, now = self._ends, self.env.now
        while ends and ends[0][0] <= now:
            _, _, version, f = heappop(ends)
            if version != f.version:
                continue
            f.version += 1  # ended: no later entry of it counts
            for c in f.path:
                self._users[c].discard(f)
            self._touch(f)
            self._end[f.record] = now
            self.arrived(f.edge, now)
        self._alarm()
