"""The MoE op: parameters count every expert, FLOPs the active rows."""

from hypothesis import given
from hypothesis import strategies as st

from leptonsim.ops.dense import Dense
from leptonsim.ops.moe import MoE


def test_mixtral_layer_params():
    # Mixtral 8x7B: hidden 4096, 8 SwiGLU experts of 14336, router 4096 x 8 (config.json)
    assert MoE(8, 2, 14336).params((16, 4096)) == 8 * 3 * 4096 * 14336 + 4096 * 8


@given(st.integers(1, 8), st.integers(1, 64), st.integers(1, 64), st.integers(1, 4))
def test_one_expert_is_a_dense_mlp(seq, hidden, ffn, batch):
    """One gelu expert, top 1: its GEMMs are exactly the two Dense layers' matmuls."""
    moe = MoE(1, 1, ffn, activation="gelu")
    x = (seq, hidden)
    experts = sum(g.flops for g in moe.cost(x, batch, "forward").gemms[1:])
    up, down = Dense(ffn, use_bias=False), Dense(hidden, use_bias=False)
    assert experts == (up.cost(x, batch, "forward").flops
                       + down.cost((seq, ffn), batch, "forward").flops)


@given(st.integers(1, 16), st.floats(1.0, 4.0))
def test_imbalance_never_makes_it_faster(experts, imbalance):
    x = (64, 32)
    base = MoE(experts, 1, 48).cost(x, 2, "forward").flops
    assert MoE(experts, 1, 48, imbalance=imbalance).cost(x, 2, "forward").flops >= base


def test_capacity_caps_the_busiest_expert():
    x = (64, 32)
    capped = MoE(8, 2, 48, capacity_factor=1.25, imbalance=3.0)
    assert capped.busiest_rows(x, 1) == MoE(8, 2, 48, imbalance=1.25).busiest_rows(x, 1)


def test_dispatch_bytes():
    assert MoE(8, 2, 48).dispatch_bytes((64, 32), 3, 2) == 3 * 64 * 2 * 32 * 2


def test_tp_must_divide_the_expert_ffn():
    import pytest

    from leptonsim.models import Layer, Model
    from leptonsim.parallel.tensor import TensorSplitError, check_split

    model = Model("m", (16, 32), (Layer("moe", MoE(4, 2, 48), (16, 32)),))
    check_split(model, 8)  # 48 / 8
    with pytest.raises(TensorSplitError, match="48 expert_ffn do not split into 5"):
        check_split(model, 5)
