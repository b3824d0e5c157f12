"""The network: one simpy process per channel (link direction), FIFO per channel.

Transfers are store-and-forward: each hop takes latency + bytes / bandwidth and
holds only its own channel. `FifoNetwork` is the seam where a max-min fair-sharing
network can later be slotted in with the same `send` / records interface.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

from ..hardware import Channel

Hop = tuple[int, float, tuple[int, ...], int]  # edge, bytes, path, index of the hop in path


class Doorbell(simpy.Event):
    """An event its sender fires after a delay, as a Timeout would.

    Waking an idle channel and timing its transfer would take two scheduled events
    (wake now, then a timeout); ringing the bell at the transfer's end takes one.
    Channels are idle most of the time, so this nearly halves the engine's events.
    """

    def ring_after(self, delay: float, value: Any) -> None:
        self._ok = True
        self._value = value
        self.env.schedule(self, NORMAL, delay)


class FifoNetwork:
    def __init__(self, env: simpy.Environment, channels: Sequence[Channel],
                 delivered: Callable[[int], None]) -> None:
        self.env = env
        self.delivered = delivered
        self.queues: list[deque[Hop]] = [deque() for _ in channels]
        self.bells: list[Doorbell | None] = [None] * len(channels)
        self.latency = np.array([ch.latency_s for ch in channels])
        self.inv_bw = 1.0 / np.array([ch.bandwidth for ch in channels])
        self._latency, self._inv_bw = self.latency.tolist(), self.inv_bw.tolist()
        # one record per hop: edge id, channel, start (the end is start + hop time)
        self.edge, self.channel, self.start = array("q"), array("q"), array("d")
        for c in range(len(channels)):
            env.process(self._carry(c, self._latency[c], self._inv_bw[c]))

    def send(self, edge: int, nbytes: float, path: tuple[int, ...], hop: int = 0) -> None:
        c = path[hop]
        bell = self.bells[c]
        if bell is None:
            self.queues[c].append((edge, nbytes, path, hop))
        else:
            self.bells[c] = None
            bell.ring_after(self._latency[c] + nbytes * self._inv_bw[c],
                            (edge, nbytes, path, hop, self.env.now))

    def _carry(self, c: int, latency: float, inv_bw: float):  # simpy process
        env, queue, bells, send, delivered = self.env, self.queues[c], self.bells, self.send, self.delivered
        rec_edge, rec_chan, rec_start = self.edge.append, self.channel.append, self.start.append
        timeout = env.timeout
        while True:
            if queue:
                edge, nbytes, path, hop = queue.popleft()
                start = env.now
                yield timeout(latency + nbytes * inv_bw)
            else:
                bells[c] = Doorbell(env)
                edge, nbytes, path, hop, start = yield bells[c]
            rec_edge(edge)
            rec_chan(c)
            rec_start(start)
            if hop + 1 < len(path):
                send(edge, nbytes, path, hop + 1)
            else:
                delivered(edge)
