"""Op shapes, parameter counts and costs: hand derivations first, then properties.

Expected numbers are derived in the comments from the op definitions (a multiply-add
is 2 FLOPs; T = 4 FLOPs per transcendental), not read back from the implementation.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from leptonsim.ops import (
    GELU,
    GRU,
    LSTM,
    PHASES,
    Add,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Cost,
    Dense,
    DotInteraction,
    Embedding,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    MaxPool2D,
    MultiHeadSelfAttention,
    Op,
    ReLU,
    ShapeError,
    Sigmoid,
    SigmoidCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from leptonsim.ops.base import ZERO, Phase, Shape
from leptonsim.zoo import seed_cnn

T = 4  # FLOPs per transcendental, the documented convention

# --- hand derivations ---------------------------------------------------------------


def test_conv_forward_flops_by_hand() -> None:
    # Conv2D(32, 3x3) on 28x28x1, 'valid': 26x26 outputs, 9 MACs each per filter.
    macs = 26 * 26 * 3 * 3 * 1 * 32
    bias = 26 * 26 * 32
    cost = Conv2D(32, 3).cost((28, 28, 1), 1, "forward")
    assert cost.flops == 2 * macs + bias == 411_008
    # bytes: read 784 inputs and 320 weights, write 21,632 outputs, 4 bytes each
    assert cost.bytes == 4 * (784 + 320 + 26 * 26 * 32)


def test_conv_backward_flops_by_hand() -> None:
    conv, x = Conv2D(64, 3), (13, 13, 32)  # the seed's second convolution
    macs = 11 * 11 * 3 * 3 * 32 * 64
    assert conv.cost(x, 5, "backward_data").flops == 5 * 2 * macs
    assert conv.cost(x, 5, "backward_weights").flops == 5 * (2 * macs + 11 * 11 * 64)


def test_conv_gemms_follow_cudnns_implicit_gemm_mapping() -> None:
    """NVIDIA's Convolutional Layers User's Guide, Table 1: forward M = N P Q, N = K,
    K = C R S; dgrad M = N H W (here N P Q, stride 1), N = C, K = K R S; wgrad
    M = C R S, N = K, K = N P Q."""
    conv, x, batch = Conv2D(64, 3, padding="same"), (56, 56, 32), 4
    npq, crs, krs = batch * 56 * 56, 32 * 9, 64 * 9
    (fwd,), (dgrad,), (wgrad,) = (conv.cost(x, batch, phase).gemms for phase in
                                  ("forward", "backward_data", "backward_weights"))
    assert (fwd.m, fwd.n, fwd.k) == (npq, 64, crs)
    assert (dgrad.m, dgrad.n, dgrad.k) == (npq, 32, krs)
    assert (wgrad.m, wgrad.n, wgrad.k) == (crs, 64, npq)


def test_the_layer_reading_the_model_input_computes_no_input_gradient() -> None:
    """Autograd skips the gradient of data: a model's first layer has no dgrad, every
    other layer keeps its own."""
    model = seed_cnn()
    first, *rest = model.layers
    assert first.cost(8, "backward_data") == ZERO
    assert first.op.cost(first.input_shape, 8, "backward_data").flops > 0
    assert all(layer.input_grad for layer in rest)
    assert model.total_cost(8, "backward_data") == sum(
        (layer.op.cost(layer.input_shape, 8, "backward_data") for layer in rest), ZERO)


def test_dense_flops_and_bytes_by_hand() -> None:
    # Dense(128) on 1600 features: 2 * in * out + out per sample.
    dense, x = Dense(128), (1600,)
    assert dense.cost(x, 1, "forward").flops == 2 * 1600 * 128 + 128 == 409_728
    # batch 8: activations 8 * (1600 + 128) and 204,928 weights, 4 bytes each
    assert dense.cost(x, 8, "forward").bytes == 4 * (8 * 1728 + 204_928)
    assert dense.cost(x, 8, "backward_data").flops == 8 * 2 * 1600 * 128
    assert dense.cost(x, 8, "backward_weights").flops == 8 * (2 * 1600 * 128 + 128)


def test_dense_on_a_sequence_shares_weights_across_rows() -> None:
    dense, x = Dense(3072), (128, 768)
    assert dense.output_shape(x) == (128, 3072)
    assert dense.params(x) == 768 * 3072 + 3072
    assert dense.cost(x, 1, "forward").flops == 128 * (2 * 768 * 3072 + 3072)


def test_attention_by_hand() -> None:
    # S = 4 tokens, H = 8, 2 heads of size 4
    att, x = MultiHeadSelfAttention(2), (4, 8)
    assert att.params(x) == 4 * (8 * 8 + 8)
    projections = 2 * 4 * 8 * (3 * 8) + 2 * 4 * 8 * 8 + 4 * 4 * 8  # QKV, out, biases
    scores_and_context = 2 * (2 * 4 * 4 * 8)  # two batched matmuls, 2 S^2 H each
    softmax = 2 * 4 * 4 * (1 + T + 4)  # scale + softmax per score, per head
    assert att.cost(x, 1, "forward").flops == projections + scores_and_context + softmax


def test_recurrent_params_follow_keras() -> None:
    # LSTM: 4 * (h * (i + h) + h); GRU (reset_after): 3 * (h * (i + h) + 2h)
    assert LSTM(650).params((35, 650)) == 4 * (650 * 1300 + 650) == 3_382_600
    assert GRU(32).params((10, 16)) == 3 * (32 * 48 + 64)
    assert LSTM(4, return_sequences=False).output_shape((7, 3)) == (4,)
    assert GRU(4).output_shape((7, 3)) == (7, 4)


def test_lstm_forward_flops_by_hand() -> None:
    # per step and unit: 4 gate matmuls 2 * (i + h), 4 biases, 3 sigmoids (T + 2),
    # 2 tanh (T), 4 cell/hidden products
    i, h, steps = 3, 5, 7
    per_step = 4 * h * 2 * (i + h) + 4 * h + h * (3 * (T + 2) + 2 * T + 4)
    assert LSTM(h).cost((steps, i), 2, "forward").flops == 2 * steps * per_step


def test_norm_params() -> None:
    assert BatchNorm().params((56, 56, 64)) == 128
    assert BatchNorm().non_trainable_params((56, 56, 64)) == 128
    assert LayerNorm().params((128, 768)) == 1536
    assert LayerNorm().non_trainable_params((128, 768)) == 0


def test_embedding_is_a_memory_bound_lookup() -> None:
    emb, x = Embedding(1000, 16), (5,)
    assert emb.output_shape(x) == (5, 16)
    assert emb.params(x) == 16_000
    fwd = emb.cost(x, 2, "forward")
    # gather 2 * 5 rows of 16 and write them: 2 * 160 words, plus 10 int32 indices
    assert fwd == Cost(0, 4 * 320 + 4 * 10)
    assert emb.cost(x, 2, "backward_data") == ZERO  # no work, no kernel
    pooled = Embedding(1000, 16, pooling="sum", sparse_update=True)
    assert pooled.output_shape(x) == (16,)
    assert pooled.cost(x, 2, "forward").flops == 2 * 4 * 16  # 4 adds per pooled value
    # the sparse optimizer touches at most batch * lookups rows
    assert pooled.updated_params(x, 2) == 10 * 16
    assert pooled.cost(x, 2, "update_sgd").flops == 2 * 160


def test_tied_dense_owns_no_matrix_but_still_computes() -> None:
    head, x = Dense(50, use_bias=False, tied=True), (4, 8)
    assert head.params(x) == 0
    assert head.cost(x, 1, "forward").flops == 2 * 4 * 8 * 50
    assert head.cost(x, 1, "backward_weights").flops == 2 * 4 * 8 * 50
    assert head.cost(x, 1, "update_adam") == ZERO  # no work, no kernel


def test_interaction_shape_and_flops() -> None:
    # 9 vectors of 64: 64 dense values + 36 pairs; Z Z^T is 2 * 81 * 64 FLOPs
    assert DotInteraction().output_shape((9, 64)) == (100,)
    assert DotInteraction().cost((9, 64), 1, "forward").flops == 2 * 81 * 64


def test_update_costs_by_hand() -> None:
    dense, x = Dense(10), (128,)  # 1290 parameters in 2 tensors: one kernel each
    assert dense.cost(x, 32, "update_sgd") == Cost(2 * 1290, 3 * 1290 * 4, kernels=2)
    assert dense.cost(x, 32, "update_adam") == Cost(12 * 1290, 7 * 1290 * 4, kernels=2)
    # mixed precision: fp16 g read, fp32 master w, m, v read and written, fp16 w written
    assert dense.cost(x, 32, "update_adam", dtype_bytes=2) == Cost(12 * 1290, 28 * 1290, kernels=2)
    assert dense.cost(x, 32, "update_sgd", dtype_bytes=2) == Cost(2 * 1290, 12 * 1290, kernels=2)


# --- shape inference --------------------------------------------------------------

SHAPE_EXAMPLES: list[tuple[Op, Shape, Shape]] = [
    (Conv2D(8, 3), (10, 10, 3), (8, 8, 8)),
    (Conv2D(8, 3, padding="same"), (10, 10, 3), (10, 10, 8)),
    (Conv2D(8, 3, stride=2), (10, 10, 3), (4, 4, 8)),
    (Conv2D(8, 7, stride=2, padding="same"), (224, 224, 3), (112, 112, 8)),
    (Conv2D(8, (1, 3)), (5, 5, 2), (5, 3, 8)),
    (MaxPool2D(2), (26, 26, 32), (13, 13, 32)),
    (MaxPool2D(3, 2, "same"), (112, 112, 64), (56, 56, 64)),
    (AvgPool2D(2, 1), (4, 4, 1), (3, 3, 1)),
    (GlobalAvgPool(), (7, 7, 2048), (2048,)),
    (Flatten(), (5, 5, 64), (1600,)),
    (Dense(10), (128,), (10,)),
    (ReLU(), (3, 4), (3, 4)),
    (Softmax(), (10,), (10,)),
    (SoftmaxCrossEntropy(), (35, 100), ()),
    (SigmoidCrossEntropy(), (1,), ()),
    (Add(3), (128, 768), (128, 768)),
    (MultiHeadSelfAttention(12), (128, 768), (128, 768)),
]


@pytest.mark.parametrize(("op", "x", "y"), SHAPE_EXAMPLES)
def test_output_shape_examples(op: Op, x: Shape, y: Shape) -> None:
    assert op.output_shape(x) == y


SHAPE_ERRORS: list[tuple[Op, Shape, str]] = [
    (Conv2D(8, 3), (28, 28), r"Conv2D: expected input of rank 3 \(H, W, C\), got shape \(28, 28\)"),
    (Conv2D(8, 5), (3, 9, 1), r"Conv2D: input size 3 is smaller than window 5"),
    (MaxPool2D(2), (1, 1, 4), r"MaxPool2D: input size 1 is smaller than window 2"),
    (Dense(4), (), r"Dense: expected input of rank >= 1"),
    (Dense(4), (0,), r"Dense: dimensions must be positive integers, got shape \(0,\)"),
    (Embedding(10, 4), (3, 2), r"Embedding: expected input of rank 1"),
    (LSTM(4), (8,), r"LSTM: expected input of rank 2 \(time, features\)"),
    (MultiHeadSelfAttention(5), (4, 768), r"hidden size 768 is not divisible by 5 heads"),
    (DotInteraction(), (9,), r"DotInteraction: expected input of rank 2"),
]


@pytest.mark.parametrize(("op", "x", "message"), SHAPE_ERRORS)
def test_impossible_shapes_raise(op: Op, x: Shape, message: str) -> None:
    with pytest.raises(ShapeError, match=message):
        op.output_shape(x)
    with pytest.raises(ValueError, match=message):  # ShapeError is a ValueError
        op.cost(x, 1, "forward")


def test_bad_configuration_and_arguments_raise() -> None:
    with pytest.raises(ValueError, match="padding must be 'valid' or 'same', got 'full'"):
        Conv2D(8, 3, padding="full")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="filters must be a positive integer, got 0"):
        Conv2D(0, 3)
    with pytest.raises(ValueError, match="unknown phase 'backward'"):
        Dense(4).cost((3,), 1, "backward")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="batch must be a positive integer, got 0"):
        Dense(4).cost((3,), 0, "forward")
    with pytest.raises(ValueError, match="arity must be an integer >= 2"):
        Add(1)


# --- properties -------------------------------------------------------------------

sizes = st.integers(1, 64)
batches = st.integers(1, 512)


@given(sizes, sizes, st.integers(1, 8), batches)
def test_dense_forward_flops_scale_linearly_with_batch(
    n_in: int, n_out: int, rows: int, batch: int
) -> None:
    dense, x = Dense(n_out), (rows, n_in)
    assert dense.cost(x, batch, "forward").flops == batch * dense.cost(x, 1, "forward").flops
    # bytes are affine: the weights are read once per batch
    one, two = dense.cost(x, 1, "forward").bytes, dense.cost(x, 2, "forward").bytes
    assert dense.cost(x, batch, "forward").bytes == one + (batch - 1) * (two - one)


@given(sizes, sizes, st.integers(1, 8), batches, st.booleans())
def test_dense_backward_is_twice_the_forward_matmul(
    n_in: int, n_out: int, rows: int, batch: int, bias: bool
) -> None:
    dense, x = Dense(n_out, use_bias=bias), (rows, n_in)
    bias_flops = batch * rows * n_out if bias else 0
    matmul = dense.cost(x, batch, "forward").flops - bias_flops
    backward = sum(dense.cost(x, batch, p).flops for p in ("backward_data", "backward_weights"))
    assert backward - bias_flops == 2 * matmul


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 7), st.integers(1, 16))
def test_conv_same_padding_stride_one_keeps_height_and_width(
    h: int, w: int, k: int, filters: int
) -> None:
    assert Conv2D(filters, k, padding="same").output_shape((h, w, 3)) == (h, w, filters)


@given(st.integers(1, 40), st.integers(1, 40), st.integers(1, 4), st.integers(1, 4))
def test_conv_same_padding_rounds_up_with_stride(h: int, w: int, k: int, s: int) -> None:
    assert Conv2D(2, k, s, "same").output_shape((h, w, 1))[:2] == (-(-h // s), -(-w // s))


@given(st.integers(3, 20), st.integers(1, 8), st.integers(1, 8), batches)
def test_conv_backward_is_twice_the_forward_matmul(
    n: int, c_in: int, c_out: int, batch: int
) -> None:
    conv, x = Conv2D(c_out, 3), (n, n, c_in)
    bias_flops = batch * (n - 2) ** 2 * c_out
    matmul = conv.cost(x, batch, "forward").flops - bias_flops
    backward = sum(conv.cost(x, batch, p).flops for p in ("backward_data", "backward_weights"))
    assert backward - bias_flops == 2 * matmul


WEIGHTLESS: list[tuple[Op, Shape]] = [
    (ReLU(), (6, 5)),
    (GELU(), (6, 5)),
    (Tanh(), (6, 5)),
    (Sigmoid(), (6, 5)),
    (Softmax(), (6, 5)),
    (MaxPool2D(2), (6, 6, 3)),
    (AvgPool2D(3, 1, "same"), (6, 6, 3)),
    (GlobalAvgPool(), (6, 6, 3)),
    (Flatten(), (6, 6, 3)),
    (Add(), (6, 5)),
    (DotInteraction(), (6, 5)),
    (SoftmaxCrossEntropy(), (6, 5)),
    (SigmoidCrossEntropy(), (6, 5)),
]

WEIGHTED: list[tuple[Op, Shape]] = [
    (Conv2D(4, 3), (6, 6, 3)),
    (Dense(7), (6, 5)),
    (BatchNorm(), (6, 6, 3)),
    (LayerNorm(), (6, 5)),
    (Embedding(50, 4), (6,)),
    (LSTM(4), (6, 5)),
    (GRU(4), (6, 5)),
    (MultiHeadSelfAttention(5), (6, 5)),
]


@given(st.sampled_from(WEIGHTLESS), batches)
def test_ops_without_weights_cost_nothing_to_train(case: tuple[Op, Shape], batch: int) -> None:
    op, x = case
    assert op.params(x) == 0
    for phase in ("backward_weights", "update_sgd", "update_adam"):
        assert op.cost(x, batch, phase) == ZERO  # no work, no kernel


@given(st.sampled_from(WEIGHTED), batches, st.sampled_from([1, 2, 4, 8]))
def test_updates_follow_the_optimizer_convention(
    case: tuple[Op, Shape], batch: int, dtype_bytes: int
) -> None:
    op, x = case
    p = op.params(x)
    assert p > 0
    # g read at the dtype; w (Adam: w, m, v) read and written at fp32 or the dtype if
    # wider; a dtype narrower than fp32 has its copy of w written too
    state = max(dtype_bytes, 4)
    copy = dtype_bytes if dtype_bytes < 4 else 0
    k = op.param_tensors(x)
    assert k >= 1
    sgd, adam = (Cost(f * p, (dtype_bytes + 2 * w * state + copy) * p, kernels=k)
                 for f, w in ((2, 1), (12, 3)))
    assert op.cost(x, batch, "update_sgd", dtype_bytes) == sgd
    assert op.cost(x, batch, "update_adam", dtype_bytes) == adam
    if dtype_bytes == 4:  # fp32: 3 and 7 words, the textbook count
        assert (sgd.bytes, adam.bytes) == (3 * p * 4, 7 * p * 4)
    assert op.cost(x, batch, "backward_weights").flops > 0


@given(st.sampled_from(WEIGHTLESS + WEIGHTED), batches, st.sampled_from(PHASES[:3]))
def test_flops_are_affine_in_batch_and_costs_non_negative(
    case: tuple[Op, Shape], batch: int, phase: Phase
) -> None:
    op, x = case
    one, two, many = (op.cost(x, b, phase) for b in (1, 2, batch))
    assert many.flops == one.flops + (batch - 1) * (two.flops - one.flops)
    # only BatchNorm has per-batch (not per-sample) work: its channel statistics
    if not isinstance(op, BatchNorm):
        assert many.flops == batch * one.flops
    assert many.flops >= 0 and many.bytes >= one.bytes >= 0


def test_cost_adds_and_reports_intensity() -> None:
    assert Cost(1, 2) + Cost(3, 4) == Cost(4, 6, kernels=2)  # one kernel each
    assert Cost(8, 2).intensity == 4
    assert Cost(1, 0).intensity == float("inf")
