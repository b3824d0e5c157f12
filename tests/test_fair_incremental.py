"""The incremental max-min solver (FairNetwork) against the full re-solve at every
start and end (_FullFairNetwork): the same schedules, on random graphs and platforms,
and the same arrivals for transfers sent at random times over routes whose latencies
differ (a transfer registered on idle channels ahead of its start is taken off them
when another starts on them first)."""

from __future__ import annotations

import numpy as np
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import mesh
from leptonsim.generators import TaskCost, layered
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import Cluster, ComputeUnit, Link, LinkSpec, replicate, switch
from leptonsim.parallel import collectives as col
from leptonsim.sim import engine, simulate
from leptonsim.sim.fair import FairNetwork, _FullFairNetwork
from leptonsim.sim.network import call_at
from tests.strategies import clusters, graphs, pin_randomly

TOL = 1e-12  # relative, on times (the two solvers round bytes left differently)
UNIT = ComputeUnit("u", 1e12, 1e12)


@pytest.fixture(autouse=True, scope="module")
def full_solver():
    """The reference reachable by name for this module only."""
    engine.NETWORKS["fair_full"] = _FullFairNetwork
    yield
    del engine.NETWORKS["fair_full"]


def assert_same_schedule(graph, cluster, scheduler: str) -> None:
    fast = simulate(graph, cluster, scheduler, network="fair")
    full = simulate(graph, cluster, scheduler, network="fair_full")
    assert fast.makespan_s == pytest.approx(full.makespan_s, rel=TOL, abs=1e-300)
    order = np.argsort(fast.task), np.argsort(full.task)
    np.testing.assert_allclose(fast.task_start[order[0]], full.task_start[order[1]], rtol=TOL, atol=0)
    np.testing.assert_allclose(fast.task_end[order[0]], full.task_end[order[1]], rtol=TOL, atol=0)
    assert np.array_equal(fast.task_unit[order[0]], full.task_unit[order[1]])


@settings(max_examples=60, deadline=None)
@given(graphs(), clusters(), st.sampled_from(["heft", "heft_contention", "static"]))
def test_incremental_equals_full_resolve_on_random_graphs_and_platforms(graph, cluster, scheduler):
    if scheduler == "static":
        pin_randomly(graph, cluster.size, seed=graph.size)
    assert_same_schedule(graph, cluster, scheduler)


@settings(max_examples=40, deadline=None)
@given(st.integers(10, 80), st.integers(2, 10), st.integers(1, 3), st.integers(2, 6),
       st.integers(0, 2**16))
def test_incremental_equals_full_resolve_under_heavy_sharing(n, width, degree, units, seed):
    """Many flows in flight share switch ports, with ends at equal timestamps (equal
    sizes) as well as apart (sizes drawn)."""
    graph = layered(n, width, degree, TaskCost(duration_s=1.0, spread=0.9), edge_bytes=1.0, seed=seed)
    if seed % 2:
        graph.edge_bytes[:] *= np.random.default_rng(seed).uniform(0, 8, graph.num_edges)
    pin_randomly(graph, units, seed)
    assert_same_schedule(graph, switch(replicate(UNIT, units), LinkSpec(0.1, 1.0)), "static")


def test_fair_is_the_incremental_solver():
    assert engine.NETWORKS["fair"] is FairNetwork


def star(latency: list[float], bandwidth: list[float]) -> Cluster:
    """Units behind one switch, each port its own latency and bandwidth."""
    us = replicate(UNIT, len(latency))
    ports = zip(us, latency, bandwidth, strict=True)
    links = tuple(Link(f"port{i}", u.name, "sw", LinkSpec(a, b)) for i, (u, a, b) in enumerate(ports))
    return Cluster(us, links, ("sw",))


def arrivals(network: type[_FullFairNetwork], cluster: Cluster,
             sends: list[tuple[int, int, float, float]]) -> tuple[dict[int, float], np.ndarray]:
    """Each send (src, dst, bytes, time) as edge i; when each arrives, and the hop records."""
    env, got = simpy.Environment(), {}
    net = network(env, cluster.channels, got.__setitem__)
    for i, (src, dst, nbytes, at) in enumerate(sends):
        route = cluster.route(src, dst)
        call_at(env, at, lambda _, i=i, n=nbytes, r=route, t=at: net.send(i, n, r, t))
    env.run()
    return got, np.stack(net.hops(np.array([s[2] for s in sends]))[:3])


@st.composite
def timed_sends(draw):
    k = draw(st.integers(2, 6))
    latency = draw(st.lists(st.sampled_from([0.0, 0.1, 0.25, 1.0]), min_size=k, max_size=k))
    bandwidth = draw(st.lists(st.sampled_from([0.5, 1.0, 3.0]), min_size=k, max_size=k))
    pair = st.tuples(st.integers(0, k - 1), st.integers(0, k - 1)).filter(lambda p: p[0] != p[1])
    sends = draw(st.lists(st.tuples(pair, st.sampled_from([0.25, 1.0, 2.5]),
                                    st.integers(0, 8).map(lambda i: i * 0.25)), min_size=1, max_size=24))
    return star(latency, bandwidth), [(s, d, n, t) for (s, d), n, t in sends]


@settings(max_examples=200, deadline=None)
@given(timed_sends())
def test_incremental_equals_full_resolve_on_timed_sends(case):
    """Equal send times, equal sizes and equal bandwidths make many starts and ends
    coincide: the batched solves must still give the full re-solve's arrivals."""
    cluster, sends = case
    fast, fast_hops = arrivals(FairNetwork, cluster, sends)
    full, full_hops = arrivals(_FullFairNetwork, cluster, sends)
    assert fast.keys() == full.keys() == set(range(len(sends)))
    for e, t in full.items():
        assert fast[e] == pytest.approx(t, rel=TOL, abs=0)
    assert np.array_equal(fast_hops, full_hops)  # edges, channels, send times


def test_a_transfer_registered_ahead_of_its_start_yields_to_one_that_starts_first():
    """A (0 -> 2, latency 1.0 + 0.1) is sent at 0 onto idle channels; B (1 -> 2,
    latency 0.2) at 0.5 starts first, at 0.7, and has port 2 alone until A starts at
    1.1: B sends 0.4 alone, its 0.6 left at half rate ends at 2.3; A's 0.4 left after
    that at full rate ends at 2.7."""
    cluster = star([1.0, 0.1, 0.1], [1.0, 1.0, 1.0])
    got, _ = arrivals(FairNetwork, cluster, [(0, 2, 1.0, 0.0), (1, 2, 1.0, 0.5)])
    assert got[1] == pytest.approx(2.3, rel=1e-12)
    assert got[0] == pytest.approx(2.7, rel=1e-12)


def test_a_booking_made_during_an_alarm_on_a_channel_it_touched_waits_for_its_start():
    """Found by Hypothesis (tests/test_dgx1.py): in NCCL's six rings on the DGX-1 with a
    0.37 ns latency, an end touches a channel, and a transfer sent on during the same
    alarm finds that channel idle and is booked ahead of its start; the solve after the
    alarm must take the booking back (it once divided by the no flows left)."""
    cluster = mesh.dgx1(replicate(UNIT, 8), LinkSpec(3.7421054866540825e-10, 1e9))
    b = GraphBuilder()
    rings = mesh.rings(cluster, range(8))
    col.on_rings(col.ring_allreduce, b, rings, list(range(8)), 1000.0, [None] * 8, "c")
    assert_same_schedule(b.build(), cluster, "static")
