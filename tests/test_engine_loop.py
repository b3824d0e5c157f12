"""The fixed-placement event loop (sim/fixed.py) against the simpy engine it replaced
(tests/helpers/engine_reference.py): the same events in the same order, so the same
floats, on any graph, placement and network."""

from __future__ import annotations

from heapq import heappop

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cost import DEFAULT
from leptonsim.generators import TaskCost, chain
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.sim import simulate
from leptonsim.sim.clock import UNIT_BITS, UNIT_MASK, Clock, fire
from tests.helpers.engine_reference import simulate_reference
from tests.strategies import clusters, graphs, pin_randomly

FIXED = ["static", "heft", "heft_contention"]   # every scheduler that places before the run


def per_task(trace, n: int) -> tuple[np.ndarray, np.ndarray]:
    start, end = np.empty(n), np.empty(n)
    start[trace.task], end[trace.task] = trace.task_start, trace.task_end
    return start, end


@settings(max_examples=150, deadline=None)
@given(graphs(), clusters(), st.sampled_from(FIXED),
       st.sampled_from(["fifo", "store_and_forward", "fair"]), st.integers(0, 2**16),
       st.floats(0, 0.5))
def test_loop_gives_every_task_and_hop_the_reference_times(graph, cluster, scheduler, network,
                                                           seed, instant):
    """Theorem: for every DAG, fixed placement and network, each task's start and end
    and each hop's (edge, channel, start, end) are bit-identical to the simpy engine's,
    with ties (equal durations), zero-duration tasks run beside their units' turns,
    multi-hop routes and sleeping units woken early by data that overtakes."""
    pin_randomly(graph, cluster.size, seed)
    zero = np.random.default_rng(seed).random(graph.size) < instant
    for col in (graph.duration_s, graph.flops, graph.nbytes):
        col[zero] = 0.0
    trace = simulate(graph, cluster, scheduler, network=network)
    start, end, hops = simulate_reference(graph, cluster, scheduler, network)
    got_start, got_end = per_task(trace, graph.size)
    assert np.array_equal(got_start, start) and np.array_equal(got_end, end)
    for got, want in zip((trace.xfer_channel, trace.xfer_start, trace.xfer_end), hops[1:],
                         strict=True):
        assert np.array_equal(got, want)


def test_zero_duration_tasks_are_exercised():
    """The theorem's instant branch is reachable: a task of no work takes no time."""
    graph = chain(3, TaskCost(duration_s=1.0), 0.0, 0)
    graph.duration_s[1] = 0.0
    graph.pin[:] = 0
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), 2, "u"), LinkSpec(0, 1e9))
    assert DEFAULT.task_times(graph, cluster)[0, 1] == 0.0
    start, end = per_task(simulate(graph, cluster, "static"), 3)
    assert start[1] == end[1] == start[2] == 1.0


def test_clock_orders_urgent_first_then_by_insertion():
    """simpy's order: at equal times URGENT entries first, each kind by insertion."""
    clock, seen = Clock(), []
    clock.call(1.0, lambda _: seen.append("a"))
    clock.turn(1.0, 0, 5, urgent=True)
    clock.call(0.5, lambda _: seen.append("b"))
    clock.turn(1.0, 1, 6, urgent=True)
    order = [heappop(clock.queue) for _ in range(4)]
    turns = [(e[0], e[3] & UNIT_MASK, e[3] >> UNIT_BITS) if isinstance(e[3], int) else (e[0], "call")
             for e in order]
    assert turns == [(0.5, "call"), (1.0, 0, 5), (1.0, 1, 6), (1.0, "call")]
    fire(order[0][3])
    assert seen == ["b"]
