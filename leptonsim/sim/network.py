"""The FIFO networks: one channel per link direction, a transfer at a time on each.

A FIFO channel needs no simpy process of its own. By Lindley's recursion a transfer
that reaches channel c at time s starts there at max(s, free_c), so its whole timeline
is known the moment it is sent, provided transfers are sent in time order, which the
event loop guarantees. Two switching disciplines share that rule:

- `FifoNetwork`, cut-through (the default): the data streams through the switches, as
  NVSwitch and InfiniBand switches forward a packet once its header is in. A transfer
  of n bytes over the route c_1 ... c_k costs Σ α_i + n / min B_i. It reserves its
  whole route at once: its head enters hop i at s + A_i (A_i = α_1 + ... + α_{i-1}),
  the earliest s at which every hop is free by then, and holds hop i until
  s + A_i + α_i + n / min B_i. So the network schedules nothing at all; it reports the
  arrival time and the engine folds it into the consumer's release.
- `StoreAndForward` (the previous model): each hop takes α_i + n / B_i and a switch
  forwards only what it has wholly received, Σ (α_i + n / B_i) alone. A hop onward
  from a switch is sent by one event at the previous hop's end, so it joins the next
  channel's queue in arrival order.

On one hop the two are the same. A network must call `arrived(edge, time)` no later
than `time`, and record every hop; `cut_through` says which closed form a planner
should price a route with (Cluster.path_cost).
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from ..hardware import Channel


class Alarm(simpy.Event):
    """An event processed at an absolute simulated time.

    simpy schedules by delay, and now + (t - now) can round away from t; the engine
    needs events at exactly the times it computed (a task starts at the arrival time
    recorded for its input, not one ulp before it).
    """

    def ring_at(self, when: float, value: Any = None) -> None:
        self._ok = True
        self._value = value
        env = self.env
        heappush(env._queue, (when, NORMAL, next(env._eid), self))  # type: ignore[attr-defined]


def call_at(env: simpy.Environment, when: float, callback: Callable[[simpy.Event], None]) -> None:
    """Run callback(event) at simulated time `when`."""
    alarm = Alarm(env)
    alarm.callbacks.append(callback)  # type: ignore[union-attr]
    alarm.ring_at(when)


class FifoNetwork:
    """Cut-through FIFO channels: Σ α_i + n / min B_i per transfer, contention per link."""

    cut_through = True

    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        self.latency = np.array([ch.latency_s for ch in channels])
        self.inv_bw = 1.0 / np.array([ch.bandwidth for ch in channels])
        # one record per hop: edge * channels + channel, its start and its end
        self._hop, self._start, self._end = array("q"), array("d"), array("d")
        self.send = self._sender(env, arrived)

    def _sender(self, env: simpy.Environment, arrived: Callable[[int, float], None]
                ) -> Callable[..., None]:
        """send(edge, nbytes, path, now, hop=0): edge's data leaves for the end of `path`
        at `now` (`hop` is store-and-forward's). A closure over plain lists, as it runs
        for every transfer."""
        latency, inv_bw = self.latency.tolist(), self.inv_bw.tolist()
        free = [0.0] * len(latency)   # when each channel finishes its last reserved transfer
        record_hop, record_start, record_end = self._hop.append, self._start.append, self._end.append
        channels = len(latency)

        def send(edge: int, nbytes: float, path: tuple[int, ...], now: float, hop: int = 0) -> None:
            if len(path) == 1:  # the common case, and the same in both disciplines
                c = path[0]
                start = free[c]
                if now > start:
                    start = now
                end = free[c] = start + (latency[c] + nbytes * inv_bw[c])
                record_hop(edge * channels + c)
                record_start(start)
                record_end(end)
                arrived(edge, end)
                return
            start, lead, slowest = now, 0.0, 0.0
            for c in path:  # the earliest start at which each hop is free when the head is in
                if free[c] - lead > start:
                    start = free[c] - lead
                lead += latency[c]
                if inv_bw[c] > slowest:
                    slowest = inv_bw[c]
            stream, lead, end = nbytes * slowest, 0.0, now
            for c in path:
                head = start + lead
                lead += latency[c]
                end = free[c] = head + (latency[c] + stream)
                record_hop(edge * channels + c)
                record_start(head)
                record_end(end)
            arrived(edge, end)
        return send

    def hops(self, edge_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every hop carried so far: edge ids, channels, starts and ends (as `send`
        computed them)."""
        edge, channel = np.divmod(np.array(self._hop, np.int64), len(self.latency))
        return edge, channel, np.array(self._start, np.float64), np.array(self._end, np.float64)


class StoreAndForward(FifoNetwork):
    """Store-and-forward FIFO channels: Σ (α_i + n / B_i) per transfer; a switch
    forwards only what it has wholly received (the model before issue 12)."""

    cut_through = False

    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        super().__init__(env, channels, arrived)
        self._end = array("d")  # unused: an end is start + (latency + bytes / bandwidth)

    def _sender(self, env: simpy.Environment, arrived: Callable[[int, float], None]
                ) -> Callable[..., None]:
        """send(edge, nbytes, path, now, hop=0): edge's data reaches hop `hop` of `path`
        at `now`. A closure over plain lists, as it runs for every hop."""
        latency, inv_bw = self.latency.tolist(), self.inv_bw.tolist()
        free = [0.0] * len(latency)   # when each channel finishes its last queued hop
        record_hop, record_start, channels = self._hop.append, self._start.append, len(latency)

        def send(edge: int, nbytes: float, path: tuple[int, ...], now: float, hop: int = 0) -> None:
            c = path[hop]
            start = free[c]
            if now > start:
                start = now
            end = start + (latency[c] + nbytes * inv_bw[c])
            free[c] = end
            record_hop(edge * channels + c)
            record_start(start)
            if hop + 1 < len(path):
                call_at(env, end, lambda _: send(edge, nbytes, path, end, hop + 1))
            else:
                arrived(edge, end)
        return send

    def hops(self, edge_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every hop carried so far: edge ids, channels, starts and ends (the end as
        `send` computed it: start + (latency + bytes / bandwidth))."""
        edge, channel = np.divmod(np.array(self._hop, np.int64), len(self.latency))
        start = np.array(self._start, np.float64)
        return edge, channel, start, start + (self.latency[channel] + edge_bytes[edge] * self.inv_bw[channel])
