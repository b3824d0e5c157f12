"""Collectives as point-to-point transfers: closed forms, dependencies, volumes (issue 3)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.graph import GraphBuilder, TaskGraph
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate, ring, two_level
from leptonsim.parallel import collectives as col
from leptonsim.sim import simulate
from tests.helpers.traces import check_trace_invariants

UNIT = ComputeUnit("u", 1e12, 1e12)
REL = 1e-12
sizes = st.floats(1.0, 1e9)
latencies = st.one_of(st.just(0.0), st.floats(1e-9, 1e-3))
bandwidths = st.floats(1e6, 1e11)

# name -> (builder, closed form, bytes each rank sends / n)
FLAT = {
    "ring_allreduce": (col.ring_allreduce, formulas.ring_allreduce_time, lambda p: 2 * (p - 1) / p),
    "ring_reduce_scatter": (col.ring_reduce_scatter, formulas.ring_reduce_scatter_time,
                            lambda p: (p - 1) / p),
    "ring_allgather": (col.ring_allgather, formulas.ring_allgather_time, lambda p: (p - 1) / p),
    "halving_doubling_allreduce": (col.halving_doubling_allreduce,
                                   formulas.halving_doubling_allreduce_time, lambda p: 2 * (p - 1) / p),
    "all_to_all": (col.all_to_all, formulas.all_to_all_time, lambda p: (p - 1) / p),
}
RINGS = ["ring_allreduce", "ring_reduce_scatter", "ring_allgather"]
POW2 = st.sampled_from([1, 2, 4, 8, 16])


def ranks_for(name: str):
    return POW2 if name == "halving_doubling_allreduce" else st.integers(1, 12)


def build(name: str, p: int, nbytes: float, durations=None):
    b = GraphBuilder()
    ready = ([None] * p if durations is None else
             [b.task(f"in{i}", duration_s=d, pin=i) for i, d in enumerate(durations)])
    done = FLAT[name][0](b, list(range(p)), nbytes, ready, "c")
    return b.build(), ready, done


def build_hier(m: int, g: int, nbytes: float, with_ready: bool = False):
    b = GraphBuilder()
    groups = [[k * g + loc for loc in range(g)] for k in range(m)]
    ready = [[b.task(f"in{u}", duration_s=0.0, pin=u) if with_ready else None for u in grp]
             for grp in groups]
    done = col.hierarchical_allreduce(b, groups, nbytes, ready, "h")
    return b.build(), ready, done


def ancestors(graph: TaskGraph, task: int) -> set[int]:
    seen, stack = {task}, [task]
    while stack:
        t = stack.pop()
        for s in graph.edge_src[graph.edge_dst == t].tolist():
            if s not in seen:
                seen.add(s)
                stack.append(s)
    return seen


def bytes_sent_per_unit(graph: TaskGraph, trace, size: int) -> np.ndarray:
    """Each transfer counted once (not per hop), charged to its sender's unit."""
    sent = np.zeros(size)
    pairs = {(s, d): n for s, d, n in zip(trace.xfer_src_task.tolist(), trace.xfer_dst_task.tolist(),
                                          trace.xfer_bytes.tolist(), strict=True)}
    for (s, _), n in pairs.items():
        sent[graph.pin[s]] += n
    return sent


# -- closed forms where nothing contends ---------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(RINGS), st.sampled_from(["ring", "full"]), st.integers(1, 12), sizes,
       latencies, bandwidths)
def test_ring_collectives_equal_closed_form(name, topo, p, n, alpha, bw):
    make = ring if topo == "ring" else fully_connected
    graph, _, _ = build(name, p, n)
    trace = simulate(graph, make(replicate(UNIT, p), LinkSpec(alpha, bw)), "static")
    assert trace.makespan_s == pytest.approx(FLAT[name][1](p, n, alpha, bw), rel=REL, abs=0)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["halving_doubling_allreduce", "all_to_all"]), st.data(), sizes,
       latencies, bandwidths)
def test_direct_collectives_equal_closed_form_on_fully_connected(name, data, n, alpha, bw):
    p = data.draw(ranks_for(name))
    graph, _, _ = build(name, p, n)
    trace = simulate(graph, fully_connected(replicate(UNIT, p), LinkSpec(alpha, bw)), "static")
    assert trace.makespan_s == pytest.approx(FLAT[name][1](p, n, alpha, bw), rel=REL, abs=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), sizes, latencies, bandwidths, latencies, bandwidths)
def test_hierarchical_with_one_unit_per_node_is_a_ring_over_four_hops(m, n, a1, b1, a2, b2):
    """Nothing contends: each inter step is port, uplink, downlink, port (the formula
    is store-and-forward's)."""
    graph, _, _ = build_hier(m, 1, n)
    trace = simulate(graph, two_level(replicate(UNIT, m), 1, LinkSpec(a1, b1), LinkSpec(a2, b2)),
                     "static", network="store_and_forward")
    ring_form = formulas.ring_allreduce_time(m, n, 2 * (a1 + a2), 1 / (2 / b1 + 2 / b2))
    expected = formulas.hierarchical_allreduce_time(m, 1, n, a1, b1, a2, b2)
    assert trace.makespan_s == pytest.approx(expected, rel=1e-9)
    assert expected == pytest.approx(ring_form, rel=1e-9)


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), sizes, latencies, bandwidths, latencies, bandwidths)
def test_hierarchical_equals_contended_closed_form_in_its_regime(m, g, n, a1, b1, a2, b2):
    """Exact when g = 1, m = 1 or (g-1) beta <= delta (see the formula); else a lower
    bound. The formula is store-and-forward's, and so is the network here."""
    graph, _, _ = build_hier(m, g, n)
    cluster = two_level(replicate(UNIT, m * g), g, LinkSpec(a1, b1), LinkSpec(a2, b2))
    trace = simulate(graph, cluster, "static", network="store_and_forward")
    check_trace_invariants(graph, trace)
    expected = formulas.hierarchical_allreduce_time(m, g, n, a1, b1, a2, b2)
    beta, delta = a2 + n / g / m / b2, a1 + n / g / b1
    if g == 1 or m == 1 or (g - 1) * beta <= delta:
        assert trace.makespan_s == pytest.approx(expected, rel=1e-9)
    else:
        assert trace.makespan_s >= expected * (1 - 1e-9)


# -- structure: dependencies, volumes, invariants --------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FLAT)), st.data())
def test_every_rank_result_depends_on_every_rank_input(name, data):
    """Every rank's output needs every rank's input: all-reduce and reduce-scatter sum
    all inputs, an all-gather result holds every rank's piece, and all-to-all delivers
    a piece from each rank. So the right subset is all ranks, for all of them."""
    p = data.draw(ranks_for(name))
    b = GraphBuilder()
    ready = [b.task(f"in{i}", duration_s=0.0, pin=i) for i in range(p)]
    done = FLAT[name][0](b, list(range(p)), 1e6, ready, "c")
    graph = b.build()
    for i, d in enumerate(done):
        assert graph.pin[d] == i
        assert set(ready) <= ancestors(graph, d)
    extra = range(p, graph.size)
    assert all(graph.kinds[t] == name and graph.names[t].startswith("c.") for t in extra)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4))
def test_hierarchical_result_depends_on_every_input(m, g):
    graph, ready, done = build_hier(m, g, 1e6, with_ready=True)
    inputs = {r for grp in ready for r in grp}
    for k, grp in enumerate(done):
        for loc, d in enumerate(grp):
            assert graph.pin[d] == k * g + loc
            assert inputs <= ancestors(graph, d)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FLAT)), st.data(), sizes, latencies, bandwidths)
def test_trace_invariants_and_textbook_volume(name, data, n, alpha, bw):
    p = data.draw(ranks_for(name))
    graph, _, _ = build(name, p, n)
    trace = simulate(graph, fully_connected(replicate(UNIT, p), LinkSpec(alpha, bw)), "static")
    check_trace_invariants(graph, trace)
    sent = bytes_sent_per_unit(graph, trace, p)
    assert sent == pytest.approx(np.full(p, FLAT[name][2](p) * n), rel=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), sizes)
def test_hierarchical_volume_per_rank(m, g, n):
    graph, _, _ = build_hier(m, g, n)
    cluster = two_level(replicate(UNIT, m * g), g, LinkSpec(1e-6, 1e10), LinkSpec(1e-5, 1e9))
    sent = bytes_sent_per_unit(graph, simulate(graph, cluster, "static"), m * g)
    intra, inter = 2 * (g - 1) / g * n, 2 * (m - 1) / m * (n / g)
    assert sent == pytest.approx(np.full(m * g, intra + inter), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(sorted(FLAT)), st.data(), latencies, bandwidths)
def test_no_rank_starts_before_its_input_is_ready(name, data, alpha, bw):
    p = data.draw(ranks_for(name))
    durations = data.draw(st.lists(st.floats(0, 1.0), min_size=p, max_size=p))
    graph, ready, _ = build(name, p, 1e6, durations)
    trace = simulate(graph, fully_connected(replicate(UNIT, p), LinkSpec(alpha, bw)), "static")
    check_trace_invariants(graph, trace)
    end = dict(zip(trace.task.tolist(), trace.task_end.tolist(), strict=True))
    start = dict(zip(trace.task.tolist(), trace.task_start.tolist(), strict=True))
    for t in range(p, graph.size):
        assert start[t] >= end[ready[graph.pin[t]]]
    for s, x in zip(trace.xfer_src_task.tolist(), trace.xfer_start.tolist(), strict=True):
        assert x >= end[ready[graph.pin[s]]]
    if p > 1:
        assert trace.makespan_s > max(durations)


# -- small cases and bad input ------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FLAT))
def test_one_rank_returns_ready_and_moves_nothing(name):
    b = GraphBuilder()
    r = b.task("in", duration_s=1.0, pin=0)
    assert FLAT[name][0](b, [0], 1e6, [r], "c") == [r]
    assert b.build().num_edges == 0
    done = FLAT[name][0](b, [0], 1e6, [None], "d")
    graph = b.build()
    assert len(done) == 1 and graph.size == 2 and graph.num_edges == 0
    assert FLAT[name][1](1, 1e6, 1e-6, 1e9) == 0.0


def test_bad_input_is_rejected():
    b = GraphBuilder()
    with pytest.raises(ValueError, match="power-of-two"):
        col.halving_doubling_allreduce(b, [0, 1, 2], 1.0, [None] * 3, "c")
    with pytest.raises(ValueError, match="power of two"):
        formulas.halving_doubling_allreduce_time(6, 1.0, 0.0, 1.0)
    with pytest.raises(ValueError, match="ready has 1 entries for 2 ranks"):
        col.ring_allreduce(b, [0, 1], 1.0, [None], "c")
    with pytest.raises(ValueError, match="distinct"):
        col.all_to_all(b, [0, 0], 1.0, [None, None], "c")
    with pytest.raises(ValueError, match="equal size"):
        col.hierarchical_allreduce(b, [[0, 1], [2]], 1.0, [[None, None], [None]], "c")
    with pytest.raises(ValueError, match="nbytes"):
        col.ring_allgather(b, [0, 1], -1.0, [None, None], "c")


def test_hierarchical_formula_reduces_to_rings():
    """m = 1: an intra ring all-reduce over two-hop routes; g = 1: a ring over four hops."""
    one_node = formulas.hierarchical_allreduce_time(1, 4, 8e6, 1e-6, 1e10, 5e-6, 1e9)
    assert one_node == pytest.approx(formulas.ring_allreduce_time(4, 8e6, 2e-6, 0.5e10), rel=1e-12)
    one_each = formulas.hierarchical_allreduce_time(3, 1, 8e6, 1e-6, 1e10, 5e-6, 1e9)
    assert one_each == pytest.approx(
        formulas.ring_allreduce_time(3, 8e6, 12e-6, 1 / (2e-10 + 2e-9)), rel=1e-12)
