"""The workloads of the SimGrid side-by-side comparison (benchmarks/simgrid_side_by_side.py).

* `layered`: the engine benchmark's workload (benchmarks/engine_throughput.py `build`:
  seeded layered DAG, width 100, 2 inputs per task, 10 us +-50 % tasks on 16 units of
  100 TFLOP/s fully connected by 2 us / 25 GB/s links, 2.5e5-byte edges, its `alternate`
  pinning), on those 16 units or the same units behind one switch, with HEFT's pinning
  as a third placement.
* `cliff`: the same DAG widened to U units (layer width 100 U / 16), for the fair
  network's cost against the transfers in flight.
* `focused`: small cases whose makespans are worked out by hand (FOCUSED holds the closed
  forms of store_and_forward and fair, which is also SimGrid's CM02 flow model with its
  correction factors at 1: Velho and Legrand, "Accuracy study and improvement of network
  simulation in the SimGrid framework", SIMUTools 2009).
"""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import numpy as np
from lsdag import units

from leptonsim.cost import Roofline
from leptonsim.generators import TaskCost
from leptonsim.generators import layered as layered_dag
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import Cluster, Link, LinkSpec, fully_connected, replicate, switch
from leptonsim.sim import Heft

BENCHMARKS = Path(__file__).resolve().parent.parent


def engine_benchmark() -> ModuleType:
    """benchmarks/engine_throughput.py: its workload constants and `build`."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import engine_throughput
    return engine_throughput


def layered(n: int, *, width: int = 100, placement: str = "alternate", seed: int = 0,
            topology: str = "full") -> tuple[TaskGraph, Cluster]:
    et = engine_benchmark()
    graph, cluster = et.build(n, width, 2, 0.5, "none" if placement == "heft" else placement, seed)
    if topology == "star":
        cluster = switch(cluster.units, et.LINK)
    if placement == "heft":
        graph.pin[:] = Heft().plan(graph, cluster, Roofline().task_times(graph, cluster)).unit
    return graph, cluster


def cliff(n_units: int, layers: int = 10, seed: int = 0) -> tuple[TaskGraph, Cluster]:
    """The engine benchmark's DAG widened to n_units: `alternate` pinning over two halves."""
    et = engine_benchmark()
    width = 100 * n_units // 16
    n = width * layers
    graph = layered_dag(n, width, 2, TaskCost(flops=et.TASK_FLOPS, nbytes=et.TASK_BYTES, spread=0.5),
                        edge_bytes=et.EDGE_BYTES, seed=seed)
    t, half = np.arange(n), n_units // 2
    graph.pin[:] = (t // width % 2) * half + (t % width) % half
    return graph, fully_connected(replicate(et.UNIT, n_units, "gpu"), et.LINK)


# -- focused cases: tasks 1 ms, 1e8 bytes over 10 us / 10 GB/s links (n/B = 10 ms) ----------
T, A, NB = 1e-3, 1e-5, 1e-2
# case: (store_and_forward, fair = CM02) closed forms, None where not worked out; why
FOCUSED: dict[str, tuple[float | None, float | None, str]] = {
    "single_full": (2 * T + A + NB, 2 * T + A + NB, "one hop: alpha + n/B in every model"),
    "single_star": (2 * T + 2 * (A + NB), 2 * T + 2 * A + NB,
                    "store-and-forward pays n/B per hop; flows and cut-through once"),
    "two_share_link": (2 * T + 2 * (A + NB), 3 * T + A + 2 * NB,
                       "FIFO: the first consumer starts at alpha + n/B; fair: both at alpha + 2n/B"),
    "two_share_unequal": (2 * T + 2 * A + 4 * NB, 2 * T + A + 4 * NB,
                          "FIFO pays the second alpha; same last arrival"),
    "incast_star": (2 * T + 5 * (A + NB), 2 * T + 2 * A + 4 * NB,
                    "4 senders: FIFO carries them one at a time on the last hop"),
    "incast_star_staggered": (None, None, "senders 0.5 ms apart: fair re-shares at every arrival"),
    "chain_full": (5 * T + 4 * (A + NB), 5 * T + 4 * (A + NB), "each transfer alone on one hop"),
    "chain_star": (5 * T + 8 * (A + NB), 5 * T + 4 * (2 * A + NB), "store-and-forward on 2 hops, 4 times"),
    "rtt_unfair": (None, None, "model difference: CM02 weighs a flow by 1/(route latency) even "
                   "with weight-S 0, so the 10 us flow gets 5/6 of the port; max-min gives 1/2"),
    "half_duplex_opposite": (2 * T + 2 * (A + NB), 2 * T + A + 2 * NB,
                             "one channel both ways: FIFO one at a time, fair B/2 each"),
    "star_same_instant": (None, 0.03012, "a streams to u2, then b sends to u3 and u2 at one instant"),
    "star_same_instant_swapped": (None, 0.03012, "the same, b's edges swapped: trips SimGrid 3.32's "
                                  "Lazy-update defect (a's flow keeps the whole switch->u2 port)"),
}


def focused(case: str, *, k: int = 4, nbytes: float = 1e8, task_s: float = T, lat: float = A,
            bw: float = 1e10) -> tuple[TaskGraph, Cluster]:
    spec = LinkSpec(latency_s=lat, bandwidth=bw)
    g = GraphBuilder()

    def tasks(*rows: tuple[str, float, int]) -> None:
        for name, factor, unit in rows:
            g.task(name, duration_s=task_s * factor, pin=unit)

    def edges(*rows: tuple[str, str, float]) -> None:
        for a, b, factor in rows:
            g.edge(a, b, nbytes * factor)

    if case in ("single_full", "single_star"):
        tasks(("a", 1, 0), ("b", 1, 1))
        edges(("a", "b", 1))
        return g.build(), (fully_connected if case == "single_full" else switch)(units(2), spec)
    if case in ("two_share_link", "two_share_unequal"):
        tasks(("a", 1, 0), ("b", 1, 1), ("c", 1, 1))
        edges(("a", "b", 1 if case == "two_share_link" else 3), ("a", "c", 1))
        return g.build(), fully_connected(units(2), spec)
    if case in ("incast_star", "incast_star_staggered"):
        stagger = 0.5 if case == "incast_star_staggered" else 0.0
        tasks(*((f"s{i}", 1 + i * stagger, i + 1) for i in range(k)), ("r", 1, 0))
        edges(*((f"s{i}", "r", 1) for i in range(k)))
        return g.build(), switch(units(k + 1), spec)
    if case in ("chain_full", "chain_star"):
        tasks(*((f"t{i}", 1, i) for i in range(k + 1)))
        edges(*((f"t{i - 1}", f"t{i}", 1) for i in range(1, k + 1)))
        return g.build(), (fully_connected if case == "chain_full" else switch)(units(k + 1), spec)
    if case == "rtt_unfair":           # two flows into u2's port; route latencies 10 us and 50 us
        tasks(("a", 1, 0), ("b", 1, 1), ("c", 20, 2), ("d", 1, 2))
        edges(("a", "c", 1), ("b", "d", 1))
        ports = tuple(Link(f"p{i}", f"u{i}", "sw", LinkSpec(lat * f, bw))
                      for i, f in enumerate((0.5, 4.5, 0.5)))
        return g.build(), Cluster(units(3), ports, ("sw",))
    if case in ("star_same_instant", "star_same_instant_swapped"):
        tasks(("a", 1, 0), ("b", 2, 1), ("c", 10, 2), ("d", 0.1, 3), ("e", 0.1, 2))
        pair = [("b", "d", 1.0), ("b", "e", 1.0)]
        edges(("a", "c", 1), *(pair if case == "star_same_instant" else pair[::-1]))
        return g.build(), switch(units(4), spec)
    if case == "half_duplex_opposite":
        tasks(("a", 1, 0), ("b", 1, 1), ("a2", 1, 1), ("b2", 1, 0))
        edges(("a", "a2", 1), ("b", "b2", 1))
        return g.build(), fully_connected(units(2), LinkSpec(lat, bw, duplex=False))
    raise ValueError(f"unknown case {case!r}")
