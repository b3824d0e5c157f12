"""Training-step details (issue 12): recompute's collectives, bucket-ordered data-parallel
overlap, the input pipeline, the optimizer kernel, flash attention and fused kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack, Model
from leptonsim.ops import Dense, LayerNorm, MultiHeadSelfAttention
from leptonsim.optimize import Estimator, enumerate_space
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import simulate
from leptonsim.zoo.transformer import gpt

UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12, memory_bytes=80e9,
                   efficiency=0.5)


def blocks(n: int = 2, heads: int = 4, seq: int = 8, hidden: int = 32) -> Model:
    """n transformer blocks without residual adds: ln, attention, ln, fc, proj."""
    s = LayerStack("blocks", (seq, hidden))
    for i in range(n):
        s.add(f"ln{i}a", LayerNorm())
        s.add(f"attn{i}", MultiHeadSelfAttention(heads))
        s.add(f"ln{i}b", LayerNorm())
        s.add(f"fc{i}", Dense(4 * hidden))
        s.add(f"proj{i}", Dense(hidden))
    return s.build()


def cluster_of(units: int, link: LinkSpec = LinkSpec(1e-6, 100e9)):
    return fully_connected(replicate(UNIT, units, "gpu"), link)


def tp_collectives(model: Model, cfg: ParallelConfig, kind: str) -> int:
    """Distinct tensor-parallel collectives of `kind` in the step graph."""
    step = build_step(model, cfg, cluster_of(cfg.units))
    names = step.graph.names
    return len({names[i].split(".r")[0].split(".open")[0] for i in range(step.graph.size)
                if names[i].startswith(f"tp.{kind}.")})


# -- 1. full recompute runs the recomputed forward's collectives ----------------------------

@pytest.mark.parametrize("tp_mode", ["full", "symmetric"])
@pytest.mark.parametrize("fuse", [False, True])
@pytest.mark.parametrize("m", [1, 3])
def test_full_recompute_runs_six_tensor_parallel_all_reduces_per_layer(tp_mode, fuse, m):
    """Megatron: 4 all-reduces per transformer layer and micro-batch, 6 with full recompute
    (Korthikanti et al., MLSys 2023, Table 2)."""
    layers = 3
    model = blocks(layers)
    for recompute, per_layer in ((False, 4), (True, 6)):
        cfg = ParallelConfig(tp=2, batch=2 * m, microbatches=m, recompute=recompute,
                             tp_mode=tp_mode, fuse=fuse, optimizer="sgd")
        assert tp_collectives(model, cfg, "allreduce") == per_layer * layers * m


def test_recompute_repeats_a_gpt_heads_all_gather_too():
    """GPT: 2 all-reduces per layer each way, plus the vocabulary-parallel head's
    all-gather (forward) and its opener's all-reduce (backward); recompute repeats the
    forward's 2 l + 1 ... and the all-gather."""
    layers = 2
    model = gpt(layers, 32, 64, 8, 4)
    for recompute in (False, True):
        cfg = ParallelConfig(tp=2, batch=2, recompute=recompute, tp_mode="symmetric")
        again = 2 if recompute else 1
        assert tp_collectives(model, cfg, "allreduce") == 2 * layers * again + 2 * layers + 1
        assert tp_collectives(model, cfg, "allgather") == again


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([2, 4]), st.sampled_from([1, 2]), st.booleans(),
       st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_estimate_equals_simulation_under_tensor_parallelism_with_recompute(tp, m, recompute,
                                                                             alpha, bw):
    """No data or pipeline parallelism, nothing contends: the optimizer's estimate and the
    simulated step agree exactly, so both count the recomputed forward's all-reduces."""
    model = blocks(2)
    cluster = cluster_of(tp, LinkSpec(alpha, bw))
    sp = enumerate_space(tp, 2 * m, len(model.layers))
    pick = np.flatnonzero((sp.tp == tp) & (sp.microbatches == m) & (sp.recompute == recompute)
                          & (sp.layout == 0))
    est = Estimator(model, cluster, 2 * m)(sp.take(pick[:1]))
    step = build_step(model, sp.config(int(pick[0]), 2 * m), cluster)
    assert est.step_s[0] == pytest.approx(simulate(step.graph, cluster, "static").makespan_s,
                                          rel=1e-9)


def test_estimated_tensor_parallel_time_grows_by_half_with_recompute():
    """Per layer the forward all-reduces move as many bytes as the backward's: 6/4."""
    model = blocks(2)
    sp = enumerate_space(2, 2, len(model.layers))
    plain = np.flatnonzero((sp.tp == 2) & ~sp.recompute & (sp.layout == 0))[:1]
    again = np.flatnonzero((sp.tp == 2) & sp.recompute & (sp.layout == 0))[:1]
    est = Estimator(model, cluster_of(2), 2)
    assert est(sp.take(again)).tp_comm_s[0] == pytest.approx(
        1.5 * est(sp.take(plain)).tp_comm_s[0], rel=1e-12)


# -- 2. data-parallel buckets in order, one after another ----------------------------------

def dense_stack(layers: int, width: int = 128) -> Model:
    s = LayerStack("stack", (width,))
    for i in range(layers):
        s.add(f"fc{i}", Dense(width))
    return s.build()


def bucket_spans(step, trace, prefix: str) -> list[tuple[int, float, float]]:
    """Per bucket of `prefix` (dp.s{s}.t{t}), in the order the all-reduces ran: (its
    first layer, first start, last end) over the bucket's tasks on every rank."""
    spans: dict[int, list[float]] = {}
    names = step.graph.names
    for task, start, end in zip(trace.task.tolist(), trace.task_start, trace.task_end,
                                strict=True):
        if names[task].startswith(prefix + "."):
            first = int(names[task][len(prefix) + 1:].split(".")[0])
            span = spans.setdefault(first, [np.inf, -np.inf])
            span[0], span[1] = min(span[0], start), max(span[1], end)
    return sorted(((k, a, z) for k, (a, z) in spans.items()), key=lambda r: r[1])


@settings(max_examples=20, deadline=None)
@given(st.integers(2, 4), st.integers(2, 5), st.integers(1, 3), st.floats(1e-7, 1e-4),
       st.floats(1e9, 1e12))
def test_buckets_all_reduce_in_reverse_layer_order_one_after_another(dp, layers, m, alpha, bw):
    """Each layer its own bucket: the all-reduces run from the last layer to the first,
    none before the previous one ended; the last ends exactly one ring all-reduce after
    both its gradient (the step's last backward) and the previous bucket are done."""
    from leptonsim import formulas
    model = dense_stack(layers)
    nbytes = model.layers[0].params * 4
    cfg = ParallelConfig(dp=dp, batch=dp * m, microbatches=m, bucket_bytes=nbytes,
                         optimizer="sgd", dtype_bytes=4)
    cluster = cluster_of(dp, LinkSpec(alpha, bw))
    step = build_step(model, cfg, cluster)
    trace = simulate(step.graph, cluster, "static")
    spans = bucket_spans(step, trace, "dp.s0.t0")
    assert [k for k, _, _ in spans] == list(reversed(range(layers)))
    for (_, _, end), (_, start, _) in zip(spans, spans[1:], strict=False):
        assert start >= end
    kinds = np.array([step.graph.kinds[t] for t in trace.task.tolist()])
    backward_end = float(trace.task_end[kinds == "dense.bwd"].max())
    ring = formulas.ring_allreduce_time(dp, nbytes, alpha, bw)
    assert spans[-1][2] == pytest.approx(max(backward_end, spans[-2][2]) + ring, rel=1e-9)


def test_one_bucket_for_everything_starts_after_the_whole_backward():
    """bucket >= every gradient: a single all-reduce, after the last backward, nothing
    overlapped: the exposed all-reduce is the whole ring."""
    from leptonsim import formulas
    model = dense_stack(4)
    cfg = ParallelConfig(dp=2, batch=2, bucket_bytes=1e15, optimizer="sgd", dtype_bytes=4)
    link = LinkSpec(1e-6, 10e9)
    cluster = cluster_of(2, link)
    step = build_step(model, cfg, cluster)
    trace = simulate(step.graph, cluster, "static")
    spans = bucket_spans(step, trace, "dp.s0.t0")
    kinds = np.array([step.graph.kinds[t] for t in trace.task.tolist()])
    backward_end = float(trace.task_end[kinds == "dense.bwd"].max())
    assert len(spans) == 1 and spans[0][1] == backward_end
    ring = formulas.ring_allreduce_time(2, model.params() * 4, 1e-6, 10e9)
    assert spans[0][2] - backward_end == pytest.approx(ring, rel=1e-9)
