"""The network: FIFO channels (one per link direction), store-and-forward per hop.

A FIFO channel needs no simpy process of its own. By Lindley's recursion a hop that
reaches channel c at time s starts at max(s, free_c) and ends latency + bytes /
bandwidth later, so its whole timeline is known the moment it is sent, provided hops
are sent in time order, which the event loop guarantees. The network therefore
schedules nothing for a single-hop transfer; it reports the arrival time and the
engine folds it into the consumer's release. A hop onward from a switch is sent by
one event at the previous hop's end, so it joins the next channel's queue in
arrival order.

`FifoNetwork` is the seam where a max-min fair-sharing network can be slotted in: it
must call `arrived(edge, time)` no later than `time`, and record every hop.
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
    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 arrived: Callable[[int, float], None]) -> None:
        self.latency = np.array([ch.latency_s for ch in channels])
        self.inv_bw = 1.0 / np.array([ch.bandwidth for ch in channels])
        # one record per hop: edge * channels + channel, and its start (end = start + hop time)
        self._hop, self._start = array("q"), array("d")
        self.send = self._sender(env, arrived)

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
