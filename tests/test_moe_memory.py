"""MoE memory per active expert (issue 13, item 4): the activations a MoE layer keeps
are its active experts' MLP terms (Korthikanti et al., MLSys 2023, section 4.1) scaled
by top_k x the capacity factor, and under expert parallelism ZeRO shards and gathers a
rank's own experts only."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.models import LayerStack, Model
from leptonsim.ops import GELU, Dense, LayerNorm
from leptonsim.ops.moe import MoE
from leptonsim.parallel.config import ParallelConfig
from tests.helpers.steps import run

S, H, F = 16, 64, 128


def _model(moe: MoE) -> Model:
    s = LayerStack("moe", (S, H))
    s.add("ln", LayerNorm())
    s.add("moe", moe)
    return s.build()


@given(st.integers(1, 8), st.integers(1, 4), st.sampled_from([0.0, 1.0, 1.25, 2.0]),
       st.sampled_from(["gelu", "swiglu"]), st.integers(0, 2))
def test_kept_bytes_are_the_active_experts_mlp_terms(experts, top_k, capacity, act, shared):
    """Per token: the input and the router's probabilities and top_k weights, then per
    kept row (top_k x capacity factor copies, plus one per shared expert) its dispatched
    copy, its output for the combine and the MLP's intermediates (2F gelu, 3F swiglu)."""
    top_k = min(top_k, experts)
    op = MoE(experts, top_k, F, activation=act, shared_experts=shared, capacity_factor=capacity)
    rows = S * (top_k * (capacity or 1.0) + shared)
    mats = 2 if act == "gelu" else 3
    saved = op.saved_bytes((S, H), 1, 2)
    assert saved.inputs == 2 * (S * H + S * experts + S * top_k + 2 * rows * H)
    assert saved.made == 2 * rows * mats * F


def test_one_expert_of_top_1_keeps_what_the_dense_mlp_keeps_and_its_routing() -> None:
    """E = k = 1, gelu: the dense MLP's fc input and its two 4h intermediates (Korthikanti
    et al.'s 2sbh + 8sbh + 8sbh at F = 4h), plus the router's and combine's own tensors."""
    mlp = [Dense(F), GELU(), Dense(H)]
    dense = sum(op.saved_bytes(shape, 1, 2).inputs for op, shape in
                zip(mlp, [(S, H), (S, F), (S, F)], strict=True))
    moe = MoE(1, 1, F, activation="gelu").saved_bytes((S, H), 1, 2)
    routing = 2 * (S * H + S * 1 + S * 1 + S * H)  # its input, probs, weights, expert output
    assert moe.inputs + moe.made == dense + routing


@settings(max_examples=6, deadline=None)
@given(st.sampled_from([1, 2]), st.sampled_from([1.0, 2.0]))
def test_activations_grow_with_top_k_times_capacity(top_k, capacity):
    base = run(_model(MoE(4, 1, F, capacity_factor=1.0)), ParallelConfig())[0].memory[0][1]
    more = run(_model(MoE(4, top_k, F, capacity_factor=capacity)), ParallelConfig())[0].memory[0][1]
    op = MoE(4, top_k, F, capacity_factor=capacity)
    one = MoE(4, 1, F, capacity_factor=1.0)
    grown = op.saved_bytes((S, H), 1, 2).total - one.saved_bytes((S, H), 1, 2).total
    assert more.activations_bytes - base.activations_bytes == pytest.approx(grown, rel=1e-12)


@pytest.mark.parametrize("zero", [1, 2, 3])
def test_zero_shards_a_ranks_own_experts_over_the_replicas_that_hold_them(zero: int) -> None:
    """dp 4, ep 2: a rank holds E/2 experts, sharded by ZeRO over the dp/ep = 2 replicas
    holding the same ones; the router and norm over all 4."""
    model = _model(MoE(4, 2, F))
    moe = model.layers[1]
    routed = moe.op.routed_params(moe.input_shape)
    rest = sum(layer.params for layer in model.layers) - routed
    cfg = ParallelConfig(dp=4, ep=2, batch=8, microbatches=2, zero=zero)
    m = run(model, cfg)[0].memory[0][1]
    own = routed / 2
    assert m.optimizer_bytes == pytest.approx(12 * (rest / 4 + own / 2), rel=1e-12)
    assert m.gradients_bytes == pytest.approx(2 * ((rest / 4 + own / 2) if zero >= 2
                                                   else rest + own), rel=1e-12)
    assert m.weights_bytes == pytest.approx(2 * ((rest / 4 + own / 2) if zero == 3
                                                 else rest + own), rel=1e-12)


def test_zero_3_gathers_the_ranks_own_experts_only() -> None:
    """Stage 3's parameter all-gathers move the router's and norm's bytes and the rank's
    E/ep experts, not the experts other ranks hold."""
    model = _model(MoE(4, 2, F))
    moe = model.layers[1]
    routed = moe.op.routed_params(moe.input_shape)
    total = sum(layer.params for layer in model.layers)
    gathered = {}
    for ep in (1, 2):
        cfg = ParallelConfig(dp=4, ep=ep, batch=4, microbatches=1, zero=3)
        g = run(model, cfg)[0].graph
        fsdp = np.array([g.names[t].startswith("fsdp.") for t in g.edge_dst.tolist()])
        cross = g.pin[g.edge_src] != g.pin[g.edge_dst]
        gathered[ep] = float(g.edge_bytes[fsdp & cross].sum())
    assert gathered[2] / gathered[1] == pytest.approx((total - routed / 2) / total, rel=1e-9)
