"""Theorems about simulated schedules (issue 2, item 11), checked on random inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import metrics
from leptonsim.cost import Roofline
from leptonsim.errors import SimulationError
from leptonsim.generators import TaskCost, chain, independent, layered
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import (
    Cluster,
    ComputeUnit,
    Link,
    LinkSpec,
    fully_connected,
    replicate,
    ring,
    switch,
    two_level,
)
from leptonsim.sim import Heft, HeftContention, simulate
from tests.helpers.traces import REL, check_trace_invariants, check_work_conserving
from tests.strategies import clusters, efficiencies, graphs, pin_randomly

SCHEDULERS = ["heft", "heft_contention", "greedy", "static"]


def run(graph, cluster, scheduler):
    if scheduler == "static":
        pin_randomly(graph, cluster.size, seed=graph.size)
    times = Roofline().task_times(graph, cluster)
    trace = simulate(graph, cluster, scheduler)
    return trace, metrics.compute(graph, cluster, times, trace)


@settings(max_examples=150, deadline=None)
@given(graphs(), clusters(), st.sampled_from(SCHEDULERS))
def test_makespan_at_least_critical_path_and_work_over_capacity(graph, cluster, scheduler):
    _, m = run(graph, cluster, scheduler)
    assert m.makespan_s >= m.critical_path_s * (1 - REL)
    assert m.makespan_s >= m.total_work_s / m.capacity * (1 - REL)


@settings(max_examples=150, deadline=None)
@given(graphs(edge_bytes=False), clusters(identical=True))
def test_greedy_without_transfers_within_graham_bound(graph, cluster):
    _, m = run(graph, cluster, "greedy")
    bound = m.total_work_s / cluster.size + m.critical_path_s
    assert m.makespan_s <= bound * (1 + REL)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 200), st.integers(1, 16), st.floats(0.001, 100.0), efficiencies,
       st.sampled_from(["heft", "heft_contention", "greedy"]))
def test_equal_independent_tasks_take_ceil_n_over_c_rounds(n, c, t, eff, scheduler):
    unit = ComputeUnit("u", 1e12, 1e12, efficiency=eff)
    cluster = fully_connected(replicate(unit, c), LinkSpec(1e-6, 1e9))
    trace = simulate(independent(n, TaskCost(duration_s=t)), cluster, scheduler)
    rounds = math.ceil(n / c)
    assert trace.makespan_s == pytest.approx(rounds * (t / eff), rel=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 100), st.floats(0.001, 10.0), st.floats(0, 0.9), efficiencies,
       st.integers(0, 1000))
def test_chain_on_one_unit_takes_sum_over_efficiency(n, t, spread, eff, seed):
    graph = chain(n, TaskCost(duration_s=t, spread=spread), edge_bytes=1e6, seed=seed)
    cluster = fully_connected((ComputeUnit("u", 1e12, 1e12, efficiency=eff),), LinkSpec(0, 1))
    trace = simulate(graph, cluster, "greedy")
    expected = 0.0
    for d in graph.duration_s.tolist():  # the engine adds durations in chain order
        expected += d / eff
    assert trace.makespan_s == expected


@settings(max_examples=150, deadline=None)
@given(graphs(), clusters(), st.sampled_from(SCHEDULERS))
def test_trace_respects_resources_and_dependencies(graph, cluster, scheduler):
    trace, _ = run(graph, cluster, scheduler)
    check_trace_invariants(graph, trace)


@settings(max_examples=100, deadline=None)
@given(graphs(), clusters(), st.sampled_from(["heft", "heft_contention", "static"]))
def test_no_unit_idles_while_one_of_its_tasks_is_ready(graph, cluster, scheduler):
    """With a fixed placement every unit is work-conserving."""
    trace, _ = run(graph, cluster, scheduler)
    check_work_conserving(graph, trace)


@settings(max_examples=150, deadline=None)
@given(st.integers(10, 120), st.integers(2, 12), st.integers(1, 4), st.integers(2, 4),
       st.floats(0, 0.5), st.integers(0, 2**16))
def test_no_unit_idles_when_later_data_overtakes(n, width, degree, units, latency, seed):
    """The same theorem where it is hardest: transfers as long as tasks and of very
    different sizes, so data sent later often arrives first at a sleeping unit."""
    graph = layered(n, width, degree, TaskCost(duration_s=1.0, spread=0.9), edge_bytes=1.0, seed=seed)
    graph.edge_bytes[:] *= np.random.default_rng(seed).uniform(0, 8, graph.num_edges)
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), units), LinkSpec(latency, 1.0))
    pin_randomly(graph, cluster.size, seed)
    trace = simulate(graph, cluster, "static")
    check_trace_invariants(graph, trace)
    check_work_conserving(graph, trace)


@pytest.mark.parametrize("late_bytes, early_ready", [(1.0, 3.0), (0.0, 2.0)])
def test_sleeping_unit_wakes_for_data_that_overtakes(late_bytes, early_ready):
    """Unit 2 sleeps until t = 11 for c's input; d's input arrives earlier (over
    another link, or with no bytes at all) and d must start then, not at 11."""
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), 3), LinkSpec(0.0, 1.0))
    graph = TaskGraph(names=("a", "b", "c", "d"), flops=np.zeros(4), nbytes=np.zeros(4),
                      duration_s=np.array([1.0, 2.0, 1.0, 1.0]), pin=np.array([0, 1, 2, 2]),
                      edge_src=np.array([0, 1]), edge_dst=np.array([2, 3]),
                      edge_bytes=np.array([10.0, late_bytes]))
    trace = simulate(graph, cluster, "static")
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    assert start[3] == early_ready and start[2] == 11.0


@settings(max_examples=50, deadline=None)
@given(graphs(), clusters(), st.sampled_from(SCHEDULERS))
def test_same_input_same_trace(graph, cluster, scheduler):
    a, _ = run(graph, cluster, scheduler)
    b, _ = run(graph, cluster, scheduler)
    for field in ("task", "task_unit", "task_start", "xfer_channel", "xfer_start"):
        assert np.array_equal(getattr(a, field), getattr(b, field))


@given(st.floats(1.0, 1e9), st.floats(0, 1e-3), st.floats(1e6, 1e11), st.integers(3, 9))
def test_uncontended_transfer_takes_latency_plus_bytes_over_bandwidth_per_hop(
        nbytes, latency, bandwidth, n):
    """store_and_forward: every hop pays latency + bytes / bandwidth, one after another."""
    unit = ComputeUnit("u", 1e12, 1e12)
    cluster = ring(replicate(unit, n), LinkSpec(latency, bandwidth))
    graph = chain(2, TaskCost(duration_s=1.0), edge_bytes=nbytes)
    far = n // 2  # the hop count of the shortest way round the ring
    graph.pin[:] = [0, far]
    trace = simulate(graph, cluster, "static", network="store_and_forward")
    assert len(trace.xfer_channel) == far
    hops = trace.xfer_end - trace.xfer_start
    assert hops == pytest.approx(np.full(far, latency + nbytes / bandwidth), rel=1e-12)
    assert trace.makespan_s == pytest.approx(2.0 + far * (latency + nbytes / bandwidth))


@given(st.floats(1.0, 1e9), st.lists(st.tuples(st.floats(0, 1e-3), st.floats(1e6, 1e11)),
                                     min_size=1, max_size=5))
def test_uncontended_cut_through_takes_latencies_plus_bytes_over_the_bottleneck(nbytes, hops):
    """fifo (cut-through): a chain of links costs the sum of its latencies plus one
    serialisation at the slowest link; hop i starts when the head is in and is held
    for its latency plus the bytes at the slowest link up to it (it cannot pass on
    bytes not yet in); with one link it is store-and-forward's time."""
    units = replicate(ComputeUnit("u", 1e12, 1e12), len(hops) + 1)
    links = tuple(Link(f"l{i}", units[i].name, units[i + 1].name, LinkSpec(a, b))
                  for i, (a, b) in enumerate(hops))
    cluster = Cluster(units, links)
    graph = chain(2, TaskCost(duration_s=1.0), edge_bytes=nbytes)
    graph.pin[:] = [0, len(hops)]
    trace = simulate(graph, cluster, "static")
    latency = sum(a for a, _ in hops)
    stream = nbytes / min(b for _, b in hops)
    assert trace.makespan_s == pytest.approx(2.0 + latency + stream, rel=1e-12)
    heads = 1.0 + np.cumsum([0.0] + [a for a, _ in hops[:-1]])
    assert trace.xfer_start == pytest.approx(heads, rel=1e-12)
    slowest = np.minimum.accumulate([b for _, b in hops])
    assert trace.xfer_end - trace.xfer_start == pytest.approx(
        [a + nbytes / b for (a, _), b in zip(hops, slowest, strict=True)], rel=1e-9, abs=1e-15)
    if len(hops) == 1:
        sf = simulate(graph, cluster, "static", network="store_and_forward")
        assert sf.makespan_s == trace.makespan_s


def test_cut_through_queues_fifo_per_link_on_a_shared_hop():
    """Two transfers into one switch port: the second waits for the first on the
    shared link direction and only there (contention per link, in send order)."""
    units = replicate(ComputeUnit("u", 1e12, 1e12), 3)
    cluster = switch(units, LinkSpec(1e-6, 1e9))
    b = GraphBuilder()
    a0, a1 = b.task("a0", duration_s=1.0, pin=0), b.task("a1", duration_s=1.0, pin=1)
    z = b.task("z", duration_s=0.0, pin=2)
    b.edge(a0, z, 1e6)
    b.edge(a1, z, 1e6)
    trace = simulate(b.build(), cluster, "static")
    one = 2e-6 + 1e-3   # two hops' latency, one serialisation
    assert trace.makespan_s == pytest.approx(1.0 + one + 1e-6 + 1e-3, rel=1e-12)
    sf = simulate(b.build(), cluster, "static", network="store_and_forward")
    assert sf.makespan_s == pytest.approx(1.0 + 3 * (1e-6 + 1e-3), rel=1e-12)


def test_transfer_to_same_unit_is_free():
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), 2), LinkSpec(1.0, 1.0))
    graph = chain(3, TaskCost(duration_s=1.0), edge_bytes=1e9)
    graph.pin[:] = 0
    trace = simulate(graph, cluster, "static")
    assert len(trace.xfer_channel) == 0 and trace.makespan_s == 3.0


def test_fifo_link_serialises_two_transfers():
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), 2), LinkSpec(0.0, 1.0))
    graph = independent(3, TaskCost(duration_s=1.0))
    graph = type(graph)(names=graph.names, flops=graph.flops, nbytes=graph.nbytes,
                        duration_s=graph.duration_s, pin=np.array([0, 1, 1]),
                        edge_src=np.array([0, 0]), edge_dst=np.array([1, 2]),
                        edge_bytes=np.array([2.0, 3.0]))
    trace = simulate(graph, cluster, "static")
    assert trace.xfer_start.tolist() == [1.0, 3.0]  # the second waits for the first
    assert trace.makespan_s == 7.0


def test_half_duplex_link_shares_one_channel():
    full = fully_connected(replicate(ComputeUnit("u", 1, 1), 2), LinkSpec(0, 1, duplex=True))
    half = fully_connected(replicate(ComputeUnit("u", 1, 1), 2), LinkSpec(0, 1, duplex=False))
    assert len(full.channels) == 2 and len(half.channels) == 1
    assert half.route(0, 1) == half.route(1, 0)


def test_static_scheduler_needs_pins():
    cluster = fully_connected(replicate(ComputeUnit("u", 1, 1), 2), LinkSpec(0, 1))
    with pytest.raises(SimulationError, match="not pinned"):
        simulate(independent(2, TaskCost(duration_s=1.0)), cluster, "static")


@settings(max_examples=50, deadline=None)
@given(graphs(), clusters(), st.sampled_from(["heft", "heft_contention", "greedy"]), st.integers(0, 99))
def test_pinned_tasks_run_where_pinned(graph, cluster, scheduler, seed):
    rng = np.random.default_rng(seed)
    pinned = rng.random(graph.size) < 0.3
    graph.pin[pinned] = rng.integers(0, cluster.size, int(pinned.sum()))
    trace = simulate(graph, cluster, scheduler)
    check_trace_invariants(graph, trace)
    where = dict(zip(trace.task.tolist(), trace.task_unit.tolist(), strict=True))
    assert all(where[t] == graph.pin[t] for t in np.flatnonzero(pinned).tolist())


@settings(max_examples=50, deadline=None)
@given(graphs(edge_bytes=False), clusters())
def test_contention_aware_heft_is_heft_when_nothing_moves(graph, cluster):
    """Without bytes on any edge there is no contention to see: both plans agree."""
    times = Roofline().task_times(graph, cluster)
    a, b = Heft().plan(graph, cluster, times), HeftContention().plan(graph, cluster, times)
    assert np.array_equal(a.unit, b.unit) and np.array_equal(a.priority, b.priority)


def test_contention_aware_heft_plans_around_a_loaded_uplink():
    """One producer feeds ten 1 s consumers with 1 GB each; the other node is behind a
    1.5 GB/s uplink. HEFT counts every transfer as if it had the uplink alone, so it
    sends more over it than it can carry in time; the contention-aware plan sees the
    queue it builds, and the simulated step is shorter. Store-and-forward, where the
    four-hop route holds the uplink longest (cut-through, both plans tie here)."""
    k = 10
    units = replicate(ComputeUnit("u", 1e12, 1e12), 4)
    cluster = two_level(units, 2, LinkSpec(0.0, 1e12), LinkSpec(0.0, 1.5e9))
    graph = TaskGraph(names=tuple(f"t{i}" for i in range(k + 1)), flops=np.zeros(k + 1),
                      nbytes=np.zeros(k + 1), duration_s=np.ones(k + 1),
                      pin=np.array([0] + [-1] * k), edge_src=np.zeros(k, np.int64),
                      edge_dst=np.arange(1, k + 1), edge_bytes=np.full(k, 1e9))
    heft, aware = (simulate(graph, cluster, s, network="store_and_forward").makespan_s
                   for s in ("heft", "heft_contention"))
    assert aware < heft - 0.1


@given(st.integers(0, 40), st.integers(0, 3), st.sampled_from([0, 1, 10**30]))
def test_a_layer_wider_than_the_graph_is_the_whole_graph(n: int, extra: int, beyond: int) -> None:
    """layered(n, w) for any w >= n has one layer: no edges, like independent(n); a width
    past the int64 range (10**30, found by the fuzzer) is no exception."""
    cost = TaskCost(flops=1e9)
    wide = layered(n, max(n, 1) + extra + beyond, 3, cost, seed=5)
    flat = independent(n, cost, seed=5)
    assert wide.num_edges == 0
    assert np.array_equal(wide.flops, flat.flops)


@settings(max_examples=60, deadline=None)
@given(st.floats(0.01, 10.0), st.floats(0.001, 1.0), st.floats(0.0, 1e-3), st.floats(1e6, 1e12),
       st.floats(1.0, 1e9), st.integers(1, 5))
def test_a_zero_duration_task_ends_when_its_inputs_are_in_beside_the_compute(
        busy, short, alpha, bw, nbytes, hops):
    """Unit 0 computes for `busy` seconds; unit 1 computes `short` and sends to a chain
    of zero-duration tasks on unit 0 (a collective's ring steps), whose last one sends
    back. Each step ends the moment its input is in, whatever unit 0 is computing (NCCL
    runs on its own stream): the chain ends at short + alpha + n/B, not after `busy`,
    and unit 1's successor starts one more transfer later."""
    b = GraphBuilder()
    b.task("compute", duration_s=busy, pin=0)
    b.task("produce", duration_s=short, pin=1)
    steps = [b.task(f"step{i}", duration_s=0.0, pin=0) for i in range(hops)]
    consume = b.task("consume", duration_s=1.0, pin=1)
    b.edge("produce", steps[0], nbytes)
    for a, z in zip(steps, steps[1:], strict=False):
        b.edge(a, z)
    b.edge(steps[-1], "consume", nbytes)
    cluster = fully_connected(replicate(ComputeUnit("u", 1e12, 1e12), 2, "u"), LinkSpec(alpha, bw))
    graph = b.build()
    trace = simulate(graph, cluster, "static")
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    hop = alpha + nbytes / bw
    for step in steps:
        assert start[step] == pytest.approx(short + hop, rel=1e-12)
    assert start[consume] == pytest.approx(short + 2 * hop, rel=1e-12)
