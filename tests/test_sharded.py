"""Parallel splits executed for real give the unsplit model's numbers (issue: real NumPy
execution, part 2).

Tensor parallel (Megatron shards as layer_roles places them), pipeline (stages from
partition, micro-batches, GPipe and 1F1B orders) and data parallel (a ring all-reduce
on NumPy chunks, then SGD or Adam) must reproduce the unsplit float64 run to ~1e-12
relative; negative controls show the comparisons can fail.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leptonsim.graph import GraphBuilder
from leptonsim.kernels import ModelParams, Network, init_model_params
from leptonsim.kernels.blocks import gpt_block, mlp_stack
from leptonsim.kernels.norms import grad_arrays, normwise_error
from leptonsim.parallel import collectives as col
from leptonsim.parallel.pipeline import DeadlockError
from tests.oracle import (
    data_parallel_steps,
    handoffs,
    large_batch_steps,
    layer_modes,
    no_allreduce,
    pipeline_step,
    process_ring_allreduce,
    ring_allreduce,
    ring_schedule,
    sent_elements,
    stage_ranges,
    step_errors,
    tensor_parallel_step,
    unsplit_step,
)
from tests.oracle.pipeline import _execute, _Run
from tests.oracle.tensor import check_tp, gather_layer, shard_layer

TOL = 1e-12
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def random_params(net: Network, rng: np.random.Generator) -> ModelParams:
    """Initialised weights, with biases, gammas and betas made non-trivial too: a bias
    added once per rank instead of once would otherwise go unseen."""
    params = init_model_params(net.model, rng, np.float64)
    return {layer: {n: a + 0.1 * rng.standard_normal(a.shape) for n, a in p.items()}
            for layer, p in params.items()}


@st.composite
def cases(draw, tp: int = 1, loss: bool | None = None):
    """(network, float64 parameters, x, labels, dy), a small pre-LN block or a Dense
    stack whose split dimensions tp divides; ending in a loss (labels) or not (dy)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    batch = draw(st.integers(1, 5))
    with_loss = draw(st.booleans()) if loss is None else loss
    if draw(st.booleans()):
        heads, seq = tp * draw(st.integers(1, 2)), draw(st.integers(1, 4))
        hidden = heads * draw(st.integers(1, 3))
        vocab = tp * draw(st.integers(1, 3)) if with_loss else None
        net = gpt_block(seq, hidden, heads, ffn=tp * draw(st.integers(1, 4)), vocab=vocab)
        x = rng.standard_normal((batch, seq, hidden))
        labels = rng.integers(0, vocab, (batch, seq)) if vocab else None
    else:  # always ends in a loss
        widths = [tp * draw(st.integers(1, 3)) for _ in range(draw(st.integers(1, 4)))]
        classes = tp * draw(st.integers(1, 2))
        net, x = mlp_stack(3, widths, classes), rng.standard_normal((batch, 3))
        labels = rng.integers(0, classes, batch)
    dy = None if labels is not None else rng.standard_normal((batch, *net.model.output_shape))
    return net, random_params(net, rng), x, labels, dy


# -- tensor parallel ---------------------------------------------------------------------


@SETTINGS
@given(st.sampled_from([1, 2, 4]).flatmap(lambda tp: st.tuples(st.just(tp), cases(tp))))
def test_tensor_parallel_matches_unsplit(case) -> None:
    tp, (net, params, x, labels, dy) = case
    errors = step_errors(tensor_parallel_step(net, params, x, labels, dy, tp),
                         unsplit_step(net, params, x, labels, dy))
    assert max(errors.values()) < TOL, errors


def test_skipping_the_allreduce_changes_outputs_and_gradients() -> None:
    net = gpt_block(3, 8, 4)
    rng = np.random.default_rng(3)
    params, x, dy = random_params(net, rng), rng.standard_normal((2, 3, 8)), rng.standard_normal((2, 3, 8))
    ref = unsplit_step(net, params, x, dy=dy)
    assert max(step_errors(tensor_parallel_step(net, params, x, dy=dy, tp=2), ref).values()) < TOL
    broken = step_errors(tensor_parallel_step(net, params, x, dy=dy, tp=2, allreduce=no_allreduce), ref)
    assert broken["output"] > 1e-2 and broken["input_grad"] > 1e-2


def test_block_layers_are_split_as_megatron_does() -> None:
    modes = dict(zip((layer.name for layer in gpt_block(vocab=8).model.layers),
                     layer_modes(gpt_block(vocab=8).model), strict=True))
    assert modes == {"ln_1": "replicated", "attn": "attention", "attn.add": "replicated",
                     "ln_2": "replicated", "mlp.fc": "column", "mlp.gelu": "split", "mlp.proj": "row",
                     "mlp.add": "replicated", "head": "column", "loss": "replicated"}


@pytest.mark.parametrize("mode", ["column", "row", "attention", "replicated"])
def test_gather_inverts_shard(mode: str) -> None:
    rng = np.random.default_rng(0)
    h = 8
    params = ({"qkv_kernel": rng.random((h, 3 * h)), "qkv_bias": rng.random(3 * h),
               "out_kernel": rng.random((h, h)), "out_bias": rng.random(h)} if mode == "attention"
              else {"kernel": rng.random((h, 12)), "bias": rng.random(12)})
    shards = [shard_layer(mode, params, 4, r) for r in range(4)]  # type: ignore[arg-type]
    full = gather_layer(mode, shards)  # type: ignore[arg-type]
    assert all(np.array_equal(full[k], v) for k, v in params.items())


def test_tp_must_divide_heads_and_units() -> None:
    with pytest.raises(ValueError, match=r"layer 'attn' splits 2 ways \(attention\), not divisible by tp=4"):
        check_tp(gpt_block(4, 8, 2).model, 4)


# -- pipeline ----------------------------------------------------------------------------


@SETTINGS
@given(cases(), st.data())
def test_pipeline_matches_unsplit(case, data) -> None:
    net, params, x, labels, dy = case
    stages = data.draw(st.integers(1, min(4, len(net.model.layers))), label="stages")
    micro = data.draw(st.integers(1, len(x)), label="microbatches")
    kind = data.draw(st.sampled_from(["gpipe", "1f1b"]), label="schedule")
    costs = data.draw(st.lists(st.floats(0, 10), min_size=len(net.model.layers),
                               max_size=len(net.model.layers)) | st.none(), label="costs")
    got = pipeline_step(net, params, x, labels, dy, stages, micro, kind, costs)
    errors = step_errors(got, unsplit_step(net, params, x, labels, dy))
    assert max(errors.values()) < TOL, errors


def test_stages_hand_over_the_residual_stream() -> None:
    net = gpt_block()
    ranges = [(0, 2), (2, 5), (5, 8)]  # cut after attn and after mlp.fc
    assert handoffs(net, ranges) == [frozenset({"attn", "input"}), frozenset({"mlp.fc", "attn.add"}),
                                     frozenset({"mlp.add"})]
    assert len(stage_ranges(net.model, 3)) == 3


def test_a_deadlocking_order_is_refused() -> None:
    net = mlp_stack()
    params = init_model_params(net.model, np.random.default_rng(0), np.float64)
    run = _Run(net, params, [(0, 4), (4, len(net.model.layers))], handoffs(net, [(0, 4), (4, 10)]))
    order = [[("B", 0, 0), ("F", 0, 0)], [("F", 0, 0), ("B", 0, 0)]]  # stage 0 waits for itself
    with pytest.raises(DeadlockError, match="deadlocks"):
        list(_execute(order, run))


# -- data parallel and the ring ----------------------------------------------------------


@SETTINGS
@given(cases(loss=True), st.data())
def test_data_parallel_update_matches_one_large_batch(case, data) -> None:
    net, params, x, labels, _ = case
    dp = data.draw(st.integers(1, min(4, len(x))), label="dp")
    optimizer = data.draw(st.sampled_from(["sgd", "adam"]), label="optimizer")
    lr = 0.1 if optimizer == "sgd" else 1e-2
    ref = grad_arrays(large_batch_steps(net, params, x, labels, optimizer, lr, steps=2), params)
    for replica in data_parallel_steps(net, params, x, labels, dp, optimizer, lr, steps=2):
        assert normwise_error(grad_arrays(replica, params), ref) < TOL


def test_skipping_the_gradient_allreduce_changes_the_update() -> None:
    net = mlp_stack()
    rng = np.random.default_rng(5)
    params, x, y = random_params(net, rng), rng.standard_normal((8, 6)), rng.integers(0, 4, 8)
    ref = grad_arrays(large_batch_steps(net, params, x, y, "sgd", 0.5), params)
    replicas = data_parallel_steps(net, params, x, y, 2, "sgd", 0.5, allreduce=no_allreduce)
    assert all(normwise_error(grad_arrays(r, params), ref) > 1e-4 for r in replicas)


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 7), st.integers(0, 40), st.integers(0, 2**16))
def test_ring_allreduce_sums_and_moves_the_textbook_volume(p: int, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    buffers = [rng.standard_normal(n) for _ in range(p)]
    out = ring_allreduce(buffers)
    assert all(np.array_equal(o, out[0]) for o in out)  # every rank holds the same result
    np.testing.assert_allclose(out[0], np.sum(buffers, axis=0), rtol=1e-13, atol=1e-13)
    steps = ring_schedule(p)
    assert len(steps) == 2 * (p - 1)
    assert all(sorted(step.chunks) == list(range(p)) for step in steps)  # one chunk per rank
    if n % p == 0:
        assert sent_elements(n, p) == [2 * (p - 1) * n // p] * p


@pytest.mark.parametrize("p", [2, 3, 5])
def test_ring_schedule_is_the_simulated_collective(p: int) -> None:
    """collectives.ring_allreduce's data edges: step s, rank i-1 -> rank i, n/p bytes each."""
    b = GraphBuilder()
    col.ring_allreduce(b, list(range(p)), 8.0 * p, [None] * p, "c")
    g = b.build()
    data = [(g.names[s], g.names[d]) for s, d, nb in zip(g.edge_src, g.edge_dst, g.edge_bytes, strict=True)
            if nb > 0]
    sim = {(int(d.split(".s")[1]), int(s.split(".r")[1].split(".")[0]), int(d.split(".r")[1].split(".")[0]))
           for s, d in data}
    ours = {(k + 1, i, (i + 1) % p) for k in range(len(ring_schedule(p))) for i in range(p)}
    assert sim == ours


def test_ring_allreduce_across_processes() -> None:
    """The same schedule with each rank a separate interpreter, messages through shared
    memory: bit-identical to the in-process ring, and a data-parallel step uses it."""
    rng = np.random.default_rng(1)
    buffers = [rng.standard_normal(37) for _ in range(3)]
    got = process_ring_allreduce(buffers)
    assert all(np.array_equal(a, b) for a, b in zip(got, ring_allreduce(buffers), strict=True))
    net = mlp_stack()
    params, x, y = random_params(net, rng), rng.standard_normal((6, 6)), rng.integers(0, 4, 6)
    ref = grad_arrays(large_batch_steps(net, params, x, y, "adam", 1e-2), params)
    for replica in data_parallel_steps(net, params, x, y, 2, "adam", 1e-2, allreduce=process_ring_allreduce):
        assert normwise_error(grad_arrays(replica, params), ref) < TOL
