"""Compact run state (issue 14, item 3): the engine keeps its per-task and per-edge state
in flat columns, not Python numbers per task, and its records become the trace's
columns without copies; the graph's adjacency ids are int32."""

from __future__ import annotations

import tracemalloc

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.generators import TaskCost, layered
from leptonsim.graph import TaskGraph
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.sim import simulate
from leptonsim.trace import Trace, busy_seconds, mirror_units, spread_to_groups

UNITS = 8


def _alternating(n: int) -> tuple[TaskGraph, object]:
    """The engine benchmark's workload: layers alternate between two halves of the
    units, so every edge is a transfer."""
    g = layered(n, 50, 2, TaskCost(flops=1e9, nbytes=1e7, spread=0.5), edge_bytes=2.5e5, seed=1)
    t = np.arange(n)
    g.pin[:] = (t // 50 % 2) * (UNITS // 2) + t % 50 % (UNITS // 2)
    cluster = fully_connected(replicate(ComputeUnit("gpu", 100e12, 2e12), UNITS, "gpu"),
                              LinkSpec(latency_s=2e-6, bandwidth=25e9))
    return g, cluster


def test_a_run_allocates_under_200_bytes_per_task_besides_the_graph():
    """Per task: the plan (8 + 8 bytes), task times (8), run state (21), the records of
    the task and its two transfers (56) and the trace's derived columns (80), about
    180 bytes; Python lists of numbers took over 600. So this fails if per-task state
    goes back to Python objects."""
    n = 20_000
    graph, cluster = _alternating(n)
    _ = graph.successors, graph.in_degree  # the graph's own, before the count
    tracemalloc.start()
    try:
        trace = simulate(graph, cluster, "static")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(trace.task) == n and len(trace.xfer_channel) == graph.num_edges
    assert peak / n < 200, f"{peak / n:.0f} bytes per task"


def test_the_trace_shares_the_records_memory():
    """Task ids and starts are the engine's columns, allocated once and filled by index
    (the arrays themselves, no view of a copy); the hops' channels and starts are views
    of the network's record buffers (np.frombuffer, strided for the packed channels)."""
    graph, cluster = _alternating(2_000)
    trace = simulate(graph, cluster, "static")
    for col in (trace.task, trace.task_start):
        assert col.base is None and col.flags.owndata and len(col) == graph.size

    def root(col: np.ndarray) -> object:
        while isinstance(col.base, np.ndarray):
            col = col.base
        return col.base
    for col in (trace.xfer_start, trace.xfer_channel):
        assert root(col) is not None and not isinstance(root(col), np.ndarray)
    assert trace.xfer_channel.dtype == np.int32
    # the derived columns agree with the graph they came from
    assert np.all(trace.xfer_bytes > 0)
    assert np.all(graph.pin[trace.xfer_src_task] != graph.pin[trace.xfer_dst_task])


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 40), st.lists(st.tuples(st.integers(0, 39), st.integers(0, 39)),
                                    max_size=120))
def test_int32_adjacency_lists_every_edge_once_in_insertion_order(n, pairs):
    """The CSR of out- and in-edges (edge ids as int32) holds, per task, exactly the
    ids of its edges, in increasing order (a DAG: edges go from lower to higher ids)."""
    pairs = [(min(a % n, b % n), max(a % n, b % n)) for a, b in pairs if a % n != b % n]
    src = np.array([a for a, _ in pairs], np.int64)
    dst = np.array([b for _, b in pairs], np.int64)
    g = TaskGraph([f"t{i}" for i in range(n)], np.zeros(n), np.zeros(n), np.ones(n),
                  np.full(n, -1), src, dst, np.zeros(len(pairs)))
    for (ptr, eids), key in ((g.successors, src), (g.predecessors, dst)):
        assert eids.dtype == np.int32 and ptr[-1] == len(pairs)
        for t in range(n):
            assert eids[ptr[t]:ptr[t + 1]].tolist() == np.flatnonzero(key == t).tolist()
    assert g.in_degree.tolist() == np.bincount(dst, minlength=n).tolist()
    assert sorted(np.concatenate(g.levels).tolist()) == list(range(n))


def test_default_kernels_are_one_each_and_read_only():
    g, _ = _alternating(100)
    assert g.kernels.tolist() == [1] * 100
    assert not g.kernels.flags.writeable


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 4), st.integers(1, 4), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_spread_to_groups_equals_the_mirrored_rows_sums_bit_for_bit(reps, size, rows, seed):
    """Per unit, busy seconds and task counts spread from the simulated units to their
    groups equal those summed over mirror_units' copied rows, exactly (what metrics and
    energy used to compute from 258 million rows at 16,384 GPUs)."""
    rng = np.random.default_rng(seed)
    units = reps * size + 1   # the last unit simulated alone, in no group
    groups = {r * size: tuple(range(r * size, (r + 1) * size)) for r in range(reps)}
    sim_units = np.array([*groups, units - 1])
    start = rng.uniform(0, 1, rows)
    trace = Trace([f"t{i}" for i in range(rows)], ["k"] * rows, [f"u{i}" for i in range(units)],
                  [], np.arange(rows), rng.choice(sim_units, rows), start,
                  start + rng.uniform(0, 1, rows), *[np.zeros(0)] * 6)
    comm = rng.random(rows) < 0.3
    mirrored = mirror_units(trace, groups)
    assert spread_to_groups(busy_seconds(trace, units, comm), groups).tolist() == \
        busy_seconds(mirrored, units, comm).tolist()
    assert spread_to_groups(np.bincount(trace.task_unit, minlength=units), groups).tolist() == \
        np.bincount(mirrored.task_unit, minlength=units).tolist()
