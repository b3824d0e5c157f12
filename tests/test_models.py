"""The model zoo: reference parameter counts, hand-derived FLOPs, and the registry."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.models import Layer, LayerStack, Model, format_layer_table
from leptonsim.ops import Dense, MultiHeadSelfAttention, Phase, ReLU, ShapeError
from leptonsim.zoo import (
    ZOO,
    DLRMSpec,
    bert,
    dlrm,
    get_model,
    gpt,
    gpt2_small,
    gpt3_175b,
    gpt_params,
    lstm_lm,
    resnet50,
    seed_cnn,
)

T = 4  # FLOPs per transcendental, the documented convention

# Published counts: Keras' summary of the seed model, torchvision, HuggingFace.
REFERENCE_PARAMS = {
    "seed_cnn": 225_034,
    "resnet50": 25_557_032,
    "resnet101": 44_549_160,
    "resnet152": 60_192_808,
    "bert_base": 109_482_240,
    "bert_large": 335_141_888,
    "gpt2_small": 124_439_808,
}


@pytest.mark.parametrize(("name", "expected"), REFERENCE_PARAMS.items())
def test_reference_parameter_counts(name: str, expected: int) -> None:
    assert get_model(name).params() == expected


def test_seed_cnn_layers_match_the_keras_summary() -> None:
    model = seed_cnn()
    weighted = [(r.name, r.output_shape, r.params) for r in model.layer_table() if r.params]
    assert weighted == [
        ("conv2d", (26, 26, 32), 320),  # 3*3*1*32 + 32
        ("conv2d_1", (11, 11, 64), 18_496),  # 3*3*32*64 + 64
        ("dense", (128,), 204_928),  # 1600*128 + 128
        ("dense_1", (10,), 1_290),  # 128*10 + 10
    ]
    assert model.layers[6].output_shape == (1600,)  # flatten of 5x5x64


def test_seed_cnn_forward_flops_by_hand() -> None:
    per_layer = {
        "conv2d": 2 * 26 * 26 * 3 * 3 * 1 * 32 + 26 * 26 * 32,  # 2 HoWo K^2 Cin Cout + bias
        "conv2d_relu": 26 * 26 * 32,
        "max_pooling2d": 13 * 13 * 32 * 4,  # 4 values per 2x2 window
        "conv2d_1": 2 * 11 * 11 * 3 * 3 * 32 * 64 + 11 * 11 * 64,
        "conv2d_1_relu": 11 * 11 * 64,
        "max_pooling2d_1": 5 * 5 * 64 * 4,  # floor(11 / 2) = 5
        "flatten": 0,
        "dense": 2 * 1600 * 128 + 128,  # 2 in out + out
        "dense_relu": 128,
        "dense_1": 2 * 128 * 10 + 10,
        "loss": 10 * (T + 4) + (T + 2),  # softmax per logit, log and pick per row
    }
    model = seed_cnn()
    assert {r.name: r.forward_flops for r in model.layer_table()} == per_layer
    assert model.total_cost(1, "forward").flops == sum(per_layer.values()) == 5_349_216
    assert model.total_cost(64, "forward").flops == 64 * 5_349_216


def test_resnet50_shapes_and_moving_statistics() -> None:
    model = resnet50()
    shapes = {layer.name: layer.output_shape for layer in model.layers}
    assert shapes["stem.maxpool"] == (56, 56, 64)
    assert shapes["layer2.0.relu"] == (28, 28, 512)
    assert shapes["layer4.2.relu"] == (7, 7, 2048)
    assert shapes["avgpool"] == (2048,)
    # every BatchNorm keeps as many moving statistics as it has trainable parameters
    bn = sum(layer.params for layer in model.layers if layer.kind == "batchnorm")
    assert model.non_trainable_params() == bn == 53_120
    assert model.total_params() == 25_557_032 + 53_120


def test_resnet50_forward_is_about_four_giga_multiply_adds() -> None:
    # the usual 4.1 GMACs for 224x224 counts convolutions and fc only; the convs have
    # no bias and the fc's 1000 bias adds are taken out
    flops = sum(
        layer.cost(1, "forward").flops
        for layer in resnet50().layers
        if layer.kind in ("conv2d", "dense")
    )
    assert 4.0e9 < (flops - 1000) / 2 < 4.2e9


def test_lstm_lm_params_by_hand() -> None:
    def lstm(i: int, h: int) -> int:
        return 4 * (h * (i + h) + h)  # Keras: one bias per gate

    v, e, h = 10_000, 650, 650
    expected = v * e + lstm(e, h) + lstm(h, h) + (h * v + v)
    assert lstm_lm().params() == expected == 19_775_200
    assert lstm_lm(vocab=100, embed=8, hidden=16, layers=3).params() == (
        100 * 8 + lstm(8, 16) + 2 * lstm(16, 16) + 16 * 100 + 100
    )
    assert lstm_lm().output_shape == ()


def test_dlrm_params_by_hand() -> None:
    def mlp(widths: list[int]) -> int:
        return sum(a * b + b for a, b in zip(widths, widths[1:], strict=False))

    bottom = mlp([13, 512, 256, 64])
    tables = 8 * 1_000_000 * 64
    top = mlp([64 + 9 * 8 // 2, 512, 256, 1])  # dense vector + 36 pairwise dots
    assert dlrm().params() == bottom + tables + top == 512_338_241


def test_dlrm_is_dominated_by_embedding_bytes_not_flops() -> None:
    by_kind = dlrm().cost_by_kind(2048, "update_sgd")
    assert by_kind["embedding"].bytes > by_kind["dense"].bytes
    forward = dlrm().cost_by_kind(2048, "forward")
    assert forward["embedding"].flops == 0 < forward["dense"].flops
    with pytest.raises(ValueError, match="bottom: expected widths ending in the embedding dim 64"):
        DLRMSpec("d", (10,), dim=64, bottom=(512, 32))


layers_st, heads_st = st.integers(1, 24), st.integers(1, 16)


@settings(max_examples=40, deadline=None)
@given(layers_st, heads_st, st.integers(1, 64), st.integers(1, 60_000), st.integers(1, 4096))
def test_gpt_params_match_megatron_formula(
    n: int, heads: int, head_dim: int, v: int, s: int
) -> None:
    h = heads * head_dim  # n layers of width h, vocabulary v, s positions
    formula = 12 * n * h**2 * (1 + Fraction(13, 12 * h) + Fraction(v + s, 12 * n * h))
    assert gpt_params(n, h, v, s) == formula
    assert gpt(n, h, v, s, heads, final_layernorm=False).params() == formula
    assert gpt(n, h, v, s, heads).params() == formula + 2 * h  # + the final LayerNorm


def test_gpt_named_configs() -> None:
    assert gpt2_small().params() == gpt_params(12, 768, 50_257, 1024) + 2 * 768
    assert gpt3_175b().params() == 174_615_822_336 + 2 * 12_288
    assert gpt2_small().output_shape == ()


def test_gpt_forward_matmul_flops_match_megatron() -> None:
    # Megatron's forward: 24 s n h^2 + 4 s^2 n h + 2 s h V per sequence (matmuls only)
    n, h, v, s, heads = 2, 64, 1000, 32, 4
    model = gpt(n, h, v, s, heads, dropout=0.0)  # dropout adds elementwise FLOPs only
    matmuls = sum(
        layer.cost(1, "forward").flops
        for layer in model.layers
        if layer.kind in ("dense", "attention")
    )
    bias = n * s * (4 * h + 4 * h + h)  # QKV and out projections, fc, proj
    softmax = n * heads * s * s * (1 + T + 4)  # scale and softmax per score
    assert matmuls - bias - softmax == 24 * s * n * h**2 + 4 * s**2 * n * h + 2 * s * h * v


def test_bert_rejects_sequences_longer_than_its_positions() -> None:
    with pytest.raises(ValueError, match="seq_len 1024 exceeds max_positions 512"):
        bert("b", 1, 64, 4, 256, seq_len=1024)
    assert bert("b", 1, 64, 4, 256, seq_len=512).output_shape == (64,)


def test_every_zoo_model_builds_with_unique_names_and_positive_step_cost() -> None:
    for name, builder in ZOO.items():
        model = builder()
        assert model.name == name
        assert len({layer.name for layer in model.layers}) == len(model.layers)
        step = model.step_cost(2, "update_sgd")
        assert step.flops > model.total_cost(2, "forward").flops > 0


def test_step_cost_is_the_sum_of_its_phases() -> None:
    model = seed_cnn()
    phases: tuple[Phase, ...] = ("forward", "backward_data", "backward_weights", "update_adam")
    flops = sum(model.total_cost(8, p).flops for p in phases)
    assert model.step_cost(8).flops == flops
    with pytest.raises(ValueError, match="optimizer must be 'update_sgd' or 'update_adam'"):
        model.step_cost(8, "forward")


def test_get_model_suggests_a_close_name() -> None:
    with pytest.raises(KeyError, match="unknown model 'resnet-50'; did you mean 'resnet50'"):
        get_model("resnet-50")
    with pytest.raises(KeyError, match="known: bert_base, bert_large, dlrm"):  # sorted
        get_model("xyz")


def test_model_validation() -> None:
    with pytest.raises(ShapeError, match="MultiHeadSelfAttention: hidden size 10"):
        Layer("att", MultiHeadSelfAttention(3), (4, 10))
    with pytest.raises(ValueError, match="duplicate layer name 'fc'"):
        Model("m", (4,), (Layer("fc", Dense(4), (4,)), Layer("fc", Dense(4), (4,))))
    with pytest.raises(ValueError, match="model 'm' has no layers"):
        Model("m", (4,), ())


def test_layer_stack_threads_shapes_and_accepts_explicit_inputs() -> None:
    s = LayerStack("toy", (8,))
    assert s.add("fc", Dense(4)) == (4,)
    assert s.add("relu", ReLU()) == (4,)
    assert s.add("side", Dense(2), (8,)) == (2,)
    model = s.build()
    assert [layer.input_shape for layer in model.layers] == [(8,), (4,), (8,)]
    assert model.params() == (8 * 4 + 4) + (8 * 2 + 2)


def test_format_layer_table() -> None:
    text = format_layer_table(seed_cnn())
    lines = text.splitlines()
    assert lines[0] == 'Model: "seed_cnn"  input (28, 28, 1)'
    assert any(line.split()[:3] == ["conv2d", "conv2d", "(26,"] for line in lines)
    assert "flatten          flatten       (1600,)" in text
    assert "Total params: 225,034" in text
    assert "Trainable params: 225,034" in text
    assert "Non-trainable params: 0" in text
    assert lines[-1] == "Forward GFLOPs/sample: 0.005349"
    assert "Non-trainable params: 53,120" in format_layer_table(resnet50())
