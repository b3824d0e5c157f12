"""Energy and cost of one run (one step of the workload), from the cluster and the trace.

    compute_j = Σ_units busy_s · busy_power_w
    idle_j    = Σ_units (makespan_s − busy_s) · idle_power_w
    network_j = Σ_transfer hops bytes · energy_per_byte_j of the hop's link
    total_j   = compute_j + idle_j + network_j

A unit draws its idle power whenever it is not computing, from time 0 to the
makespan; the network's energy is per byte moved, counted once per hop. Communication
is the network's in every mode: a collective collapsed into one task (graph.comm,
symmetric tensor parallelism) keeps no unit busy, and the bytes its ring would have
sent (per channel, `collapsed`) are charged as hops. Cost is
makespan × units × price per unit-hour: every unit is paid for for the whole step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .hardware import Cluster
from .trace import Trace, busy_seconds, spread_to_groups

__all__ = ["EnergyReport", "cost_usd", "energy_of", "hourly_price"]

SECONDS_PER_HOUR = 3600.0


@dataclass(frozen=True)
class EnergyReport:
    compute_j: float
    idle_j: float
    network_j: float
    total_j: float


def energy_of(cluster: Cluster, trace: Trace, comm: np.ndarray | None = None,
              collapsed: np.ndarray | None = None,
              groups: dict[int, tuple[int, ...]] | None = None) -> EnergyReport:
    """Energy of one traced run on `cluster`, in joules. comm: per task, whether it is
    communication (graph.comm); collapsed: per channel, bytes moved by such tasks;
    groups: simulated units whose members ran as they did (metrics.compute's)."""
    makespan = trace.makespan_s
    busy = spread_to_groups(busy_seconds(trace, cluster.size, comm), groups)
    busy_w = np.array([u.busy_power_w for u in cluster.units])
    idle_w = np.array([u.idle_power_w for u in cluster.units])
    compute = float(busy @ busy_w)
    idle = float(np.maximum(makespan - busy, 0.0) @ idle_w)
    per_byte = np.array([cluster.links[c.link].spec.energy_per_byte_j for c in cluster.channels])
    hops = np.asarray(trace.xfer_channel, dtype=np.int64)
    network = float(np.asarray(trace.xfer_bytes, dtype=float) @ per_byte[hops]) if len(hops) else 0.0
    if collapsed is not None:
        network += float(collapsed @ per_byte)
    return EnergyReport(compute, idle, network, compute + idle + network)


def cost_usd(makespan_s: float, units: int, price_per_unit_hour: float) -> float:
    """What `units` units cost for `makespan_s` seconds at `price_per_unit_hour` USD each."""
    return makespan_s / SECONDS_PER_HOUR * units * price_per_unit_hour


def hourly_price(prices: Sequence[float | None], default: float | None) -> float | None:
    """USD per hour for a cluster whose units cost `prices` (None: not given, use
    `default`); None when some unit has no price at all."""
    total = 0.0
    for p in prices:
        p = default if p is None else p
        if p is None:
            return None
        total += p
    return total
