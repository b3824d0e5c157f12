"""The fixed-placement engine's clock: simpy's event order without simpy's objects.

simpy processes events by (time, priority, insertion order), priority URGENT (0) before
NORMAL (1) at equal times. An entry here is a plain tuple (time, key, code, arg) in one
heap: `key` is the insertion count, less URGENT_SHIFT for an urgent entry, so the
tuple's order is simpy's. `code` >= 0 is a unit's turn (the engine's loop reads `arg`),
CALL an entry that calls `arg(None)` (the networks' `call_at`). No Event, Timeout or
Process object per task: a turn is one tuple push and one pop (issue 14's speed target).
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from itertools import count
from typing import Any

CALL = -1
URGENT_SHIFT = 2 ** 62   # more entries than any run schedules, so urgent sorts first


class Clock:
    """The current time and the queue of what happens next; the loop that pops the queue
    sets `now` before it calls anything that reads it (a network, as simpy's `env.now`)."""

    __slots__ = ("now", "queue", "key")

    def __init__(self) -> None:
        self.now = 0.0
        self.queue: list[tuple[float, int, int, Any]] = []
        self.key = count().__next__   # insertion order, shared by every entry

    def call(self, when: float, callback: Callable[[None], object]) -> None:
        """callback(None) at time `when`, after what is already due then (NORMAL)."""
        heappush(self.queue, (when, self.key(), CALL, callback))

    def turn(self, when: float, unit: int, arg: int, urgent: bool = False) -> None:
        """Unit `unit`'s turn at `when`, with the engine's `arg`; urgent as simpy's
        Interrupt and Initialize, before the NORMAL entries of that time."""
        key = self.key() - URGENT_SHIFT if urgent else self.key()
        heappush(self.queue, (when, key, unit, arg))
