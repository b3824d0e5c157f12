"""Cut-through switching, NCCL's all-reduce algorithms and the links' bus efficiency
(issue 12: collectives as NCCL runs them; issue 14: cut-through by default)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, replicate, switch, two_level
from leptonsim.parallel import collectives as col
from leptonsim.parallel import nccl
from leptonsim.presets import link_presets
from leptonsim.quantities import parse_quantity
from leptonsim.scenario import ScenarioError, loads
from leptonsim.scenario.cluster import build_cluster
from leptonsim.scenario.validate import normalize
from leptonsim.sim import simulate
from tests.helpers.traces import check_trace_invariants

UNIT = ComputeUnit("u", 1e12, 1e12)
REL = 1e-12
sizes = st.floats(1.0, 1e9)
latencies = st.one_of(st.just(0.0), st.floats(1e-9, 1e-3))
bandwidths = st.floats(1e6, 1e11)
efficiencies = st.floats(0.05, 1.0)


def _nvswitch(p: int, preset: str):
    """p units behind one switch, every link the preset, built as a scenario builds it."""
    hw = normalize({"topology": "switch", "units": [{"name": "gpu", "count": p, "peak": "1 PFLOP/s",
                                                      "memory_bandwidth": "2 TB/s"}],
                    "link": {"preset": preset}}, "hardware")
    return build_cluster(hw)


def _ring_allreduce(p: int, nbytes: float) -> tuple:
    b = GraphBuilder()
    col.ring_allreduce(b, list(range(p)), nbytes, [None] * p, "ar")
    return b.build()


def test_the_nvswitch_all_reduce_of_the_issue_is_its_closed_form():
    """Issue 12, cause 4: a tensor-parallel all-reduce of 100.7 MB on 8 GPUs over NVSwitch
    cost twice its closed form. Cut-through, it is 2(p-1)/p n / (B x bus_efficiency) plus
    2(p-1) route latencies (two hops each); store-and-forward keeps the per-hop sum."""
    p, n = 8, 100.7e6
    link = link_presets()["nvlink3"]
    alpha, bw = parse_quantity(link["latency"], "time"), parse_quantity(link["bandwidth"], "bandwidth")
    rate = bw * link["bus_efficiency"]
    cluster, graph = _nvswitch(p, "nvlink3"), _ring_allreduce(p, n)
    cut = simulate(graph, cluster, "static").makespan_s
    closed = 2 * (p - 1) * (2 * alpha) + 2 * (p - 1) / p * n / rate
    assert cut == pytest.approx(closed, rel=REL)
    per_hop = 2 * (p - 1) * 2 * (alpha + (n / p) / rate)
    sf = simulate(graph, cluster, "static", network="store_and_forward").makespan_s
    assert sf == pytest.approx(per_hop, rel=REL)
    assert sf > 1.9 * cut  # the issue's factor of two, less the latencies
    # symmetric mode's collapsed ring is the same figure, for either network
    assert nccl.allreduce_seconds(nccl.group(cluster, range(p)), "ring", n) == pytest.approx(cut, rel=REL)
    assert nccl.allreduce_seconds(nccl.group(cluster, range(p), cut_through=False), "ring", n) \
        == pytest.approx(sf, rel=REL)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["ring_allreduce", "ring_reduce_scatter", "ring_allgather"]),
       st.integers(1, 12), sizes, latencies, bandwidths, efficiencies)
def test_ring_collectives_through_a_switch_equal_the_cut_through_closed_form(name, p, n, alpha, bw, eff):
    """Every ring step crosses two links (unit, switch, unit) and no link direction carries
    two messages of a step: the closed form with the route's latency 2 alpha and the
    link's achievable bandwidth B x bus_efficiency, exactly."""
    b = GraphBuilder()
    getattr(col, name)(b, list(range(p)), n, [None] * p, "c")
    graph = b.build()
    cluster = switch(replicate(UNIT, p), LinkSpec(alpha, bw, bus_efficiency=eff))
    trace = simulate(graph, cluster, "static")
    check_trace_invariants(graph, trace)
    closed = getattr(formulas, f"{name}_time")(p, n, 2 * alpha, bw * eff)
    assert trace.makespan_s == pytest.approx(closed, rel=REL, abs=0)
    group = nccl.group(cluster, list(range(p)))
    collapsed = (nccl.allreduce_seconds(group, "ring", n) if name == "ring_allreduce"
                 else nccl.ring_seconds(group, n))
    assert collapsed == pytest.approx(closed, rel=REL, abs=0)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 4), sizes, latencies, bandwidths, latencies, bandwidths)
def test_hierarchical_where_nothing_contends_equals_its_cut_through_closed_form(m, g, n, a1, b1, a2, b2):
    """One unit per node (a ring over port, uplink, downlink, port) or one node (a ring
    over two ports): nothing contends, and the spelled-out hierarchical all-reduce takes
    formulas.hierarchical_allreduce_cut_through_seconds exactly."""
    if m > 1 and g > 1:
        g = 1
    groups = [[k * g + i for i in range(g)] for k in range(m)]
    b = GraphBuilder()
    col.hierarchical_allreduce(b, groups, n, [[None] * g for _ in groups], "h")
    graph = b.build()
    cluster = two_level(replicate(UNIT, m * g), g, LinkSpec(a1, b1), LinkSpec(a2, b2))
    trace = simulate(graph, cluster, "static")
    check_trace_invariants(graph, trace)
    closed = formulas.hierarchical_allreduce_cut_through_seconds(
        m, g, n, 2 * a1, b1, 2 * (a1 + a2), min(b1, b2))
    assert trace.makespan_s == pytest.approx(float(closed), rel=REL, abs=0)


# -- the algorithms and NCCL's choice -------------------------------------------------------

def _nodes(m: int, g: int, alpha: float, bw: float, inter: LinkSpec | None = None):
    intra = LinkSpec(alpha, bw)
    return two_level(replicate(UNIT, m * g), g, intra, inter or LinkSpec(alpha, bw / 4))


@settings(max_examples=60, deadline=None)
@given(st.integers(4, 64), st.floats(1e-7, 1e-4), bandwidths)
def test_tree_beats_ring_for_small_messages_on_many_nodes(m, alpha, bw):
    """The alpha-beta model: the double binary tree's 2 log2(m) latencies against the
    ring's 2(m-1) win below some size; the ring's 2(m-1)/m n/B against the tree's 2 n/B
    win above it. NCCL picks the tree for small all-reduces across many nodes."""
    group = nccl.group(_nodes(m, 1, alpha, bw), list(range(m)))
    small = 1e-3 * alpha * bw / 4  # the bandwidth terms a thousandth of one latency
    assert nccl.allreduce_seconds(group, "tree", small) < nccl.allreduce_seconds(group, "ring", small)
    assert nccl.choose(group, small) == "tree"
    big = 1e6 * alpha * bw * m
    assert nccl.allreduce_seconds(group, "ring", big) < nccl.allreduce_seconds(group, "tree", big)
    assert nccl.choose(group, big) != "tree"


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 16), sizes, latencies, bandwidths)
def test_nvls_moves_each_byte_once_each_way(p, n, alpha, bw):
    """In-switch reduction: each port direction carries n + n/p bytes once, one round
    trip through the switch; it needs links that say in_network_reduction."""
    plain = switch(replicate(UNIT, p), LinkSpec(alpha, bw))
    assert "nvls" not in nccl.candidates(nccl.group(plain, list(range(p))))
    reducing = switch(replicate(UNIT, p), LinkSpec(alpha, bw, in_network_reduction=True))
    group = nccl.group(reducing, list(range(p)))
    assert "nvls" in nccl.candidates(group)
    t = nccl.allreduce_seconds(group, "nvls", n)
    assert t == pytest.approx(2 * (2 * alpha) + (n + n / p) / bw, rel=REL)
    ring = nccl.allreduce_seconds(group, "ring", n)
    # bandwidth terms: (p+1)/p against 2(p-1)/p: fewer bytes from 4 ranks on, equal at 3
    if p >= 4:
        assert (t - 4 * alpha) < (ring - 2 * (p - 1) * 2 * alpha) * (1 + 1e-12)
    with pytest.raises(ValueError, match="does not apply"):
        nccl.allreduce_seconds(nccl.group(plain, list(range(p))), "nvls", n)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(1, 8), sizes, latencies, bandwidths, st.booleans(),
       st.booleans())
def test_auto_is_the_fastest_applicable_algorithm(m, g, n, alpha, bw, reduce_intra, reduce_inter):
    cluster = two_level(replicate(UNIT, m * g), g, LinkSpec(alpha, bw, in_network_reduction=reduce_intra),
                        LinkSpec(alpha, bw / 2, in_network_reduction=reduce_inter))
    group = nccl.group(cluster, list(range(m * g)))
    options = nccl.candidates(group)
    assert options[0] == "ring" and len(set(options)) == len(options)
    assert ("hierarchical" in options) == (m > 1 and g > 1)
    best = nccl.choose(group, n)
    times = [nccl.allreduce_seconds(group, a, n) for a in options]
    assert nccl.allreduce_seconds(group, best, n) == min(times)
    assert nccl.candidates(nccl.group(cluster, list(range(m * g)), cut_through=False)) == ["ring"]


def test_the_in_network_flags_follow_the_presets():
    """NVLink 4 (Hopper's NVSwitch) reduces in the switch, NVLink 3 does not; an 8-GPU
    NVLink 4 all-reduce of 100 MB runs NVLS and beats the ring."""
    for preset, nvls in (("nvlink3", False), ("nvlink4", True)):
        group = nccl.group(_nvswitch(8, preset), list(range(8)))
        assert ("nvls" in nccl.candidates(group)) is nvls
    group = nccl.group(_nvswitch(8, "nvlink4"), list(range(8)))
    assert nccl.choose(group, 100e6) == "nvls"


def _scenario(tp_mode: str, collective: str, link: str = "nvlink4") -> str:
    return f"""
[scenario]
name = "c"
[hardware]
topology = "switch"
[[hardware.units]]
name = "gpu"
count = 4
preset = "a100_80gb"
[hardware.link]
preset = "{link}"
[workload.model]
name = "bert_base"
batch = 8
[parallel]
tp = 4
tp_mode = "{tp_mode}"
collective = "{collective}"
"""


def test_collective_key_reaches_the_step_and_its_refusals_are_one_line():
    from leptonsim.result import run
    times = {c: run(loads(_scenario("symmetric", c))[0]).metrics.makespan_s
             for c in ("ring", "tree", "nvls", "auto")}
    assert times["auto"] == min(times.values())
    assert times["nvls"] < times["ring"]
    with pytest.raises(ScenarioError, match="needs tp_mode = 'symmetric'") as err:
        loads(_scenario("full", "tree"))
    assert "\n" not in str(err.value)
    with pytest.raises(ScenarioError, match="does not apply") as err:
        loads(_scenario("symmetric", "nvls", link="nvlink3"))
    assert "\n" not in str(err.value)


def test_bus_efficiency_is_checked_and_scales_the_channels():
    with pytest.raises(ValueError, match="bus efficiency"):
        LinkSpec(1e-6, 1e9, bus_efficiency=0.0)
    cluster = switch(replicate(UNIT, 2), LinkSpec(1e-6, 1e9, bus_efficiency=0.5))
    assert {c.bandwidth for c in cluster.channels} == {0.5e9}
    assert cluster.transfer_time(1e6, 0, 1) == pytest.approx(2e-6 + 1e6 / 0.5e9, rel=REL)
    assert cluster.transfer_time(1e6, 0, 1, cut_through=False) == pytest.approx(
        2 * (1e-6 + 1e6 / 0.5e9), rel=REL)
    assert math.isinf(nccl.group(cluster, [0]).intra[1])
    assert np.all(nccl.group(cluster, [0, 1]).ring_gap > 0)


def _two_nodes(tp_mode: str, collective: str, per_node: int) -> str:
    return f"""
[scenario]
name = "h"
[hardware]
topology = "two_level"
[[hardware.units]]
name = "gpu"
count = 4
preset = "a100_80gb"
[hardware.two_level]
units_per_node = {per_node}
intra = {{ preset = "nvlink3" }}
inter = {{ preset = "infiniband_hdr" }}
[workload.model]
name = "bert_base"
batch = 8
[parallel]
tp = 4
tp_mode = "{tp_mode}"
collective = "{collective}"
"""


def test_a_hierarchical_tensor_parallel_all_reduce_is_spelled_out_across_nodes():
    """tp 4 over two nodes of two: full mode spells the hierarchical all-reduce out as
    transfers (its kind in the graph), symmetric mode collapses it; on one node it is
    refused, there being no inter-node phase."""
    from leptonsim.result import run
    (full,) = loads(_two_nodes("full", "hierarchical", 2))
    kinds = set(full.graph.kinds)
    assert "hierarchical_allreduce" in kinds and "ring_allreduce" not in kinds
    check_trace_invariants(full.graph, run(full).trace)
    (ring,) = loads(_two_nodes("full", "ring", 2))
    assert "hierarchical_allreduce" not in set(ring.graph.kinds)
    (sym,) = loads(_two_nodes("symmetric", "hierarchical", 2))
    assert run(sym).metrics.makespan_s > 0
    with pytest.raises(ScenarioError, match="does not apply"):
        loads(_two_nodes("full", "hierarchical", 4))
