"""How busy the machine is with other work, and waiting until it is quiet.

Real execution times a worker per core; another tenant's process on a core slows it
down by up to half, which no cost model of *this* run can know. Before each measured
run, validation samples the system-wide CPU busy fraction (Linux /proc/stat) and, if
other work is running, waits up to a limit for it to stop. The fraction it finally
saw is recorded with the run, so a result measured on a loaded machine says so.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass


def _cpu_times() -> tuple[int, int] | None:
    """(busy, total) jiffies over all CPUs, or None where /proc/stat does not exist."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return sum(fields) - idle, sum(fields)


def busy_fraction(sample_s: float = 0.5) -> float:
    """Fraction of all CPU time spent busy during the next `sample_s` seconds (0 when
    it cannot be read)."""
    first = _cpu_times()
    time.sleep(sample_s)
    second = _cpu_times()
    if first is None or second is None or second[1] <= first[1]:
        return 0.0
    return (second[0] - first[0]) / (second[1] - first[1])


@dataclass(frozen=True)
class QuietGate:
    """Wait before a run until busy <= threshold, for at most max_wait_s in total
    per run; `sample_s` per look."""

    threshold: float = 0.15
    max_wait_s: float = 60.0
    sample_s: float = 0.5
    verbose: bool = True

    def wait(self) -> float:
        """The busy fraction last seen (<= threshold unless the wait timed out)."""
        deadline = time.monotonic() + self.max_wait_s
        busy = busy_fraction(self.sample_s)
        warned = False
        while busy > self.threshold and time.monotonic() < deadline:
            if self.verbose and not warned:
                print(f"validate: machine {busy:.0%} busy with other work; waiting up to "
                      f"{self.max_wait_s:.0f} s for it to settle", file=sys.stderr, flush=True)
                warned = True
            busy = busy_fraction(self.sample_s)
        return busy
