"""Training-step details (issue 12): recompute's collectives, bucket-ordered data-parallel
overlap, the input pipeline, the optimizer kernel, flash attention and fused kernels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.hardware import ComputeUnit, LinkSpec, fully_connected, replicate
from leptonsim.models import LayerStack, Model
from leptonsim.ops import LayerNorm, MultiHeadSelfAttention
from leptonsim.optimize import Estimator, enumerate_space
from leptonsim.parallel.config import ParallelConfig
from leptonsim.parallel.step import build_step
from leptonsim.sim import simulate
from leptonsim.zoo.transformer import gpt
from tests.helpers.scenarios import a100_switch
from tests.helpers.steps import blocks, dense_stack

UNIT = ComputeUnit("gpu", peak_flops=100e12, memory_bandwidth=2e12, memory_bytes=80e9,
                   efficiency=0.5)


def cluster_of(units: int, link: LinkSpec | None = None):
    return fully_connected(replicate(UNIT, units, "gpu"), link or LinkSpec(1e-6, 100e9))


def tp_collectives(model: Model, cfg: ParallelConfig, kind: str) -> int:
    """Tensor-parallel collectives of `kind` in the step graph: a ring's tasks share the
    name before ".r"; a symmetric task names the collectives it stands for, "a+b"."""
    step = build_step(model, cfg, cluster_of(cfg.units))
    kinds = {name.split(".r")[0]: name.split(".")[1].split("+")
             for name in step.graph.names if name.startswith("tp.")}
    return sum(found.count(kind) for found in kinds.values())


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


@settings(max_examples=12, deadline=None)
@given(st.integers(2, 4), st.sampled_from([1, 2]), st.floats(1e-7, 1e-5), st.floats(1e9, 1e12))
def test_estimate_equals_simulation_for_data_parallelism_in_one_bucket(dp, m, alpha, bw):
    """One bucket: nothing overlaps, the ring is exposed whole, in both."""
    model = dense_stack(3)
    cluster = cluster_of(dp, LinkSpec(alpha, bw))
    batch = 4 * dp * m
    sp = enumerate_space(dp, batch, len(model.layers))
    pick = np.flatnonzero((sp.dp == dp) & (sp.microbatches == m) & ~sp.recompute)[:1]
    est = Estimator(model, cluster, batch, bucket_bytes=1e15)(sp.take(pick))
    cfg = sp.config(int(pick[0]), batch, bucket_bytes=1e15)
    step = build_step(model, cfg, cluster)
    assert est.step_s[0] == pytest.approx(simulate(step.graph, cluster, "static").makespan_s,
                                          rel=1e-9)


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


# -- 3. the input pipeline: a step lasts at least its host's samples x seconds each --------

@settings(max_examples=20, deadline=None)
@given(st.integers(1, 4), st.integers(1, 3), st.floats(0.0, 1e-3))
def test_a_step_lasts_max_of_the_simulated_step_and_the_input_pipeline(dp, m, per_sample):
    """Each unit its own host (no nodes): the step is max(simulated, batch / dp x t)."""
    model = dense_stack(3)
    cluster = cluster_of(dp)
    cfg = ParallelConfig(dp=dp, batch=4 * dp * m, microbatches=m, input_s_per_sample=per_sample)
    step = build_step(model, cfg, cluster)
    trace = simulate(step.graph, cluster, "static")
    assert step.input_s == 4 * m * per_sample
    assert step.with_input(trace).makespan_s == max(trace.makespan_s, 4 * m * per_sample)


def test_the_units_of_a_node_share_its_host():
    """dp 8 on two nodes of 4: each host loads its 4 replicas' samples."""
    from leptonsim.hardware import two_level
    units = replicate(UNIT, 8, "gpu")
    cluster = two_level(units, 4, LinkSpec(1e-6, 100e9), LinkSpec(1e-6, 10e9))
    cfg = ParallelConfig(dp=8, batch=64, input_s_per_sample=1e-3)
    assert build_step(dense_stack(2), cfg, cluster).input_s == pytest.approx(4 * 8 * 1e-3)
    tp = ParallelConfig(dp=4, tp=2, batch=64, input_s_per_sample=1e-3)  # 2 replicas a node
    assert build_step(dense_stack(2), tp, cluster).input_s == pytest.approx(2 * 16 * 1e-3)


def test_the_estimate_lasts_at_least_the_input_pipeline_too():
    model = dense_stack(3)
    cluster = cluster_of(2)
    sp = enumerate_space(2, 8, len(model.layers))
    plain = Estimator(model, cluster, 8)(sp)
    fed = Estimator(model, cluster, 8, input_s_per_sample=1e-3)(sp)
    assert np.array_equal(fed.step_s, np.maximum(plain.step_s, 8 / sp.dp * 1e-3))


# -- 4. the optimizer: a memory-bound pass over weights, gradients and state ---------------

@pytest.mark.parametrize("optimizer, dtype_bytes, per_param",
                         [("adam", 2, 28), ("adam", 4, 28), ("sgd", 2, 12), ("sgd", 4, 12)])
def test_the_optimizer_task_moves_the_master_copy_too(optimizer, dtype_bytes, per_param):
    """Mixed-precision Adam: fp16 g read, fp32 w, m, v read and written, fp16 w written:
    2 + 24 + 2 = 28 bytes per parameter, as fp32 Adam's 4 + 24 (main: 14 for fp16)."""
    model = dense_stack(3)
    cfg = ParallelConfig(batch=2, optimizer=optimizer, dtype_bytes=dtype_bytes)
    step = build_step(model, cfg, cluster_of(1))
    (task,) = [i for i in range(step.graph.size) if step.graph.kinds[i] == "optimizer"]
    assert step.graph.nbytes[task] == per_param * model.params()


def test_a_fused_optimizer_is_one_kernel_per_parameter_group():
    from leptonsim.parallel.sync import optimizer_cost
    from leptonsim.parallel.tensor import LayerRole
    model = blocks(2)
    roles = [LayerRole(False, "", "")] * len(model.layers)
    layers = tuple(range(len(model.layers)))
    tensors = sum(layer.op.param_tensors(layer.input_shape) for layer in model.layers)
    assert tensors == 2 * (2 + 8 + 2 + 2 + 2)  # per block: ln, attention, ln, fc, proj
    plain = optimizer_cost(model, ParallelConfig(batch=1), roles, layers)
    fused = optimizer_cost(model, ParallelConfig(batch=1, fused_optimizer=True), roles, layers)
    assert (plain.kernels, fused.kernels) == (tensors, 1)
    assert (plain.flops, plain.bytes) == (fused.flops, fused.bytes)


# -- 5. flash attention: no S x S matrix in memory, the scores recomputed ------------------

heads_dims = st.tuples(st.integers(1, 8), st.sampled_from([16, 32, 64, 128]))


@settings(max_examples=60, deadline=None)
@given(heads_dims, st.integers(1, 16), st.integers(1, 4))
def test_flash_traffic_beyond_the_linear_terms_is_theorem_2s(hd, tiles, batch):
    """S a multiple of the tile: the forward's words past Q and O read and written once,
    the projections, the log-sum-exp and the weights are K and V read T times, which is
    Dao et al.'s Theorem 2 count 8 N^2 d^2 / M per head with M = 4 d FLASH_TILE words."""
    from leptonsim.ops.attention import FLASH_TILE
    heads, d = hd
    s, h = tiles * FLASH_TILE, heads * d
    op = MultiHeadSelfAttention(heads, implementation="flash")
    words = op.cost((s, h), batch, "forward", 1).bytes
    linear = 6 * batch * s * h + 2 * batch * s * h + batch * heads * s + op.params((s, h))
    sram = 4 * d * FLASH_TILE
    assert words - linear == batch * heads * 8 * s**2 * d**2 / sram


@settings(max_examples=60, deadline=None)
@given(heads_dims, st.integers(1, 4096), st.integers(1, 4), st.booleans())
def test_flash_moves_fewer_bytes_than_unfused_attention(hd, s, batch, causal):
    """Head sizes up to 128 (FlashAttention's): every pass moves fewer bytes once the
    sequence spans more than two tiles. Per head the backward moves (12 + 4T) s d +
    (1 + 2T) s words against unfused's 13 s d + 6 s^2, T = ceil(s / 128), so with
    d = 128 flash is behind for s just past one tile (s = 129: T = 2, 901 s vs 774 s),
    and ahead for every s > 256 (Hypothesis found the first case)."""
    from leptonsim.ops.attention import FLASH_TILE
    heads, d = hd
    x = (s, heads * d)
    flash = MultiHeadSelfAttention(heads, implementation="flash", causal=causal)
    unfused = MultiHeadSelfAttention(heads, causal=causal)
    for phase in ("forward", "backward_data"):
        f, u = flash.cost(x, batch, phase, 2), unfused.cost(x, batch, phase, 2)
        assert f.bytes < u.bytes or s <= 2 * FLASH_TILE
    assert flash.cost(x, batch, "backward_weights", 2) == unfused.cost(x, batch,
                                                                       "backward_weights", 2)


@settings(max_examples=40, deadline=None)
@given(heads_dims, st.integers(1, 2048), st.integers(1, 4))
def test_flash_recomputes_one_score_matmul_and_the_softmax_in_backward(hd, s, batch):
    """Same forward FLOPs; the backward adds QK^T (2 S^2 d per head) and the softmax
    (FlashAttention-2: 5 matmuls in backward, 2 in forward)."""
    from leptonsim.ops.softmax import SOFTMAX_FORWARD_FLOPS
    heads, d = hd
    x = (s, heads * d)
    flash = MultiHeadSelfAttention(heads, implementation="flash")
    unfused = MultiHeadSelfAttention(heads)
    assert flash.cost(x, batch, "forward").flops == unfused.cost(x, batch, "forward").flops
    extra = batch * heads * s * s * (2 * d + SOFTMAX_FORWARD_FLOPS)
    assert flash.cost(x, batch, "backward_data").flops == pytest.approx(
        unfused.cost(x, batch, "backward_data").flops + extra, rel=1e-12)


@settings(max_examples=40, deadline=None)
@given(heads_dims, st.integers(1, 16), st.integers(1, 4))
def test_causal_flash_computes_the_tiles_on_and_below_the_diagonal(hd, tiles, batch):
    """T tiles a side: T(T + 1)/2 of the T^2 score tiles, in forward and backward."""
    from leptonsim.ops.attention import FLASH_TILE
    heads, d = hd
    s, h = tiles * FLASH_TILE, heads * d
    sh = batch * s * h
    full = MultiHeadSelfAttention(heads, implementation="flash")
    causal = MultiHeadSelfAttention(heads, implementation="flash", causal=True)
    projections = {"forward": full.cost((s, h), batch, "backward_weights").flops,
                   "backward_data": 8 * sh * h + 2 * sh}
    for phase, linear in projections.items():
        f, c = (op.cost((s, h), batch, phase).flops - linear for op in (full, causal))
        assert c == pytest.approx(f * (tiles + 1) / (2 * tiles), rel=1e-12)


def test_the_zoos_transformers_use_flash_attention_and_gpts_is_causal():
    from leptonsim.zoo import get_model
    for name, causal in (("gpt2_small", True), ("bert_base", False)):
        ops = [layer.op for layer in get_model(name).layers if layer.kind == "attention"]
        assert ops and all(op.implementation == "flash" and op.causal == causal for op in ops)


# -- 6. fused kernels -------------------------------------------------------------------

def test_fusions_drop_a_kernel_and_a_read_of_the_intermediate():
    """gpt2_small: each block's GELU follows its fc Dense; every LayerNorm but the first
    follows a residual Add (the first follows the embedding dropout). Fused, each runs in
    its producer's kernel and does not read the producer's output back; backward is
    unchanged."""
    from leptonsim.zoo import get_model
    from leptonsim.zoo.transformer import with_kernels
    model = get_model("gpt2_small")
    fused = with_kernels(model, fused=["bias_gelu", "add_norm"])
    changed = [(a, b) for a, b in zip(model.layers, fused.layers, strict=True) if a.op != b.op]
    assert sorted({a.kind for a, _ in changed}) == ["gelu", "layernorm"]
    assert len(changed) == 12 + 24  # 12 GELUs, 2 x 12 LayerNorms (ln_1 of h.0 is not)
    for a, b in changed:
        before, after = a.cost(8, "forward", 2), b.cost(8, "forward", 2)
        assert (before.kernels, after.kernels) == (1, 0)
        assert before.bytes - after.bytes == 8 * np.prod(a.input_shape) * 2
        assert before.flops == after.flops
        assert a.cost(8, "backward_data", 2) == b.cost(8, "backward_data", 2)
    assert with_kernels(model) == model  # nothing asked, nothing changed


def test_a_gelu_that_does_not_take_a_dense_output_is_not_fused():
    from leptonsim.ops import GELU
    from leptonsim.zoo.transformer import with_kernels
    s = LayerStack("m", (8,))
    s.add("ln", LayerNorm())
    s.add("gelu", GELU())
    assert with_kernels(s.build(), fused=["bias_gelu", "add_norm"]) == s.build()
    with pytest.raises(ValueError, match="unknown fusion 'bias_relu'"):
        with_kernels(s.build(), fused=["bias_relu"])


HEAD = a100_switch(2) + """[workload.model]
name = "gpt2_small"
batch = 4
"""


def test_the_scenario_keys_choose_attention_fusions_and_the_input_pipeline():
    from leptonsim.scenario import loads
    (default,) = loads(HEAD)
    (chosen,) = loads(HEAD + 'attention = "unfused"\nfused = ["bias_gelu", "add_norm", '
                              '"optimizer"]\ninput_pipeline = "2 ms"\n')
    assert default.step is not None and chosen.step is not None
    kinds = {layer.op.implementation for layer in chosen.step.model.layers
             if layer.kind == "attention"}
    assert kinds == {"unfused"}
    assert {layer.op.implementation for layer in default.step.model.layers
            if layer.kind == "attention"} == {"flash"}
    assert chosen.step.config.fused_optimizer and not default.step.config.fused_optimizer
    assert chosen.step.input_s == pytest.approx(2 * 2e-3)  # 2 samples per unit, own hosts
    assert default.step.input_s == 0.0
    assert chosen.graph.nbytes.sum() > default.graph.nbytes.sum()  # unfused: S^2 bytes


def test_a_layer_may_not_choose_its_own_kernel(capsys):
    from leptonsim.errors import ScenarioError
    from leptonsim.scenario import loads
    text = HEAD.replace('name = "gpt2_small"\n', "input_shape = [8, 32]\n") + (
        '[[workload.model.layers]]\nop = "attention"\nheads = 4\nimplementation = "flash"\n')
    with pytest.raises(ScenarioError, match=r"layers\[0\]\.implementation: expected no "
                                            r"per-layer kernel choice.*workload.model\] attention"):
        loads(text)
