"""Expert parallelism: MoE experts over ep data-parallel replicas, all-to-all dispatch
and combine around each MoE layer (parallel.experts)."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim import formulas
from leptonsim.hardware import LinkSpec
from leptonsim.models import LayerStack, Model
from leptonsim.ops import LayerNorm, MultiHeadSelfAttention
from leptonsim.ops.moe import MoE
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.experts import ExpertSplitError, ep_groups
from leptonsim.parallel.step import build_step
from tests.helpers.scenarios import a100_switch, refused
from tests.helpers.steps import UNIT, run, transformer_block


def moe_block(experts: int = 8, top_k: int = 2, layers: int = 1) -> Model:
    s = LayerStack("moe", (16, 64))
    for i in range(layers):
        s.add(f"ln{i}", LayerNorm())
        s.add(f"attn{i}", MultiHeadSelfAttention(4))
        s.add(f"moe{i}", MoE(experts, top_k, 128))
    return s.build()


def _exchanges(step, trace) -> dict[str, float]:
    """Each all-to-all's span: its first start task's start to its last step's end."""
    first: dict[str, float] = defaultdict(lambda: np.inf)
    last: dict[str, float] = defaultdict(lambda: -np.inf)
    for pos, t in enumerate(trace.task.tolist()):
        name = step.graph.names[t]
        if name.startswith("ep."):
            key = name.rsplit(".", 2)[0]  # without .r{i}.s{j}
            first[key] = min(first[key], float(trace.task_start[pos]))
            last[key] = max(last[key], float(trace.task_end[pos]))
    return {k: last[k] - first[k] for k in first}


@settings(max_examples=25, deadline=None)
@given(st.sampled_from([(2, 2), (4, 2), (4, 4), (8, 8), (8, 2)]), st.integers(1, 3),
       st.booleans(), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_uncontended_all_to_all_takes_its_closed_form(shape, m, training, alpha, bw):
    """Fully connected duplex links, nothing else on them in the forward: every dispatch
    and combine lasts alpha + n/(ep B), n the rank's token copies (MoE.dispatch_bytes)."""
    dp, ep = shape
    model = moe_block(layers=2)
    cfg = ParallelConfig(dp=dp, ep=ep, batch=dp * m, microbatches=m, training=training,
                         optimizer="sgd")
    step, _, trace = run(model, cfg, LinkSpec(alpha, bw))
    layer = model.layers[2]
    n = layer.op.dispatch_bytes(layer.input_shape, cfg.microbatch_size, cfg.dtype_bytes)
    spans = {k: v for k, v in _exchanges(step, trace).items() if ".F." in k}
    assert len(spans) == 2 * 2 * m * (dp // ep)  # dispatch, combine; layers; micro-batches
    expected = formulas.all_to_all_time(ep, n, alpha, bw)
    for span in spans.values():
        assert span == pytest.approx(expected, rel=1e-9)


def test_exchanges_forward_and_backward_and_again_with_recompute():
    model = moe_block()
    for recompute, per_layer in ((False, 4), (True, 6)):
        cfg = ParallelConfig(dp=4, ep=2, batch=8, microbatches=2, recompute=recompute)
        step, _, trace = run(model, cfg, LinkSpec(1e-6, 1e10))
        assert len(_exchanges(step, trace)) == per_layer * 2 * 2  # micro-batches, groups


def test_expert_parallel_groups_lie_inside_data_parallel():
    cfg = ParallelConfig(dp=8, ep=4, batch=8)
    assert ep_groups(cfg) == [(0, 1, 2, 3), (4, 5, 6, 7)]
    assert cfg.units == 8
    with pytest.raises(ValueError, match="ep 3 does not divide dp 4"):
        ParallelConfig(dp=4, ep=3, batch=4)


def test_ep_must_divide_every_moe_layers_experts():
    cfg = ParallelConfig(dp=4, ep=4, batch=4)
    from leptonsim.hardware import fully_connected, replicate
    cluster = fully_connected(replicate(UNIT, 4, "gpu"), LinkSpec(0.0, 1e12))
    with pytest.raises(ExpertSplitError, match="6 experts do not split into 4"):
        build_step(moe_block(experts=6), cfg, cluster)
    with pytest.raises(ExpertSplitError, match="no MoE layer"):
        build_step(transformer_block(), cfg, cluster)


def test_ep_one_builds_the_same_graph_as_before():
    """ep = 1: no exchange, and the tasks of the plain data-parallel step."""
    model = moe_block()
    cfg = ParallelConfig(dp=2, batch=4, microbatches=2)
    step = run(model, cfg)[0]
    assert not any(n.startswith("ep.") for n in step.graph.names)
    assert sum(k == "moe" for k in step.graph.kinds) == 2 * 2


@settings(max_examples=10, deadline=None)
@given(st.sampled_from([1, 2]), st.booleans(), st.booleans())
def test_expert_parallel_traces_are_valid(tp, sp, fuse):
    from tests.helpers.traces import check_trace_invariants
    cfg = ParallelConfig(dp=4, tp=tp, ep=2, batch=8, microbatches=2, sp=sp, fuse=fuse)
    step, _, trace = run(moe_block(layers=2), cfg, LinkSpec(1e-6, 5e10), per_node=2)
    check_trace_invariants(step.graph, trace)


def test_expert_gradients_all_reduce_over_dp_over_ep_replicas():
    """dp 4, ep 2: per MoE layer, replicas {0, 2} and {1, 3} all-reduce the experts they
    hold (ring: 2 (p-1) = 2 steps, n/p each); the dense buckets leave the routed experts
    out; the optimizer updates 1/ep of them."""
    model = moe_block()
    cfg = ParallelConfig(dp=4, ep=2, batch=8, microbatches=2, bucket_bytes=1e12)
    step = run(model, cfg)[0]
    g = step.graph
    moe = model.layers[2]
    routed = moe.op.routed_params(moe.input_shape)
    names = [n for n in g.names if n.startswith("edp.")]
    assert {n.split(".")[4] for n in names} == {"e0", "e1"}
    held = routed / 2 * cfg.dtype_bytes
    cross = g.pin[g.edge_src] != g.pin[g.edge_dst]
    edp = np.array([g.names[int(src)].startswith("edp.") for src in g.edge_src])
    assert g.edge_bytes[cross & edp].sum() == pytest.approx(2 * 2 * 2 * held / 2)
    dense = np.array([g.names[int(src)].startswith("dp.") for src in g.edge_src])
    replicated = (model.params() - routed) * cfg.dtype_bytes
    assert g.edge_bytes[cross & dense].sum() == pytest.approx(4 * 2 * 3 / 4 * replicated)
    plain = run(model, ParallelConfig(dp=4, batch=8, microbatches=2))[0].graph
    opt = np.array(list(g.kinds)) == "optimizer"
    opt_plain = np.array(list(plain.kinds)) == "optimizer"
    assert g.nbytes[opt].sum() < plain.nbytes[opt_plain].sum()


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([2, 4]), st.booleans())
def test_a_rank_holds_one_ep_th_of_the_routed_experts(ep, training):
    model = moe_block()
    moe = model.layers[2]
    routed = moe.op.routed_params(moe.input_shape)
    mem = {}
    for e in (1, ep):
        cfg = ParallelConfig(dp=4, ep=e, batch=8, microbatches=2, training=training)
        mem[e] = run(model, cfg)[0].memory[0][1]
    saved = routed * (1 - 1 / ep) * 2  # fp16 weights
    assert mem[1].weights_bytes - mem[ep].weights_bytes == pytest.approx(saved, rel=1e-9)
    if training:
        assert mem[1].gradients_bytes - mem[ep].gradients_bytes == pytest.approx(saved, rel=1e-9)
        assert mem[ep].optimizer_bytes < mem[1].optimizer_bytes
    assert mem[ep].activations_bytes == mem[1].activations_bytes


BAD = a100_switch(4) + """[workload.model]
input_shape = [{seq}, 64]
batch = 8
layers = [{{ op = "layernorm" }}, {{ op = "attention", heads = 4 }}, {{ op = "layernorm" }},
          {{ op = "moe", experts = 6, top_k = 2, expert_ffn = 32 }}]
[parallel]
"""


@pytest.mark.parametrize("seq, parallel, key, words", [
    (16, "ep = 4", "parallel.ep", r"expected an ep that divides every MoE layer's experts "
     r"\(6\), found 4 \(6 experts do not split into 4 equal parts\)"),
    (16, "ep = 3", "parallel", r"ep 3 does not divide dp 4"),
    (15, "tp = 2\nsp = true", "parallel.sp", r"expected a tp that divides the sequence \(15 "
     r"tokens\) with sp = true, found 2"),
])
def test_bad_splits_are_one_line_exit_2(tmp_path, capsys, seq, parallel, key, words):
    refused(tmp_path, capsys, BAD.format(seq=seq) + parallel + "\n", key, words)


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([(2, 2), (4, 2)]), st.booleans(), st.floats(1e-7, 1e-5),
       st.floats(1e9, 1e12))
def test_symmetric_equals_full_with_expert_parallelism(shape, sp, alpha, bw):
    """Fully connected links: each tp index's exchange runs on its own ranks and links,
    so simulating tp rank 0 alone gives the same step (training=False: no DP buckets)."""
    dp, ep = shape
    model = moe_block(layers=2)
    link = LinkSpec(alpha, bw)
    time = {mode: run(model, ParallelConfig(dp=dp, tp=2, ep=ep, batch=2 * dp, microbatches=2,
                                            sp=sp, tp_mode=mode, training=False), link)[2]
            .makespan_s for mode in ("full", "symmetric")}
    assert time["symmetric"] == pytest.approx(time["full"], rel=1e-9)
