"""The DGX-1's NVLink hybrid cube mesh (topology = "dgx1") and NCCL's rings over it
(issue 12): the white paper's links, 2-hop routes through a peer GPU, rings that use
only adjacent pairs, and their closed forms."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import leptonsim as ls
from leptonsim import formulas, mesh
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, replicate, switch
from leptonsim.parallel import collectives as col
from leptonsim.parallel import nccl
from leptonsim.sim import simulate
from tests.helpers.scenarios import refused

UNITS = replicate(ComputeUnit("gpu", 1e12, 1e12), 8)
REL = 1e-9
sizes = st.floats(1e3, 1e9)
latencies = st.floats(0.0, 1e-4)
bandwidths = st.floats(1e9, 1e12)


def cube(latency: float = 2e-6, bandwidth: float = 150e9):
    return mesh.dgx1(UNITS, LinkSpec(latency, bandwidth))


def pairs(order: list[int]) -> list[tuple[int, int]]:
    return list(zip(order, [*order[1:], order[0]], strict=True))


def allreduce_s(cluster, orders, nbytes: float, network: str = "fifo") -> float:
    b = GraphBuilder()
    col.on_rings(col.ring_allreduce, b, orders, list(range(8)), nbytes, [None] * 8, "c")
    return simulate(b.build(), cluster, "static", network=network).makespan_s


def test_the_links_are_the_white_papers_six_bricks_per_gpu() -> None:
    bricks = Counter()
    for a, b, k in mesh.DGX1_NVLINKS:
        bricks[a] += k
        bricks[b] += k
    assert bricks == {g: mesh.BRICKS_PER_GPU for g in range(8)}
    assert len(mesh.DGX1_NVLINKS) == 16 and sum(k for *_, k in mesh.DGX1_NVLINKS) == 24
    c = cube(bandwidth=150e9)
    rate = {(lk.a, lk.b): lk.spec.bandwidth for lk in c.links}
    assert rate[("gpu0", "gpu3")] == pytest.approx(50e9) and rate[("gpu0", "gpu1")] == pytest.approx(25e9)


def test_pairs_that_are_not_adjacent_go_through_a_gpu_adjacent_to_both() -> None:
    c = cube()
    adjacent = {frozenset((a, b)) for a, b, _ in mesh.DGX1_NVLINKS}
    far = 0
    for i in range(8):
        for j in range(8):
            if i == j:
                continue
            route = c.route(i, j)
            assert len(route) == (1 if frozenset((i, j)) in adjacent else 2)
            if len(route) == 2:
                far += 1
                via = c.node_index[c.links[c.channels[route[0]].link].b
                                   if c.links[c.channels[route[0]].link].a == f"gpu{i}"
                                   else c.links[c.channels[route[0]].link].a]
                assert via < 8 and {frozenset((i, via)), frozenset((via, j))} <= adjacent
    assert far == 8 * 3  # each GPU has 3 of 7 peers over SYS (nvidia-smi topo -m)


def test_ncclss_rings_on_eight_gpus_use_every_brick_once_each_way() -> None:
    c = cube()
    orders = mesh.rings(c, range(8))
    assert len(orders) == 6  # 3 Hamiltonian cycles x 2 directions: 6 channels of 1 brick
    adjacent = {frozenset((a, b)): k for a, b, k in mesh.DGX1_NVLINKS}
    used = Counter(hop for order in orders for hop in pairs(order))
    for order in orders:
        assert sorted(order) == list(range(8)) and order[0] == 0
        assert all(frozenset(hop) in adjacent for hop in pairs(order))
    for (a, b), k in used.items():
        assert k == adjacent[frozenset((a, b))]  # each brick carries one ring per direction


def test_a_subgroup_rings_over_its_own_links_and_other_topologies_keep_one_ring() -> None:
    c = cube()
    quad = mesh.rings(c, [0, 1, 2, 3])
    assert len(quad) == 4 and all(sorted(o) == [0, 1, 2, 3] for o in quad)
    assert mesh.rings(c, [0, 5]) == [[0, 5]]
    star = switch(UNITS, LinkSpec(2e-6, 150e9))
    assert mesh.rings(star, range(8)) == [list(range(8))]
    b1, b2 = GraphBuilder(), GraphBuilder()
    one = col.on_rings(col.ring_allreduce, b1, [list(range(8))], list(range(8)), 1e6,
                       [None] * 8, "c")
    two = col.ring_allreduce(b2, list(range(8)), 1e6, [None] * 8, "c")
    assert one == two and b1.build().size == b2.build().size


@settings(max_examples=25, deadline=None)
@given(n=sizes, alpha=latencies, bw=bandwidths, which=st.integers(0, 5))
def test_an_uncontended_ring_over_the_mesh_equals_the_closed_form(n, alpha, bw, which) -> None:
    """Theorem: one ring round adjacent pairs meets no other traffic, so its simulated
    time is 2(p-1) alpha + 2(p-1)/p n / B, B its slowest pair (bricks x bw / 6)."""
    c = cube(alpha, bw)
    order = mesh.rings(c, range(8))[which]
    bricks = {frozenset((a, b)): k for a, b, k in mesh.DGX1_NVLINKS}
    slowest = min(bricks[frozenset(hop)] for hop in pairs(order)) * bw / mesh.BRICKS_PER_GPU
    expected = formulas.ring_allreduce_seconds(8, n, alpha, slowest)
    assert allreduce_s(c, [order], n) == pytest.approx(expected, rel=REL)


@settings(max_examples=25, deadline=None)
@given(n=sizes, alpha=latencies, bw=bandwidths)
def test_ncclss_six_rings_share_the_mesh_as_six_one_brick_rings(n, alpha, bw) -> None:
    """Theorem: under max-min fair sharing the 6 rings, n/6 bytes each, run at a brick
    each (two rings share a two-brick pair's direction), so the all-reduce takes the
    closed form of n/6 at bw/6, and NCCL's closed form (nccl.group) says the same."""
    c = cube(alpha, bw)
    expected = formulas.ring_allreduce_seconds(8, n / 6, alpha, bw / mesh.BRICKS_PER_GPU)
    assert allreduce_s(c, mesh.rings(c, range(8)), n, "fair") == pytest.approx(expected, rel=REL)
    g = nccl.group(c, list(range(8)))
    assert nccl.allreduce_seconds(g, "ring", n) == pytest.approx(expected, rel=REL)


def test_the_rank_order_ring_would_cross_non_adjacent_pairs_and_be_slower() -> None:
    c = cube()
    assert allreduce_s(c, [list(range(8))], 1e8) > 5 * allreduce_s(c, mesh.rings(c, range(8)), 1e8)


def test_an_all_to_all_is_slower_on_the_mesh_than_on_a_switch_of_the_same_nvlink() -> None:
    spec = LinkSpec(2e-6, 150e9)
    times = []
    for cluster in (mesh.dgx1(UNITS, spec), switch(UNITS, spec)):
        b = GraphBuilder()
        col.all_to_all(b, list(range(8)), 8e8, [None] * 8, "a2a")
        times.append(simulate(b.build(), cluster, "static").makespan_s)
    assert times[0] > 1.5 * times[1]


def test_the_topology_key_builds_the_mesh_from_the_nvlink2_preset() -> None:
    hw = ls.cluster("v100", 8, link="nvlink2", topology="dgx1")
    c = hw.cluster
    assert c.mesh == mesh.DGX1_NVLINKS and len(c.links) == 16 and not c.switches
    preset = LinkSpec(2e-6, 150e9)  # nvlink2: 150 GB/s per direction, bus efficiency 0.78
    assert c.channels[0].bandwidth == pytest.approx(preset.bandwidth / 6 * 0.78)


def test_a_mesh_of_other_than_eight_units_is_refused_in_one_line(tmp_path, capsys) -> None:
    text = """
[scenario]
name = "m"
[hardware]
topology = "dgx1"
[[hardware.units]]
name = "gpu"
count = 4
preset = "v100"
[hardware.link]
preset = "nvlink2"
[workload.generator]
kind = "independent"
tasks = 4
duration = "1 s"
"""
    refused(tmp_path, capsys, text, "hardware.units", "8 units")


# -- DLRM's sparse SGD step (ops/sparse_update.py) -----------------------------------------

def table(vocab: int, sparse: bool = True):
    from leptonsim.ops import Embedding
    return Embedding(vocab, 128, pooling="sum", sparse_update=sparse, table_bytes=4)


@settings(max_examples=40, deadline=None)
@given(batch=st.integers(1, 1 << 17), lookups=st.integers(1, 4), vocab=st.integers(1, 10**8))
def test_the_sparse_sgd_step_moves_a_row_per_lookup_whatever_the_table(batch, lookups, vocab):
    """Theorem: uncoalesced, the step's bytes are 3 fp32 passes over the values and a
    gathered row read and written per lookup (duplicates included), whatever the vocab;
    mixed precision adds the unscale's read and write of the values."""
    from leptonsim.ops.embedding import gathered_row_bytes
    n = batch * lookups
    fp32 = table(vocab).cost((lookups,), batch, "update_sgd", 4)
    amp = table(vocab).cost((lookups,), batch, "update_sgd", 2)
    assert fp32.bytes == n * 128 * 4 * 3 + 2 * n * gathered_row_bytes(512)
    assert amp.bytes - fp32.bytes == n * 128 * 4 * 2
    assert fp32 == table(1).cost((lookups,), batch, "update_sgd", 4)
    assert (fp32.flops, amp.flops) == (2 * n * 128, 3 * n * 128)


def test_adam_and_dense_tables_keep_their_updates() -> None:
    from leptonsim.ops.base import update_cost
    small = table(10)
    assert small.cost((1,), 4096, "update_adam", 4) == update_cost(10 * 128, "update_adam", 4)
    dense = table(10, sparse=False)
    assert dense.cost((1,), 4096, "update_sgd", 4) == update_cost(10 * 128, "update_sgd", 4)


# -- a training step on the mesh ----------------------------------------------------------

TINY = {"transformer": {"name": "t", "layers": 2, "hidden": 1024, "heads": 16,
                        "vocab": 32000, "seq": 512}}


@pytest.mark.parametrize("split", [{"tp": 8, "dp": 1}, {"tp": 1, "dp": 8}])
def test_a_steps_ring_messages_on_the_mesh_go_between_adjacent_gpus_only(split) -> None:
    """The tensor-parallel (spelled out) and data-parallel rings of a step run on NCCL's
    mesh rings: every message between GPUs crosses one NVLink pair, none a peer GPU."""
    hw = ls.cluster("v100", 8, link="nvlink2", topology="dgx1")
    g = ls.step(TINY, hw, batch=8, precision="fp16", **split).step.graph
    c = hw.cluster
    src, dst = g.pin[g.edge_src], g.pin[g.edge_dst]
    moved = (src != dst) & (g.edge_bytes > 0)
    kinds = {g.kinds[t] for t in g.edge_dst[moved]}
    assert moved.any() and kinds <= {"ring_allreduce", "ring_reduce_scatter", "ring_allgather"}
    assert all(len(c.route(int(a), int(b))) == 1 for a, b in zip(src[moved], dst[moved], strict=True))
