"""The fixed-placement engine's clock: simpy's event order without simpy's objects.

simpy processes events by (time, priority, insertion order), priority URGENT (0) before
NORMAL (1) at equal times, from heap entries (time, priority, eid, event). The clock's
heap holds entries of that very shape, numbered by the same kind of counter, so the
order is simpy's. A unit's turn is (time, priority, eid, turn) with `turn` a plain int,
`arg << UNIT_BITS | unit` (the engine's loop reads `arg`): no Event, Timeout or Process
object per task, a turn is one tuple push and one pop (issue 14's speed target). Any
other entry's last item is an object with `callbacks`, as a simpy event: `call` pushes
one, and a network may push its own onto `_queue` with `next(_eid)`, as it would on
simpy's Environment (fair.py does); the loop calls their callbacks (`fire`).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from itertools import count
from typing import Any

URGENT, NORMAL = 0, 1   # simpy.events' priorities
UNIT_BITS = 15          # units are at most 16,384 = 2^14 (limits.py)
UNIT_MASK = (1 << UNIT_BITS) - 1


class Clock:
    """The current time and the queue of what happens next; the loop that pops the queue
    sets `now` before it calls anything that reads it (a network, as simpy's `env.now`).
    `_queue`, `_eid` and `_now` are simpy's names for the heap, its insertion counter
    and the time (set with `now`), for a network that pushes onto simpy's queue."""

    __slots__ = ("now", "_now", "queue", "_queue", "_eid", "key")

    def __init__(self) -> None:
        self.now = self._now = 0.0
        self.queue: list[tuple[float, int, int, Any]] = []
        self._queue = self.queue
        self._eid = count()
        self.key = self._eid.__next__   # insertion order, shared by every entry

    def call(self, when: float, callback: Callable[[Any], object]) -> None:
        """callback(event) at time `when`, after what is already due then (NORMAL)."""
        heappush(self.queue, (when, NORMAL, self.key(), _Call(callback)))

    def turn(self, when: float, unit: int, arg: int, urgent: bool = False) -> None:
        """Unit `unit`'s turn at `when`, with the engine's `arg`; urgent as simpy's
        Interrupt and Initialize, before the NORMAL entries of that time."""
        heappush(self.queue, (when, URGENT if urgent else NORMAL, self.key(),
                              arg << UNIT_BITS | unit))


class _Call:
    """The least of a simpy event that `fire` reads: its callbacks."""

    __slots__ = ("callbacks",)

    def __init__(self, callback: Callable[[Any], object]) -> None:
        self.callbacks: list[Callable[[Any], object]] | None = [callback]


def fire(event: Any) -> None:
    """A simpy-shaped event popped from the clock: its callbacks, as Environment.step."""
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)
