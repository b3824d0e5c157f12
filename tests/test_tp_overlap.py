"""Transformer Engine's tensor-parallel communication overlap (parallel.tp_overlap): the
ring exchange, the pipelined and the bulk reduce-scatter, as simulated, against their
closed forms; the step with the key on and off."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.cost import Roofline
from leptonsim.graph import GraphBuilder
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack, Model
from leptonsim.ops import GELU, Dense, LayerNorm, MultiHeadSelfAttention
from leptonsim.ops.base import Gemm
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.tp_overlap import (
    COMM_SMS,
    PIPELINE_SPLITS,
    TensorParallelOverlap,
    bulk_s,
    pipeline_s,
    ring_exchange_s,
)
from leptonsim.sim import simulate
from tests.helpers.steps import run

RATE = 1e12  # FLOP/s of the harness's unit (peak x efficiency 1, no overhead)


class _Ring(TensorParallelOverlap):
    """The mixins alone on a fully connected cluster of p units (no contention)."""

    def __init__(self, p: int, link: LinkSpec, simulated: int, sms: int = 0) -> None:
        unit = ComputeUnit("gpu", peak_flops=RATE, memory_bandwidth=1e12, sms=sms)
        self.cluster = fully_connected(replicate(unit, p, "gpu"), link)
        self.cfg = ParallelConfig(tp=p, batch=1, sp=True, tp_comm_overlap=True,
                                  tp_mode="full" if simulated == p else "symmetric")
        self.b, self.ranks = GraphBuilder(), list(range(p))
        self.chains = [[-1, -1] for _ in range(simulated)]
        self.collapsed = np.zeros(len(self.cluster.channels))
        self.last_backward: dict = {}

    def makespan(self) -> float:
        trace = simulate(self.b.build(), self.cluster, "static", cost=Roofline())
        return float(np.max(trace.task_end))


def _link(latency: float, bandwidth: float) -> LinkSpec:
    return LinkSpec(latency_s=latency, bandwidth=bandwidth)


sizes = st.tuples(st.sampled_from([2, 3, 4, 8]), st.integers(1, 64), st.floats(1e3, 1e9),
                  st.floats(0, 1e-4), st.floats(1e9, 1e12), st.booleans())


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_ring_exchange_lasts_c_plus_n_minus_1_max_c_x(case):
    """Uncontended, the all-gather exchanged under the GEMM's p chunks lasts exactly
    c + (p-1) max(c, x): c a chunk's GEMM, x one ring step (latency + chunk / B); with
    every rank simulated and with rank 0 alone (symmetric mode) alike."""
    p, rows, nbytes, latency, bandwidth, alone = case
    ring = _Ring(p, _link(latency, bandwidth), 1 if alone else p)
    g = Gemm(p * rows, 64, 32)
    ring._ring_exchange(ring.chains, ring.ranks, nbytes, g, "ag")
    c, x = g.flops / p / RATE, latency + nbytes / p / bandwidth
    assert ring.makespan() == pytest.approx(ring_exchange_s(c, x, p), rel=1e-9, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(sizes)
def test_pipelined_reduce_scatter_lasts_c_plus_n_minus_1_max_c_r_plus_r(case):
    """The GEMM in PIPELINE_SPLITS chunks, each chunk's ring reduce-scatter (p-1 steps)
    after it and after the previous one: c + (n-1) max(c, r) + r."""
    p, rows, nbytes, latency, bandwidth, alone = case
    ring = _Ring(p, _link(latency, bandwidth), 1 if alone else p)
    g = Gemm(PIPELINE_SPLITS * rows, 64, 32)
    ring._pipeline(ring.chains, ring.ranks, nbytes, g, "rs")
    n = PIPELINE_SPLITS
    c = g.flops / n / RATE
    r = (p - 1) * (latency + nbytes / n / p / bandwidth)
    assert ring.makespan() == pytest.approx(pipeline_s(c, r, n), rel=1e-9, abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(sizes, st.floats(1e-6, 1e-2))
def test_bulk_reduce_scatter_runs_beside_the_weight_gradient(case, rest):
    """After the rest of the backward, the weight-gradient GEMM beside the whole ring
    reduce-scatter: rest + max(w, r)."""
    p, rows, nbytes, latency, bandwidth, alone = case
    ring = _Ring(p, _link(latency, bandwidth), 1 if alone else p)
    for chain, unit in zip(ring.chains, ring.ranks, strict=False):
        ring._append(chain, ring.b.task(f"rest.{unit}", duration_s=rest, pin=unit))
    g = Gemm(rows, 64, 32)
    ring._bulk(ring.chains, ring.ranks, nbytes, g, "rs", SimpleNamespace(layers=()), 0, 0)
    r = (p - 1) * (latency + nbytes / p / bandwidth)
    assert ring.makespan() == pytest.approx(bulk_s(rest, g.flops / RATE, r), rel=1e-9,
                                            abs=1e-15)


def test_pipelined_gemm_chunks_lose_the_communication_sms():
    """On 132 SMs the chunks beside a reduce-scatter run on 132 - COMM_SMS: their k (and
    FLOPs as priced) stretched by 132 / 116, rounded up."""
    ring = _Ring(2, _link(0.0, 1e30), 2, sms=132)
    g = Gemm(4 * 8, 64, 116)
    ring._pipeline(ring.chains, ring.ranks, 1.0, g, "rs")
    graph = ring.b.build()
    chunks = graph.flops[np.array(["gemm" in n for n in graph.names])]
    assert chunks == pytest.approx(np.full(2 * PIPELINE_SPLITS, 2 * 8 * 64 * 132))
    assert COMM_SMS == 16


def _gpt(blocks: int = 2, seq: int = 32, hidden: int = 64, heads: int = 4) -> Model:
    s = LayerStack("gpt", (seq, hidden))
    for i in range(blocks):
        s.add(f"ln1.{i}", LayerNorm())
        s.add(f"attn.{i}", MultiHeadSelfAttention(heads))
        s.add(f"ln2.{i}", LayerNorm())
        s.add(f"fc.{i}", Dense(4 * hidden))
        s.add(f"gelu.{i}", GELU())
        s.add(f"proj.{i}", Dense(hidden))
    return s.build()


def _wire_bytes(step) -> float:
    """Bytes of every edge between two units (the transfers the engine simulates)."""
    g = step.graph
    return float(g.edge_bytes[g.pin[g.edge_src] != g.pin[g.edge_dst]].sum())


SLOW = LinkSpec(latency_s=0.0, bandwidth=1e11)  # comm about as long as the GEMM chunks


def _step(overlap: bool, tp_mode: str = "full", fuse: bool = False):
    cfg = ParallelConfig(tp=4, batch=2, microbatches=2, sp=True, optimizer="sgd",
                         tp_comm_overlap=overlap, tp_mode=tp_mode, fuse=fuse)
    step, _, trace = run(_gpt(seq=128, hidden=256), cfg, SLOW)
    return step, float(np.max(trace.task_end))


@pytest.mark.parametrize("fuse", [False, True])
def test_overlap_shortens_a_communication_bound_step_and_keeps_its_work(fuse):
    """The same FLOPs in the graph (the GEMMs moved into chunks, none lost) and the same
    bytes on the wire; the step shorter, every closer and opener overlapped."""
    plain, t_plain = _step(False, fuse=fuse)
    over, t_over = _step(True, fuse=fuse)
    assert over.graph.flops.sum() == pytest.approx(plain.graph.flops.sum(), rel=1e-12)
    assert _wire_bytes(over) == pytest.approx(_wire_bytes(plain), rel=1e-12)
    assert t_over < t_plain
    assert any(k == "gemm.overlapped" for k in over.graph.kinds)


def test_symmetric_mode_equals_every_rank_spelled_out():
    """Rank 0's chunk followed around the ring stands for the group exactly: the
    symmetric step lasts what the fully spelled-out one does."""
    _, full = _step(True, "full", fuse=True)
    _, sym = _step(True, "symmetric", fuse=True)
    assert sym == pytest.approx(full, rel=1e-9)


def test_without_sequence_parallelism_the_key_is_refused():
    with pytest.raises(ValueError, match="tp_comm_overlap needs sp"):
        ParallelConfig(tp=2, batch=1, tp_comm_overlap=True)


def test_scenario_refuses_the_key_without_sp(tmp_path, capsys):
    from tests.helpers.scenarios import refused

    text = """
[scenario]
name = "x"
[hardware]
topology = "switch"
[[hardware.units]]
name = "gpu"
count = 2
preset = "a100_80gb"
[hardware.link]
preset = "nvlink3"
[workload.model]
name = "gpt2_small"
batch = 2
[parallel]
tp = 2
tp_comm_overlap = true
"""
    refused(tmp_path, capsys, text, "parallel", "tp_comm_overlap needs sp")
