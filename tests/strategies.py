"""Hypothesis strategies shared by the property tests: random DAGs and clusters."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from leptonsim.generators import TaskCost, chain, fork_join, independent, layered
from leptonsim.graph import TaskGraph
from leptonsim.hardware import (
    Cluster,
    ComputeUnit,
    LinkSpec,
    fully_connected,
    replicate,
    ring,
    switch,
    two_level,
)

efficiencies = st.floats(0.05, 1.0)


@st.composite
def graphs(draw, fixed: bool | None = None, edge_bytes: bool = True) -> TaskGraph:
    shape = draw(st.sampled_from(["independent", "chain", "fork_join", "layered"]))
    is_fixed = draw(st.booleans()) if fixed is None else fixed
    cost = (TaskCost(duration_s=draw(st.floats(0.001, 10.0)), spread=draw(st.floats(0, 0.9)))
            if is_fixed else
            TaskCost(flops=draw(st.floats(1e6, 1e10)), nbytes=draw(st.floats(0, 1e8)),
                     spread=draw(st.floats(0, 0.9))))
    nbytes = draw(st.floats(0, 1e8)) if edge_bytes else 0.0
    seed = draw(st.integers(0, 2**16))
    n = draw(st.integers(1, 60))
    if shape == "independent":
        return independent(n, cost, seed)
    if shape == "chain":
        return chain(n, cost, nbytes, seed)
    if shape == "fork_join":
        return fork_join(draw(st.integers(1, 8)), draw(st.integers(1, 4)), cost, nbytes, seed)
    return layered(n, draw(st.integers(1, 10)), draw(st.integers(1, 4)), cost, nbytes, seed)


@st.composite
def units(draw, count: int, identical: bool = False) -> tuple[ComputeUnit, ...]:
    def one(i: int) -> ComputeUnit:
        return ComputeUnit(f"u{i}", peak_flops=draw(st.floats(1e9, 1e13)),
                           memory_bandwidth=draw(st.floats(1e9, 1e12)),
                           efficiency=draw(efficiencies), overhead_s=draw(st.floats(0, 1e-3)))
    if identical:
        return replicate(one(0), count, "u")
    return tuple(one(i) for i in range(count))


@st.composite
def clusters(draw, identical: bool = False, max_units: int = 8) -> Cluster:
    n = draw(st.integers(1, max_units))
    us = draw(units(n, identical))
    spec = LinkSpec(latency_s=draw(st.floats(0, 1e-3)), bandwidth=draw(st.floats(1e8, 1e11)),
                    duplex=draw(st.booleans()))
    topo = draw(st.sampled_from(["full", "ring", "switch", "two_level"]))
    if topo == "ring":
        return ring(us, spec)
    if topo == "switch":
        return switch(us, spec)
    if topo == "two_level":
        per = draw(st.sampled_from([d for d in range(1, n + 1) if n % d == 0]))
        return two_level(us, per, spec, LinkSpec(spec.latency_s * 2, spec.bandwidth / 4))
    return fully_connected(us, spec)


def pin_randomly(graph: TaskGraph, size: int, seed: int) -> TaskGraph:
    rng = np.random.default_rng(seed)
    graph.pin[:] = rng.integers(0, size, graph.size)
    return graph
