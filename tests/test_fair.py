"""Max-min fair sharing (`network = "fair"`): the rate allocation and the schedules."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.generators import TaskCost, chain, independent, layered
from leptonsim.graph import TaskGraph
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate, ring, switch
from leptonsim.metrics import covered
from leptonsim.sim import simulate
from leptonsim.sim.fair import max_min_rates
from tests.helpers.traces import check_trace_invariants, check_work_conserving
from tests.strategies import clusters, graphs, pin_randomly

REL = 1e-9
UNIT = ComputeUnit("u", 1e12, 1e12)


@st.composite
def flows(draw):
    channels = draw(st.integers(1, 6))
    capacity = draw(st.lists(st.floats(1e-3, 1e3), min_size=channels, max_size=channels))
    paths = draw(st.lists(st.lists(st.integers(0, channels - 1), min_size=1, max_size=channels,
                                   unique=True), min_size=1, max_size=12))
    return paths, capacity


@given(flows())
def test_max_min_rates_are_feasible_and_every_flow_has_a_bottleneck(case):
    """Bertsekas & Gallager's characterisation: an allocation is max-min fair iff it is
    feasible and every flow crosses a saturated channel where no flow is faster."""
    paths, capacity = case
    rate = max_min_rates(paths, capacity)
    load = np.zeros(len(capacity))
    for path, r in zip(paths, rate, strict=True):
        assert r > 0
        load[path] += r
    assert np.all(load <= np.asarray(capacity) * (1 + REL))
    for i, path in enumerate(paths):
        assert any(load[c] >= capacity[c] * (1 - REL)
                   and rate[i] >= max(rate[j] for j, p in enumerate(paths) if c in p) * (1 - REL)
                   for c in path), f"flow {i} has no bottleneck"


def _incast(sizes: list[float], latency: float, bandwidth: float) -> TaskGraph:
    """len(sizes) senders on units 1.. each send one tensor to unit 0, all at t = 1."""
    k = len(sizes)
    return TaskGraph(names=tuple(f"t{i}" for i in range(k + 1)), flops=np.zeros(k + 1),
                     nbytes=np.zeros(k + 1), duration_s=np.ones(k + 1),
                     pin=np.arange(k + 1), edge_src=np.arange(1, k + 1),
                     edge_dst=np.zeros(k, np.int64), edge_bytes=np.asarray(sizes, float))


@settings(deadline=None)
@given(st.integers(2, 8), st.floats(1.0, 1e9), st.floats(0, 1e-3), st.floats(1e6, 1e11))
def test_equal_transfers_into_one_port_share_it_and_end_together(k, nbytes, latency, bandwidth):
    """k equal transfers into one unit of a star, sent at t = 1: fair sharing ends them
    all at 1 + 2α + k·n/B; FIFO store-and-forward queues them at the switch and ends
    them one hop-time apart, the last at 1 + (k+1)(α + n/B); FIFO cut-through reserves
    the shared port in turn, the i-th ending at 1 + α + i(α + n/B)."""
    graph = _incast([nbytes] * k, latency, bandwidth)
    cluster = switch(replicate(UNIT, k + 1), LinkSpec(latency, bandwidth))
    port = cluster.route(1, 0)[-1]
    fair = simulate(graph, cluster, "static", network="fair")
    expected = 1.0 + 2 * latency + k * nbytes / bandwidth
    assert fair.xfer_end[fair.xfer_channel == port] == pytest.approx(np.full(k, expected), rel=1e-9)
    hop = latency + nbytes / bandwidth
    fifo = simulate(graph, cluster, "static", network="store_and_forward")
    ends = np.sort(fifo.xfer_end[fifo.xfer_channel == port])
    assert ends == pytest.approx(1.0 + hop + hop * np.arange(1, k + 1), rel=1e-9)
    cut = simulate(graph, cluster, "static", network="fifo")
    ends = np.sort(cut.xfer_end[cut.xfer_channel == port])
    assert ends == pytest.approx(1.0 + latency + hop * np.arange(1, k + 1), rel=1e-9)


@settings(deadline=None)
@given(st.lists(st.floats(1.0, 1e9), min_size=1, max_size=8), st.floats(0, 1e-3),
       st.floats(1e6, 1e11))
def test_one_bottleneck_is_work_conserving(sizes, latency, bandwidth):
    """Transfers of any sizes sent at once through one channel: the last one arrives
    when the channel has carried all their bytes, Σn/B after the route's latency."""
    graph = _incast(sizes, latency, bandwidth)
    cluster = switch(replicate(UNIT, len(sizes) + 1), LinkSpec(latency, bandwidth))
    trace = simulate(graph, cluster, "static", network="fair")
    assert trace.xfer_end.max() == pytest.approx(1.0 + 2 * latency + sum(sizes) / bandwidth,
                                                 rel=1e-9)


@given(st.floats(1.0, 1e9), st.floats(0, 1e-3), st.floats(1e6, 1e11), st.integers(3, 9))
def test_lone_transfer_streams_over_its_route(nbytes, latency, bandwidth, n):
    """Alone, a transfer takes Σα + n / min B (cut-through), however many hops."""
    cluster = ring(replicate(UNIT, n), LinkSpec(latency, bandwidth))
    graph = independent(2, TaskCost(duration_s=1.0))
    graph = TaskGraph(names=graph.names, flops=graph.flops, nbytes=graph.nbytes,
                      duration_s=graph.duration_s, pin=np.array([0, n // 2]),
                      edge_src=np.array([0]), edge_dst=np.array([1]), edge_bytes=np.array([nbytes]))
    trace = simulate(graph, cluster, "static", network="fair")
    hops = n // 2
    assert len(trace.xfer_channel) == hops
    assert trace.makespan_s == pytest.approx(2.0 + hops * latency + nbytes / bandwidth, rel=1e-12)


def check_capacity(graph, cluster, trace) -> None:
    """No channel carries more bytes in any window than its bandwidth allows, and no
    transfer is faster than it would be alone."""
    bw = np.array([c.bandwidth for c in cluster.channels])
    lat = np.array([c.latency_s for c in cluster.channels])
    for c in np.unique(trace.xfer_channel).tolist():
        on = trace.xfer_channel == c
        s, e, b = trace.xfer_start[on], trace.xfer_end[on], trace.xfer_bytes[on]
        for last in e:  # every window [s_j, last]: the bytes of the transfers inside it
            inside = (s[:, None] >= s[None, :]) & (e[:, None] <= last)
            carried = b @ inside
            assert np.all(carried <= bw[c] * (np.maximum(last - s, 0) * (1 + REL) + 4 * np.spacing(last)))
    pair = trace.xfer_src_task * graph.size + trace.xfer_dst_task
    for p in np.unique(pair).tolist():
        rows = pair == p
        route = trace.xfer_channel[rows]
        alone = lat[route].sum() + trace.xfer_bytes[rows][0] / bw[route].min()
        start, end = trace.xfer_start[rows][0], trace.xfer_end[rows][0]
        assert end - start >= alone * (1 - REL) - 4 * np.spacing(end)  # rounding of end - start


@settings(max_examples=100, deadline=None)
@given(graphs(), clusters(), st.sampled_from(["heft", "heft_contention", "static"]))
def test_fair_schedules_respect_dependencies_capacity_and_stay_work_conserving(
        graph, cluster, scheduler):
    if scheduler == "static":
        pin_randomly(graph, cluster.size, seed=graph.size)
    trace = simulate(graph, cluster, scheduler, network="fair")
    check_trace_invariants(graph, trace, exclusive_channels=False)
    check_work_conserving(graph, trace)
    check_capacity(graph, cluster, trace)


@settings(max_examples=50, deadline=None)
@given(st.integers(10, 80), st.integers(2, 10), st.integers(1, 3), st.integers(2, 5),
       st.integers(0, 2**16))
def test_fair_under_heavy_sharing(n, width, degree, units, seed):
    """Transfers as long as tasks, of very different sizes, on a star: many flows in
    flight share the switch ports."""
    graph = layered(n, width, degree, TaskCost(duration_s=1.0, spread=0.9), edge_bytes=1.0, seed=seed)
    graph.edge_bytes[:] *= np.random.default_rng(seed).uniform(0, 8, graph.num_edges)
    cluster = switch(replicate(UNIT, units), LinkSpec(0.1, 1.0))
    pin_randomly(graph, units, seed)
    trace = simulate(graph, cluster, "static", network="fair")
    check_trace_invariants(graph, trace, exclusive_channels=False)
    check_work_conserving(graph, trace)
    check_capacity(graph, cluster, trace)
    again = simulate(graph, cluster, "static", network="fair")
    assert np.array_equal(trace.task_start, again.task_start)
    assert np.array_equal(trace.xfer_end, again.xfer_end)


def test_channel_busy_time_counts_overlaps_once():
    channel = np.array([0, 0, 0, 1, 1])
    start = np.array([0.0, 1.0, 5.0, 0.0, 2.0])
    end = np.array([2.0, 3.0, 6.0, 1.0, 3.0])
    assert covered(channel, start, end, 3).tolist() == [4.0, 2.0, 0.0]


@given(st.integers(2, 30), st.floats(0.0, 1e9), st.floats(0, 1e-3), st.floats(1e6, 1e11))
def test_fifo_and_fair_agree_when_nothing_shares(n, nbytes, latency, bandwidth):
    """A chain bouncing between two units: one transfer at a time on one hop, so both
    network models give the same schedule."""
    cluster = fully_connected(replicate(UNIT, 2), LinkSpec(latency, bandwidth))
    graph = chain(n, TaskCost(duration_s=1.0, spread=0.5), edge_bytes=nbytes, seed=n)
    graph.pin[:] = np.arange(n) % 2
    fifo = simulate(graph, cluster, "static", network="fifo")
    fair = simulate(graph, cluster, "static", network="fair")
    assert fair.task_start == pytest.approx(fifo.task_start, rel=1e-12)
    assert fair.makespan_s == pytest.approx(fifo.makespan_s, rel=1e-12)
