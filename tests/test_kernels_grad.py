"""Every kernel's backward against central finite differences of its forward, float64.

Hypothesis chooses the shapes and hyper-parameters; a seed it draws fixes the values.
Tolerance: with step h = 1e-6 in float64 the central difference has truncation error
~h^2 |f'''| ~ 1e-12 and rounding error ~eps |f| / h ~ 1e-10, so a correct gradient
agrees to ~1e-9 normwise (observed 1e-11 .. 5e-9). We require < 1e-5: four orders
of margin for unlucky draws, while a wrong term (missing factor, transposed index,
dropped path through time) shows up as an error of order 0.1 to 1. Gradients under
GRAD_FLOOR in norm are compared absolutely (see tests/helpers/kernels.py).
Random inputs keep kinks (ReLU at 0, max-pool ties) further than h away almost surely.
"""

from __future__ import annotations

import functools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from leptonsim.kernels import attention, run_backward, run_forward
from leptonsim.ops import (
    GELU,
    GRU,
    LSTM,
    Add,
    AvgPool2D,
    BatchNorm,
    Conv2D,
    Dense,
    DotInteraction,
    Dropout,
    Embedding,
    Flatten,
    GlobalAvgPool,
    LayerNorm,
    MaxPool2D,
    MultiHeadSelfAttention,
    Op,
    ReLU,
    Sigmoid,
    SigmoidCrossEntropy,
    Softmax,
    SoftmaxCrossEntropy,
    Tanh,
)
from leptonsim.ops.conv import PADDINGS, Padding
from leptonsim.ops.embedding import Pooling
from tests.helpers.kernels import (
    GRAD_FLOOR,
    kernel_grad_errors,
    lstm_lm_small,
    numeric_grad,
    random_params,
    rel_err,
    transformer_block,
)

TOL = 1e-5
# few examples, fixed (derandomized) so the file is reproducible and runs in seconds
FEW = settings(max_examples=25, deadline=None, derandomize=True, database=None)
seeds = st.integers(0, 2**31 - 1)
small = st.integers(1, 4)


def assert_grads(errors: dict[str, float]) -> None:
    bad = {k: v for k, v in errors.items() if not v < TOL}
    assert not bad, f"gradient relative errors above {TOL}: {bad}"


@FEW
@given(st.data(), seeds)
def test_conv2d(data: st.DataObject, seed: int) -> None:
    kh, kw = data.draw(small, "kh"), data.draw(small, "kw")
    padding: Padding = data.draw(st.sampled_from(PADDINGS), "padding")
    # 'valid' needs an image at least as large as the kernel
    h = data.draw(st.integers(kh if padding == "valid" else 1, 6), "h")
    w = data.draw(st.integers(kw if padding == "valid" else 1, 6), "w")
    op = Conv2D(
        data.draw(st.integers(1, 3), "filters"),
        (kh, kw),
        (data.draw(st.integers(1, 3), "sh"), data.draw(st.integers(1, 3), "sw")),
        padding,
        data.draw(st.booleans(), "bias"),
    )
    assert_grads(kernel_grad_errors(op, (h, w, data.draw(st.integers(1, 3), "c")), seed))


@FEW
@given(st.data(), seeds)
def test_pooling(data: st.DataObject, seed: int) -> None:
    kind = data.draw(st.sampled_from([MaxPool2D, AvgPool2D]), "kind")
    pool = data.draw(small, "pool")
    padding: Padding = data.draw(st.sampled_from(PADDINGS), "padding")
    stride = data.draw(st.none() | st.integers(1, 3), "stride")
    h = data.draw(st.integers(pool if padding == "valid" else 1, 6), "h")
    w = data.draw(st.integers(pool if padding == "valid" else 1, 6), "w")
    assert_grads(kernel_grad_errors(kind(pool, stride, padding), (h, w, 2), seed))


@FEW
@given(small, small, small, seeds)
def test_global_avg_pool_and_flatten(h: int, w: int, c: int, seed: int) -> None:
    assert_grads(kernel_grad_errors(GlobalAvgPool(), (h, w, c), seed))
    assert_grads(kernel_grad_errors(Flatten(), (h, w, c), seed))


@FEW
@given(st.lists(small, min_size=1, max_size=3), small, st.booleans(), seeds)
def test_dense(shape: list[int], units: int, bias: bool, seed: int) -> None:
    assert_grads(kernel_grad_errors(Dense(units, bias), tuple(shape), seed))


ELEMENTWISE: list[Op] = [ReLU(), GELU(), Tanh(), Sigmoid(), Softmax(), Dropout(0.3)]


@FEW
@given(st.sampled_from(ELEMENTWISE), st.lists(small, min_size=1, max_size=3), seeds)
def test_activations_and_softmax(op: Op, shape: list[int], seed: int) -> None:
    assert_grads(kernel_grad_errors(op, tuple(shape), seed))


NORMS: list[Op] = [BatchNorm(), LayerNorm()]


@FEW
@given(st.sampled_from(NORMS), st.lists(small, min_size=1, max_size=3), seeds)
def test_norms(op: Op, shape: list[int], seed: int) -> None:
    # batch 3: a BatchNorm feature needs more than one value for a non-zero variance
    assert_grads(kernel_grad_errors(op, tuple(shape), seed, batch=3))


@FEW
@given(st.integers(1, 6), small, small, st.sampled_from([None, "sum", "mean"]), seeds)
def test_embedding(vocab: int, dim: int, length: int, pooling: Pooling | None, seed: int) -> None:
    op = Embedding(vocab, dim, pooling)
    assert_grads(kernel_grad_errors(op, (length,), seed, batch=3))


@FEW
@given(st.sampled_from([LSTM, GRU]), small, st.integers(1, 3), small, st.booleans(), seeds)
def test_recurrent(kind: type, steps: int, features: int, units: int, seq: bool, seed: int) -> None:
    assert_grads(kernel_grad_errors(kind(units, seq), (steps, features), seed))


@FEW
@given(small, st.integers(1, 2), st.integers(1, 3), st.booleans(), st.booleans(), seeds,
       st.sampled_from([0.0, 0.4]))
def test_attention(seq: int, heads: int, head_dim: int, bias: bool, causal: bool, seed: int,
                   dropout: float) -> None:
    op = MultiHeadSelfAttention(heads, bias, dropout=dropout)
    forward = functools.partial(attention.forward, causal=causal)
    assert_grads(kernel_grad_errors(op, (seq, heads * head_dim), seed, forward=forward))


LOSSES: list[Op] = [SoftmaxCrossEntropy(), SigmoidCrossEntropy()]


@FEW
@given(st.sampled_from(LOSSES), st.lists(small, min_size=1, max_size=2), seeds)
def test_losses(op: Op, shape: list[int], seed: int) -> None:
    assert_grads(kernel_grad_errors(op, tuple(shape), seed, batch=3))


@FEW
@given(st.integers(2, 3), st.lists(small, min_size=1, max_size=2), small, small, seeds)
def test_add_and_interaction(arity: int, shape: list[int], n: int, d: int, seed: int) -> None:
    assert_grads(kernel_grad_errors(Add(arity), tuple(shape), seed))
    assert_grads(kernel_grad_errors(DotInteraction(), (n, d), seed))


def network_grad_errors(net, x: np.ndarray, labels: np.ndarray, seed: int) -> dict[str, float]:
    """run_backward against finite differences of run_forward's loss, whole network."""
    rng = np.random.default_rng(seed)
    params = {
        layer.name: random_params(layer.op, layer.input_shape, rng)
        for layer in net.model.layers
        if layer.params
    }
    dx, grads = run_backward(net, params, run_forward(net, params, x, labels))

    def loss() -> float:
        return float(run_forward(net, params, x, labels).output)

    errors = {
        f"{layer}.{name}": rel_err(grads[layer][name], numeric_grad(loss, value), GRAD_FLOOR)
        for layer, layer_params in params.items()
        for name, value in layer_params.items()
    }
    if dx is not None:
        errors["input"] = rel_err(dx, numeric_grad(loss, x), GRAD_FLOOR)
    return errors


@settings(max_examples=4, deadline=None, derandomize=True, database=None)
@given(seeds)
def test_transformer_block_network(seed: int) -> None:
    # two residual forks: the runner must sum the gradients reaching "input" and "attn.add"
    rng = np.random.default_rng(seed)
    x, labels = rng.standard_normal((2, 3, 4)), rng.integers(0, 5, (2, 3))
    assert_grads(network_grad_errors(transformer_block(), x, labels, seed))


@settings(max_examples=4, deadline=None, derandomize=True, database=None)
@given(seeds)
def test_lstm_lm_network(seed: int) -> None:
    rng = np.random.default_rng(seed)
    tokens, labels = rng.integers(0, 12, (2, 5)), rng.integers(0, 12, (2, 5))
    assert_grads(network_grad_errors(lstm_lm_small(), tokens, labels, seed))
