"""The fixed-placement engine's clock: simpy's event order without simpy's objects.

simpy processes events by (time, priority, insertion order), priority URGENT (0) before
NORMAL (1) at equal times, from heap entries (time, priority, eid, event). An entry
here is (time, priority, eid, code, arg) in a heap of the same shape and the same
counter, so the order is simpy's: `code` >= 0 is a unit's turn (the engine's loop
reads `arg`), CALL an entry that calls `arg(None)` (the networks' `call_at`). A
network may also push simpy's own 4-tuples (an object with `callbacks`) onto `_queue`
with `next(_eid)`, as on simpy's Environment: the loop calls their callbacks. No
Event, Timeout or Process object per task: a turn is one tuple push and one pop
(issue 14's speed target).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from itertools import count
from typing import Any

CALL = -1
URGENT, NORMAL = 0, 1   # simpy.events' priorities


class Clock:
    """The current time and the queue of what happens next; the loop that pops the queue
    sets `now` before it calls anything that reads it (a network, as simpy's `env.now`).
    `_queue`, `_eid` and `_now` are simpy's names for the heap, its insertion counter
    and the time (set with `now`), for a network that pushes onto simpy's queue."""

    __slots__ = ("now", "_now", "queue", "_queue", "_eid", "key")

    def __init__(self) -> None:
        self.now = self._now = 0.0
        self.queue: list[tuple] = []
        self._queue = self.queue
        self._eid = count()
        self.key = self._eid.__next__   # insertion order, shared by every entry

    def call(self, when: float, callback: Callable[[None], object]) -> None:
        """callback(None) at time `when`, after what is already due then (NORMAL)."""
        heappush(self.queue, (when, NORMAL, self.key(), CALL, callback))

    def turn(self, when: float, unit: int, arg: int, urgent: bool = False) -> None:
        """Unit `unit`'s turn at `when`, with the engine's `arg`; urgent as simpy's
        Interrupt and Initialize, before the NORMAL entries of that time."""
        heappush(self.queue, (when, URGENT if urgent else NORMAL, self.key(), unit, arg))


def fire(event: Any) -> None:
    """A simpy-shaped event popped from the clock: its callbacks, as Environment.step."""
    callbacks, event.callbacks = event.callbacks, None
    for callback in callbacks:
        callback(event)
