"""Step graphs under DP x PP x TP: closed forms the simulated schedule must meet."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.cost import Roofline
from leptonsim.errors import SimulationError
from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack, Model
from leptonsim.ops import LayerNorm, MultiHeadSelfAttention
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.parallel.tensor import TensorSplitError, layer_roles, split_gcd
from leptonsim.zoo import get_model
from tests.helpers.steps import FREE, UNIT, dense_stack, run, transformer_block
from tests.helpers.traces import check_trace_invariants


def stage_time(model: Model, cfg: ParallelConfig, phase_cols: tuple[int, int], stages: int) -> float:
    """Roofline time of one stage's forward (cols 0,1) or backward (2,3): uniform stages."""
    from leptonsim.parallel.step import layer_costs
    roles = layer_roles(model)
    costs = layer_costs(model, cfg, roles)
    per_layer = Roofline().seconds(costs[:, phase_cols[0]], costs[:, phase_cols[1]], UNIT)
    return float(per_layer.sum()) / stages


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 4), st.integers(1, 8), st.sampled_from(["gpipe", "1f1b"]))
def test_pipeline_bubble_matches_closed_form(p, m, kind):
    """Uniform stages, free communication: (m + p - 1)(t_f + t_b), bubble (p-1)/(m+p-1)."""
    model = dense_stack(4 * p, width=256, reader=True)
    cfg = ParallelConfig(pp=p, batch=8 * m, microbatches=m, schedule=kind, optimizer="sgd")
    step, _, trace = run(model, cfg)
    t_f, t_b = stage_time(model, cfg, (0, 1), p), stage_time(model, cfg, (2, 3), p)
    kinds = np.array([step.graph.kinds[t] for t in trace.task.tolist()])
    pipeline_end = float(trace.task_end[kinds != "optimizer"].max())
    assert pipeline_end == pytest.approx((m + p - 1) * (t_f + t_b), rel=1e-9)
    bubble = 1 - m * (t_f + t_b) / pipeline_end
    assert bubble == pytest.approx(formulas.gpipe_bubble_fraction(p, m), rel=1e-9, abs=1e-12)


@settings(max_examples=15, deadline=None)
@given(st.sampled_from([2, 4]), st.integers(1, 3), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_symmetric_tensor_parallel_equals_full_when_nothing_else_contends(tp, m, alpha, bw):
    model = transformer_block()
    link = LinkSpec(alpha, bw)
    full = run(model, ParallelConfig(tp=tp, batch=2 * m, microbatches=m, tp_mode="full"), link)
    sym = run(model, ParallelConfig(tp=tp, batch=2 * m, microbatches=m, tp_mode="symmetric"), link)
    assert sym[2].makespan_s == pytest.approx(full[2].makespan_s, rel=1e-9)
    assert sym[0].graph.size < full[0].graph.size


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 6), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_data_parallel_all_reduce_takes_the_ring_closed_form(dp, alpha, bw):
    model = dense_stack(2, width=256)
    cfg = ParallelConfig(dp=dp, batch=4 * dp, bucket_bytes=1e12, optimizer="sgd", dtype_bytes=4)
    step, _, trace = run(model, cfg, LinkSpec(alpha, bw))
    kinds = np.array([step.graph.kinds[t] for t in trace.task.tolist()])
    ar = kinds == "ring_allreduce"
    took = trace.task_end[ar].max() - trace.task_start[ar].min()
    nbytes = model.params() * cfg.dtype_bytes
    assert took == pytest.approx(formulas.ring_allreduce_time(dp, nbytes, alpha, bw), rel=1e-9)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([(2, 2, 1), (1, 2, 2), (2, 1, 2), (2, 2, 2)]), st.booleans(),
       st.sampled_from(["gpipe", "1f1b"]))
def test_step_traces_respect_resources_and_dependencies(shape, recompute, kind):
    dp, pp, tp = shape
    cfg = ParallelConfig(dp=dp, pp=pp, tp=tp, batch=4 * dp, microbatches=2, schedule=kind,
                         recompute=recompute)
    step, _, trace = run(transformer_block(), cfg, LinkSpec(1e-6, 50e9), per_node=tp)
    check_trace_invariants(step.graph, trace)


def test_tensor_parallel_roles_follow_megatron():
    roles = layer_roles(get_model("gpt2_small"))
    forward = sum(r.forward_after == "allreduce" for r in roles)
    gathers = sum(r.forward_after == "allgather" for r in roles)
    backward = sum(r.backward_after == "allreduce" for r in roles)
    assert forward == 2 * 12          # attention and MLP of each of 12 blocks
    assert gathers == 1               # the vocabulary-parallel LM head, before the loss
    assert backward == forward + gathers


def test_recompute_costs_time_and_saves_activation_memory():
    model = transformer_block()
    base = ParallelConfig(pp=2, batch=8, microbatches=4)
    plain = run(model, base)
    again = run(model, ParallelConfig(pp=2, batch=8, microbatches=4, recompute=True))
    assert again[2].makespan_s > plain[2].makespan_s
    assert again[0].memory[0][1].activations_bytes < plain[0].memory[0][1].activations_bytes


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([1, 2]), st.integers(1, 3), st.sampled_from([0.0, 0.1]))
def test_selective_recompute_adds_the_attention_core_to_the_backward(tp, m, dropout):
    """Selective recompute (Korthikanti et al., MLSys 2023, section 5): each backward
    task also runs its attention core's forward (Op.recompute_cost, 1/tp per rank),
    exactly, and no collective more; flash recomputes in its own kernel, so selective
    changes nothing there. The S x S tensors leave the memory."""
    s = LayerStack("attn", (32, 64))
    s.add("ln", LayerNorm())
    s.add("attn", MultiHeadSelfAttention(4, dropout=dropout))
    model = s.build()
    kw = {"tp": tp, "batch": 2 * m, "microbatches": m, "optimizer": "sgd"}
    plain, sel = (run(model, ParallelConfig(recompute=r, **kw))[0] for r in ("none", "selective"))
    core = model.layers[1].op.recompute_cost(model.layers[1].input_shape, 2, 2)
    for step in (plain, sel):
        assert step.graph.size == plain.graph.size
    bwd = np.array([k.endswith(".bwd") for k in plain.graph.kinds])
    extra = sel.graph.flops[bwd] - plain.graph.flops[bwd]
    assert extra.sum() == pytest.approx(m * tp * core.flops / tp, rel=1e-12)
    assert (sel.graph.kernels[bwd] - plain.graph.kernels[bwd]).sum() == m * tp * core.kernels
    assert sel.memory[0][1].activations_bytes < plain.memory[0][1].activations_bytes
    flash = LayerStack("flash", (32, 64))
    flash.add("attn", MultiHeadSelfAttention(4, implementation="flash", dropout=dropout))
    f_plain, f_sel = (run(flash.build(), ParallelConfig(recompute=r, **kw))[0]
                      for r in ("none", "selective"))
    assert np.array_equal(f_sel.graph.flops, f_plain.graph.flops)
    assert f_sel.memory == f_plain.memory


def test_1f1b_holds_fewer_microbatches_than_gpipe():
    model = dense_stack(8, width=256)
    gpipe = run(model, ParallelConfig(pp=4, batch=64, microbatches=8, schedule="gpipe"))
    ofob = run(model, ParallelConfig(pp=4, batch=64, microbatches=8, schedule="1f1b"))
    assert ofob[0].memory[0][1].activations_bytes < gpipe[0].memory[0][1].activations_bytes
    assert ofob[2].makespan_s == pytest.approx(gpipe[2].makespan_s, rel=1e-9)


def test_interleaving_shrinks_the_bubble():
    model = dense_stack(16, width=256)
    plain = run(model, ParallelConfig(pp=4, batch=32, microbatches=4, schedule="1f1b"))
    inter = run(model, ParallelConfig(pp=4, batch=32, microbatches=4, schedule="interleaved",
                                      chunks=2))
    assert inter[2].makespan_s < plain[2].makespan_s


def test_a_configuration_that_does_not_fit_is_reported_not_simulated():
    small = ComputeUnit("tiny", 100e12, 2e12, memory_bytes=1e9, efficiency=0.5)
    cluster = fully_connected(replicate(small, 2, "gpu"), FREE)
    with pytest.raises(SimulationError, match=r"does not fit: stage 0 \(gpu0\) needs .* more than"):
        build_step(get_model("gpt2_small"), ParallelConfig(pp=2, batch=8, microbatches=2), cluster)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(1, 4), st.integers(1, 48), st.integers(1, 8))
def test_a_step_splits_over_tp_exactly_when_tp_divides_heads_and_widths(heads, head_dim, ffn, tp):
    """Theorem: attention splits by heads, the MLP's fc by its output units and proj by
    its input features (both ffn), so a step exists iff tp divides heads and ffn."""
    model = transformer_block(heads, 4, heads * head_dim, ffn)
    cfg = ParallelConfig(tp=tp, batch=2)
    cluster = fully_connected(replicate(UNIT, tp, "gpu"), FREE)
    possible = heads % tp == 0 and ffn % tp == 0
    assert (split_gcd(model) % tp == 0) == possible
    if possible:
        assert build_step(model, cfg, cluster).graph.size > 0
    else:
        with pytest.raises(TensorSplitError, match=f"do not split into {tp} equal parts"):
            build_step(model, cfg, cluster)
