"""The FIFO networks: one channel per link direction, a transfer at a time on each.

A FIFO channel needs no simpy process of its own. By Lindley's recursion a hop that
reaches channel c at time s starts at max(s, free_c), so its timeline is known the
moment it is sent, provided hops are sent in time order, which the event loop
guarantees. A single-hop transfer therefore schedules nothing; the network reports its
arrival time and the engine folds it into the consumer's release. A hop onward from a
switch is sent by one event when the data reaches the switch, so it joins the next
channel's queue in arrival order. Two switching disciplines differ in that moment:

- `FifoNetwork`, cut-through (the default), as NVSwitch and InfiniBand switches forward
  a packet once its header is in (virtual cut-through: Kermani & Kleinrock, "Virtual
  cut-through: a new computer communication switching technique", Computer Networks
  3(4), 1979). The head reaches the next hop α_i after hop i started; hop i ends at
  max(start + α_i + n / B_i, the previous hop's end + α_i): it cannot pass on bytes
  that have not come in yet. Alone, a transfer over c_1 ... c_k takes
  Σ α_i + n / min B_i; a busy link holds it back at the switch before that link only.
- `StoreAndForward` (the previous model): a switch forwards only what it has wholly
  received, each hop taking α_i + n / B_i after the last: Σ (α_i + n / B_i) alone.

On one hop the two are the same. A network must call `arrived(edge, time)` no later
than `time`, and record every hop; `cut_through` says which closed form a planner
should price a route with (Cluster.path_cost).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Callable, Sequence
from heapq import heappush
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from ..hardware import Channel
from .clock import Clock


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


def call_at(env: simpy.Environment | Clock, when: float, callback: Callable[[Any], None]) -> None:
    """Run callback(event) at simulated time `when`, on simpy's clock or the engine's own
    (fixed placement: Clock, whose callbacks get None)."""
    if isinstance(env, Clock):
        env.call(when, callback)
        return
    alarm = Alarm(env)
    alarm.callbacks.append(callback)  # type: ignore[union-attr]
    alarm.ring_at(when)


class FifoNetwork:
    """Cut-through FIFO channels: Σ α_i + n / min B_i alone, contention per link."""

    cut_through = True

    def __init__(self, env: simpy.Environment | Clock, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        self.latency = np.array([ch.latency_s for ch in channels])
        self.inv_bw = 1.0 / np.array([ch.bandwidth for ch in channels])
        # one record per hop: edge << 32 | channel (one append, not two: the hot loop's
        # cost) and its start; its end is start + (latency + bytes / bandwidth) but for
        # the hops that waited for their bytes to come in (record index -> end). An edge
        # id past 2**31 - 1 raises OverflowError, not wraps; channels are far below 2**32
        # (limits.py bounds the links). Read back as two int32 views of the same bytes.
        self._link, self._start = array("q"), array("d")
        self._late: dict[int, float] = {}
        self._state: tuple | None = None
        self.send = self._sender(env, arrived)

    def _sender(self, env: simpy.Environment | Clock, arrived: Callable[[int, float], None]
                ) -> Callable[..., None]:
        """send(edge, nbytes, path, now, hop=0, tail=0.0): edge's data reaches hop `hop`
        of `path` at `now` (its head, cut-through; all of it, store-and-forward), its
        tail having reached the hop's start at `tail`. A closure over plain lists, as it
        runs for every hop."""
        latency, inv_bw, free = self.one_hop()[:3]
        record_link, record_start, late = self._link.append, self._start.append, self._late
        cut_through, records = self.cut_through, self._start

        def send(edge: int, nbytes: float, path: tuple[int, ...], now: float, hop: int = 0,
                 tail: float = 0.0) -> None:
            c = path[hop]
            start = free[c]
            if now > start:
                start = now
            end = start + (latency[c] + nbytes * inv_bw[c])
            if hop and tail + latency[c] > end:  # a faster hop waits for the bytes to come in
                end = late[len(records)] = tail + latency[c]
            free[c] = end
            record_link(edge << 32 | c)  # LINK_SHIFT
            record_start(start)
            if hop + 1 < len(path):
                at = start + latency[c] if cut_through else end
                call_at(env, at, lambda _: send(edge, nbytes, path, at, hop + 1, end))
            else:
                arrived(edge, end)
        return send

    def one_hop(self) -> tuple[list[float], list[float], list[float], Callable[[int], None],
                               Callable[[float], None]]:
        """What a hop of a one-hop route reads and writes, for the fixed-placement loop
        to carry such a hop itself (fixed.py), without a call to `send`: per channel its
        latency, 1 / bandwidth and when it is free; the record appends (edge << 32 | channel,
        start). One hop alone:
        start = max(now, free), end = start + (latency + bytes / bandwidth), as `send`."""
        if self._state is None:
            latency, inv_bw = self.latency.tolist(), self.inv_bw.tolist()
            self._state = (latency, inv_bw, [0.0] * len(latency), self._link.append,
                           self._start.append)
        return self._state

    def hops(self, edge_bytes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Every hop carried, at the end of the run: edge ids, channels, starts and ends
        (as `send` computed them: start + (latency + bytes / bandwidth), or when later,
        the bytes' arrival + latency)."""
        # the records' own memory, not copies (so a send after this fails: a buffer in
        # use cannot grow); the ends in place, a million hops make no transient copies
        pairs = np.frombuffer(self._link, np.int32).reshape(-1, 2)  # strided views
        low, high = (0, 1) if sys.byteorder == "little" else (1, 0)
        edge, channel = pairs[:, high], pairs[:, low]
        start = np.frombuffer(self._start, np.float64)
        end = edge_bytes[edge]
        end *= self.inv_bw[channel]
        end += self.latency[channel]
        end += start  # = start + (latency + bytes / bandwidth), as `send` summed it
        if self._late:
            end[np.fromiter(self._late, np.int64)] = np.fromiter(self._late.values(), np.float64)
        return edge, channel, start, end


class StoreAndForward(FifoNetwork):
    """Store-and-forward FIFO channels: Σ (α_i + n / B_i) per transfer; a switch
    forwards only what it has wholly received (the model before issue 12)."""

    cut_through = False
