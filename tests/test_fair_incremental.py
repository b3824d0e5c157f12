"""The incremental max-min solver (FairNetwork) against the full re-solve at every
start and end (_FullFairNetwork): the same schedules, on random graphs and platforms."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.generators import TaskCost, layered
from leptonsim.hardware import ComputeUnit, LinkSpec, replicate, switch
from leptonsim.sim import engine, simulate
from leptonsim.sim.fair import FairNetwork, _FullFairNetwork
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
