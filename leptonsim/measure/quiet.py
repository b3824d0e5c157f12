"""How disturbed the machine is; measuring only while it is not.

Real execution times a worker per core. On a shared machine two things slow a
worker down that no cost model of *this* run can know:

* other processes in this machine: one on a core halves a worker's speed. Seen in
  /proc/stat: before a run, wait (up to a limit) until the CPU busy fraction is
  low; during it, count the CPU time of processes other than this one and its
  workers ("foreign").
* other tenants of the host: on this VM each virtual core flips, every second or
  so, between its normal speed and about 1.4x slower (a busy hyperthread sibling,
  presumably), invisible in /proc/stat. Seen by a *probe*: a fixed 3 ms workload
  (small GEMMs, an element-wise pass, a Python loop) timed on each core; a core is
  slow when its probe takes over `QuietGate.slow` (1.15x) the fastest probe time
  seen so far.

A run is started only when no core is slow and the machine is not busy (or the
wait timed out), and it is discarded and run again (up to `retries` times; the last
attempt is kept) when foreign CPU exceeded the threshold or a core was slow right
after it. The criterion never looks at the run's own timings, only at the probe
and /proc/stat. What every kept run saw is recorded with it.
"""

from __future__ import annotations

import math
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

T = TypeVar("T")
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs, or None where /proc/stat does not exist."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _own_cpu_s() -> float:
    """CPU seconds of this process and of its children that have been waited for."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def busy_fraction(sample_s: float = 0.5) -> float:
    """Fraction of all CPU time spent busy during the next `sample_s` seconds (0 when
    it cannot be read); this process sleeps meanwhile, so it is other work."""
    first = _cpu_times()
    time.sleep(sample_s)
    second = _cpu_times()
    if first is None or second is None or second[1] <= first[1]:
        return 0.0
    return (second[0] - first[0]) / (second[1] - first[1])


def foreign_fraction(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's result, and the fraction of all CPU time during the call used by processes
    other than this one and the children it waited for (resolution: one clock tick)."""
    cpu0, own0, wall0 = _cpu_times(), _own_cpu_s(), time.perf_counter()
    result = fn()
    cpu1, own1, wall1 = _cpu_times(), _own_cpu_s(), time.perf_counter()
    if cpu0 is None or cpu1 is None:
        return result, 0.0
    capacity = (wall1 - wall0) * (os.cpu_count() or 1)
    foreign = (cpu1[0] - cpu0[0]) / _TICK - (own1 - own0) - 1.0 / _TICK  # one tick of slack
    return result, max(0.0, foreign) / capacity if capacity > 0 else 0.0


class Probe:
    """The fixed workload; `slowest_core()` is its worst time over the cores this
    process may run on, relative to the fastest probe seen so far (>= 1)."""

    def __init__(self) -> None:
        rng = np.random.default_rng(0)
        self.a = rng.standard_normal((160, 160)).astype(np.float32)
        self.x = rng.standard_normal(1 << 18).astype(np.float32)
        self.best = float("inf")

    def once(self) -> float:
        start = time.perf_counter()
        for _ in range(20):
            self.a @ self.a
        for _ in range(5):
            np.exp(self.x)
        s = 0
        for i in range(20_000):
            s += i
        return time.perf_counter() - start

    def slowest_core(self) -> float:
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:
            return self._slowest_core()
        with threadpool_limits(1):  # one BLAS thread, as in a worker
            return self._slowest_core()

    def _slowest_core(self) -> float:
        if not hasattr(os, "sched_getaffinity"):
            times = [min(self.once() for _ in range(3))]
        else:
            cores = os.sched_getaffinity(0)
            times = []
            try:
                for core in sorted(cores):
                    os.sched_setaffinity(0, {core})
                    times.append(min(self.once() for _ in range(3)))
            finally:
                os.sched_setaffinity(0, cores)  # the workers inherit this mask
        self.best = min(self.best, *times)
        return max(times) / self.best


@dataclass(frozen=True)
class Seen:
    """What the gate saw around one kept run."""

    foreign: float     # CPU fraction used by other processes during it
    slowdown: float    # the slowest core's probe right after it, x its best
    redone: int        # disturbed attempts discarded before it


@dataclass(frozen=True)
class QuietGate:
    """Before a run, wait (at most max_wait_s) until the machine is quiet; redo a run
    that was disturbed, up to `retries` times. After `deadline` (time.monotonic()),
    neither wait nor redo: a run budget is kept, and what was seen is still recorded."""

    threshold: float = 0.1
    slow: float = 1.15
    max_wait_s: float = 20.0
    retries: int = 3
    deadline: float = math.inf
    sample_s: float = 0.3
    verbose: bool = True
    probe: Probe = field(default_factory=Probe, compare=False)

    def disturbed(self, seen: Seen) -> bool:
        """Whether a run that saw this counts as disturbed (and is redone if allowed)."""
        return seen.foreign > self.threshold or seen.slowdown > self.slow

    def _disturbed(self) -> str:
        busy = busy_fraction(self.sample_s)
        if busy > self.threshold:
            return f"{busy:.0%} busy with other work"
        slowdown = self.probe.slowest_core()
        return f"a core {slowdown:.2f}x slower than its best" if slowdown > self.slow else ""

    def wait(self) -> str:
        """Wait for a quiet machine; what still disturbed it when the wait timed out."""
        until = min(time.monotonic() + self.max_wait_s, self.deadline)
        why = self._disturbed()
        if why and self.verbose and time.monotonic() < until:
            print(f"validate: machine {why}; waiting up to {until - time.monotonic():.0f} s",
                  file=sys.stderr, flush=True)
        while why and time.monotonic() < until:
            why = self._disturbed()
        return why

    def run(self, fn: Callable[[], T]) -> tuple[T, Seen]:
        """fn's result from the first undisturbed attempt (or the last one)."""
        for attempt in range(self.retries + 1):
            self.wait()
            result, foreign = foreign_fraction(fn)
            seen = Seen(foreign, self.probe.slowest_core(), attempt)
            if not self.disturbed(seen) or attempt == self.retries or \
                    time.monotonic() > self.deadline:
                return result, seen
            if self.verbose:
                print(f"validate: run disturbed ({foreign:.0%} foreign CPU, slowest core "
                      f"{seen.slowdown:.2f}x); running it again", file=sys.stderr, flush=True)
        raise AssertionError("unreachable")
