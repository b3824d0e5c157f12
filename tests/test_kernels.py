"""Kernel forwards against independent references, parameter counts, dtypes, optimizers.

References: scipy.signal.correlate for convolution; plain Python loops (math module,
scalar arithmetic) on tiny shapes for the rest. None of them shares code with the
kernels, so agreement to 1e-10 (float64 rounding) means the same function.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from leptonsim.kernels import (
    KERNELS,
    adam,
    init_model_params,
    init_params,
    network,
    run_forward,
    sgd,
    update,
)
from leptonsim.kernels import attention as attention_kernel
from leptonsim.models import LayerStack
from leptonsim.ops import (
    GELU,
    GRU,
    LAYER_OPS,
    LSTM,
    MULTI_INPUT,
    OPS,
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
    RMSNorm,
    Sigmoid,
    SigmoidCrossEntropy,
    SiLU,
    Softmax,
    SoftmaxCrossEntropy,
    SwiGLU,
    Tanh,
)
from leptonsim.ops.base import Shape
from leptonsim.ops.conv import PADDINGS, Padding
from leptonsim.ops.moe import MoE
from leptonsim.zoo import DLRMSpec, bert, dlrm, gpt, lstm_lm, resnet, seed_cnn
from tests.helpers.kernels import cast, make_input, random_params, rel_err

FEW = settings(max_examples=25, deadline=None, derandomize=True, database=None)
EXACT = 1e-10  # float64 kernels vs float64 references: only rounding differs


def fwd(op: Op, params: dict, x: object) -> np.ndarray:
    return KERNELS[type(op)].forward(op, params, x)[0]


# --- convolution vs scipy ------------------------------------------------------------


def tf_pads(n: int, k: int, s: int) -> tuple[int, int]:
    """TensorFlow's documented 'same' padding: total split with the extra at the end."""
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def conv_reference(x, kernel, bias, stride, padding):
    kh, kw, c, f = kernel.shape
    if padding == "same":
        pads = tf_pads(x.shape[1], kh, stride[0]), tf_pads(x.shape[2], kw, stride[1])
        x = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    out = []
    for image in x:
        maps = [
            sum(signal.correlate(image[:, :, ch], kernel[:, :, ch, o], mode="valid") for ch in range(c))
            [:: stride[0], :: stride[1]] + bias[o]
            for o in range(f)
        ]
        out.append(np.stack(maps, axis=-1))
    return np.stack(out)


@FEW
@given(st.data(), st.integers(0, 2**31 - 1))
def test_conv2d_matches_scipy_correlate(data: st.DataObject, seed: int) -> None:
    kh, kw = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    padding: Padding = data.draw(st.sampled_from(PADDINGS))
    h = data.draw(st.integers(kh if padding == "valid" else 1, 8))
    w = data.draw(st.integers(kw if padding == "valid" else 1, 8))
    stride = (data.draw(st.integers(1, 3)), data.draw(st.integers(1, 3)))
    op = Conv2D(data.draw(st.integers(1, 3)), (kh, kw), stride, padding)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, h, w, data.draw(st.integers(1, 3))))
    params = random_params(op, x.shape[1:], rng)
    expected = conv_reference(x, params["kernel"], params["bias"], stride, padding)
    assert rel_err(fwd(op, params, x), expected) < EXACT


# --- pooling, dense, norms, softmax, losses vs loops ---------------------------------


def pool_reference(x, op):
    """Each window over real pixels only: TF 'same' ignores the padding."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw) = op.pool_hw, op.stride_hw
    ho, wo, _ = op.output_shape((h, w, c))
    top = tf_pads(h, kh, sh)[0] if op.padding == "same" else 0
    left = tf_pads(w, kw, sw)[0] if op.padding == "same" else 0
    y = np.zeros((n, ho, wo, c))
    for b, i, j, ch in np.ndindex(n, ho, wo, c):
        vals = [
            x[b, r, q, ch]
            for r in range(i * sh - top, i * sh - top + kh)
            for q in range(j * sw - left, j * sw - left + kw)
            if 0 <= r < h and 0 <= q < w
        ]
        y[b, i, j, ch] = max(vals) if isinstance(op, MaxPool2D) else sum(vals) / len(vals)
    return y


@FEW
@given(st.data(), st.integers(0, 2**31 - 1))
def test_pooling_matches_loops(data: st.DataObject, seed: int) -> None:
    pool = data.draw(st.integers(1, 3))
    padding: Padding = data.draw(st.sampled_from(PADDINGS))
    h = data.draw(st.integers(pool if padding == "valid" else 1, 6))
    w = data.draw(st.integers(pool if padding == "valid" else 1, 6))
    kind = data.draw(st.sampled_from([MaxPool2D, AvgPool2D]))
    op = kind(pool, data.draw(st.none() | st.integers(1, 3)), padding)
    x = np.random.default_rng(seed).standard_normal((2, h, w, 2))
    assert rel_err(fwd(op, {}, x), pool_reference(x, op)) < EXACT
    means = [[sum(x[b, :, :, ch].flat) / (h * w) for ch in range(2)] for b in range(2)]
    assert rel_err(fwd(GlobalAvgPool(), {}, x), means) < EXACT


def test_dense_and_flatten_match_loops() -> None:
    rng = np.random.default_rng(1)
    op = Dense(3)
    x = rng.standard_normal((2, 4, 5))  # leading token axis shares the weights
    p = random_params(op, (4, 5), rng)
    expected = [
        [[sum(x[b, t, i] * p["kernel"][i, u] for i in range(5)) + p["bias"][u] for u in range(3)]
         for t in range(4)]
        for b in range(2)
    ]
    assert rel_err(fwd(op, p, x), expected) < EXACT
    assert fwd(Flatten(), {}, x).tolist() == [list(x[b].flat) for b in range(2)]


def normalise_reference(values: list[float], gamma: float, beta: float) -> list[float]:
    mean = sum(values) / len(values)
    var = sum((v - mean) ** 2 for v in values) / len(values)
    return [gamma * (v - mean) / math.sqrt(var + 1e-5) + beta for v in values]


def test_norms_match_loops() -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((3, 2, 2, 4))
    p = random_params(BatchNorm(), (2, 2, 4), rng)
    expected = np.zeros_like(x)
    for ch in range(4):  # BatchNorm: one statistic per channel over batch and space
        flat = normalise_reference(list(x[..., ch].flat), p["gamma"][ch], p["beta"][ch])
        expected[..., ch] = np.reshape(flat, x.shape[:-1])
    assert rel_err(fwd(BatchNorm(), p, x), expected) < EXACT
    rows = x.reshape(-1, 4)  # LayerNorm: one statistic per row over the features
    by_row = [[normalise_reference(list(r), p["gamma"][k], p["beta"][k])[k] for k in range(4)] for r in rows]
    assert rel_err(fwd(LayerNorm(), p, x), np.reshape(by_row, x.shape)) < EXACT


def test_softmax_and_losses_match_loops() -> None:
    rng = np.random.default_rng(3)
    z, labels = rng.standard_normal((3, 2, 5)) * 4, rng.integers(0, 5, (3, 2))
    rows = [list(r) for r in z.reshape(-1, 5)]
    soft = [[math.exp(v) / sum(math.exp(u) for u in r) for v in r] for r in rows]
    assert rel_err(fwd(Softmax(), {}, z), np.reshape(soft, z.shape)) < EXACT
    xent = -sum(math.log(s[t]) for s, t in zip(soft, labels.flat, strict=True)) / len(rows)
    assert fwd(SoftmaxCrossEntropy(), {}, (z, labels)) == pytest.approx(xent, rel=EXACT)
    targets = rng.integers(0, 2, z.shape).astype(float)
    bce = [
        -(t * math.log(1 / (1 + math.exp(-v))) + (1 - t) * math.log(1 - 1 / (1 + math.exp(-v))))
        for v, t in zip(z.flat, targets.flat, strict=True)
    ]
    assert fwd(SigmoidCrossEntropy(), {}, (z, targets)) == pytest.approx(sum(bce) / len(bce), rel=EXACT)


def test_losses_stay_finite_on_huge_logits() -> None:
    z = np.array([[1000.0, -1000.0, 0.0]])
    assert fwd(SoftmaxCrossEntropy(), {}, (z, np.array([1]))) == pytest.approx(2000.0)
    assert fwd(SigmoidCrossEntropy(), {}, (z, np.array([[0.0, 1.0, 1.0]]))) == pytest.approx(
        (1000 + 1000 + math.log(2)) / 3
    )


def test_activations_match_math() -> None:
    x = np.linspace(-4, 4, 17)[None]
    c = math.sqrt(2 / math.pi)
    refs = {
        ReLU(): [max(v, 0.0) for v in x.flat],
        Tanh(): [math.tanh(v) for v in x.flat],
        Sigmoid(): [1 / (1 + math.exp(-v)) for v in x.flat],
        GELU(): [0.5 * v * (1 + math.tanh(c * (v + 0.044715 * v**3))) for v in x.flat],
    }
    for op, ref in refs.items():
        assert rel_err(fwd(op, {}, x)[0], ref) < EXACT, op
    # the tanh form stays within 1e-3 of the exact (erf) GELU
    exact = [0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x.flat]
    assert np.max(np.abs(fwd(GELU(), {}, x)[0] - exact)) < 1e-3


def test_embedding_matches_loops() -> None:
    rng = np.random.default_rng(4)
    idx = np.array([[0, 3, 3], [4, 1, 0]])
    table = rng.standard_normal((5, 2))
    gathered = [[list(table[i]) for i in row] for row in idx.tolist()]
    assert fwd(Embedding(5, 2), {"table": table}, idx).tolist() == gathered
    sums = [[sum(table[i][d] for i in row) for d in range(2)] for row in idx.tolist()]
    assert rel_err(fwd(Embedding(5, 2, "sum"), {"table": table}, idx), sums) < EXACT
    assert rel_err(fwd(Embedding(5, 2, "mean"), {"table": table}, idx), np.array(sums) / 3) < EXACT


def test_interaction_matches_loops() -> None:
    z = np.random.default_rng(5).standard_normal((2, 4, 3))
    expected = [
        list(s[0]) + [sum(s[i][k] * s[j][k] for k in range(3)) for i in range(4) for j in range(i)]
        for s in z.tolist()
    ]
    assert rel_err(fwd(DotInteraction(), {}, z), expected) < EXACT
    # the diagonal too, then zeros up to a multiple of 8: 3 + 10 -> 16
    with_self = [
        list(s[0]) + [sum(s[i][k] * s[j][k] for k in range(3)) for i in range(4)
                      for j in range(i + 1)] + [0.0] * 3
        for s in z.tolist()
    ]
    assert rel_err(fwd(DotInteraction(True, 8), {}, z), with_self) < EXACT


@pytest.mark.parametrize("causal", [False, True])
def test_attention_matches_loops(causal: bool) -> None:
    rng = np.random.default_rng(6)
    op, (s, h, heads) = MultiHeadSelfAttention(2), (3, 4, 2)
    x = rng.standard_normal((2, s, h))
    p = random_params(op, (s, h), rng)
    d = h // heads
    y = attention_kernel.forward(op, p, x, causal=causal)[0]
    for b in range(2):
        qkv = [[sum(x[b, t, i] * p["qkv_kernel"][i, o] for i in range(h)) + p["qkv_bias"][o]
                for o in range(3 * h)] for t in range(s)]
        context = [[0.0] * h for _ in range(s)]
        for hd in range(heads):
            cols = range(hd * d, hd * d + d)
            for t in range(s):
                seen = range(t + 1) if causal else range(s)
                scores = [sum(qkv[t][c] * qkv[u][h + c] for c in cols) / math.sqrt(d) for u in seen]
                weights = [math.exp(v - max(scores)) for v in scores]
                for c in cols:
                    values = [qkv[u][2 * h + c] for u in seen]
                    context[t][c] = sum(wt * v for wt, v in zip(weights, values, strict=True)) / sum(weights)
        out = [[sum(context[t][i] * p["out_kernel"][i, o] for i in range(h)) + p["out_bias"][o]
                for o in range(h)] for t in range(s)]
        assert rel_err(y[b], out) < EXACT


def sig(v: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-v))


@pytest.mark.parametrize("kind", [LSTM, GRU])
def test_recurrent_matches_step_by_step_equations(kind: type) -> None:
    """One sample at a time, gate by gate, from the Keras equations."""
    rng = np.random.default_rng(7)
    op, (t, i, h) = kind(3), (4, 2, 3)
    x = rng.standard_normal((2, t, i))
    p = random_params(op, (t, i), rng)
    w = [p["kernel"][:, g * h : (g + 1) * h] for g in range(op.gates)]
    u = [p["recurrent_kernel"][:, g * h : (g + 1) * h] for g in range(op.gates)]
    y = fwd(op, p, x)
    for b in range(2):
        state, cell = np.zeros(h), np.zeros(h)
        for s in range(t):
            v = x[b, s]
            if kind is LSTM:
                bias = [p["bias"][g * h : (g + 1) * h] for g in range(4)]
                gi, gf, go = (sig(v @ w[g] + state @ u[g] + bias[g]) for g in (0, 1, 3))
                cell = gf * cell + gi * np.tanh(v @ w[2] + state @ u[2] + bias[2])
                state = go * np.tanh(cell)
            else:
                bi = [p["bias"][0, g * h : (g + 1) * h] for g in range(3)]
                br = [p["bias"][1, g * h : (g + 1) * h] for g in range(3)]
                z = sig(v @ w[0] + bi[0] + state @ u[0] + br[0])
                r = sig(v @ w[1] + bi[1] + state @ u[1] + br[1])
                cand = np.tanh(v @ w[2] + bi[2] + r * (state @ u[2] + br[2]))
                state = z * state + (1 - z) * cand
            assert rel_err(y[b, s], state) < EXACT
    last = kind(3, return_sequences=False)
    assert rel_err(fwd(last, p, x), y[:, -1]) < EXACT


def test_add_sums_operands() -> None:
    a, b, c = np.ones((2, 3)), np.full((2, 3), 2.0), np.full((2, 3), 4.0)
    assert fwd(Add(3), {}, (a, b, c)).tolist() == [[7.0] * 3] * 2
    assert a.tolist() == [[1.0] * 3] * 2  # operands are not modified


# --- optimizers ----------------------------------------------------------------------


def test_sgd_and_adam_match_their_update_rules() -> None:
    w, g = np.array([1.0, -2.0]), np.array([0.5, 0.25])
    assert sgd(w, g, 0.1).tolist() == [0.95, -2.025]
    m, v, ws = np.zeros(2), np.zeros(2), w.copy()
    ref_w, ref_m, ref_v = list(w), [0.0, 0.0], [0.0, 0.0]
    for step in (1, 2, 3):
        ws, m, v = adam(ws, g, m, v, step, 0.01)
        for k in range(2):
            ref_m[k] = 0.9 * ref_m[k] + 0.1 * g[k]
            ref_v[k] = 0.999 * ref_v[k] + 0.001 * g[k] ** 2
            lr_t = 0.01 * math.sqrt(1 - 0.999**step) / (1 - 0.9**step)
            ref_w[k] -= lr_t * ref_m[k] / (math.sqrt(ref_v[k]) + 1e-7)
    assert rel_err(ws, ref_w) < EXACT
    # Adam's first step moves every weight by about lr, whatever the gradient's scale
    for scale in (1.0, 100.0):
        first, _, _ = adam(w, g * scale, np.zeros(2), np.zeros(2), 1, 0.01)
        assert np.allclose(w - first, 0.01, rtol=1e-3)


def test_update_keeps_adam_state_between_steps() -> None:
    params = {"d": {"kernel": np.ones(2)}}
    grads = {"d": {"kernel": np.array([1.0, -1.0])}}
    state: dict = {}
    update(params, grads, state, "adam", 0.1)
    update(params, grads, state, "adam", 0.1)
    assert state["step"] == 2
    assert params["d"]["kernel"] == pytest.approx([0.8, 1.2], rel=1e-5)
    with pytest.raises(ValueError, match="optimizer must be 'sgd' or 'adam', got 'rmsprop'"):
        update(params, grads, state, "rmsprop", 0.1)  # type: ignore[arg-type]


# --- parameter counts ----------------------------------------------------------------

OP_CASES: list[tuple[Op, Shape]] = [
    (Conv2D(4, 3), (6, 6, 2)),
    (Conv2D(4, (3, 2), 2, "same", use_bias=False), (5, 7, 3)),
    (MaxPool2D(2), (4, 4, 3)),
    (AvgPool2D(3, 1, "same"), (4, 5, 2)),
    (GlobalAvgPool(), (3, 3, 4)),
    (Dense(5), (4, 3)),
    (Dense(5, use_bias=False), (3,)),
    (Dense(5, tied=True), (3,)),
    (Flatten(), (2, 3, 4)),
    (ReLU(), (6,)),
    (GELU(), (2, 3)),
    (Tanh(), (4,)),
    (Sigmoid(), (4,)),
    (BatchNorm(), (3, 3, 4)),
    (LayerNorm(), (3, 6)),
    (RMSNorm(), (3, 6)),
    (SiLU(), (2, 3)),
    (SwiGLU(), (2, 6)),
    (MoE(4, 2, 5), (3, 4)),
    (MoE(3, 1, 5, activation="gelu", shared_experts=1), (3, 4)),
    (Embedding(11, 4), (5,)),
    (Embedding(11, 4, "sum"), (5,)),
    (LSTM(5), (4, 3)),
    (LSTM(5, return_sequences=False), (4, 3)),
    (GRU(5), (4, 3)),
    (MultiHeadSelfAttention(2), (3, 4)),
    (MultiHeadSelfAttention(2, use_bias=False), (3, 4)),
    (MultiHeadSelfAttention(4, False, kv_heads=2, head_dim=6, rope=True, qkv_bias=True), (3, 4)),
    (MultiHeadSelfAttention(2, dropout=0.3), (3, 4)),
    (Dropout(0.25), (2, 3)),
    (Softmax(), (2, 5)),
    (SoftmaxCrossEntropy(), (3, 5)),
    (SigmoidCrossEntropy(), (4,)),
    (Add(), (2, 3)),
    (Add(3), (2, 3)),
    (DotInteraction(), (4, 3)),
    (DotInteraction(self_interaction=True, pad_to=8), (4, 3)),
]


def test_every_op_type_has_a_kernel_and_a_case() -> None:
    assert {type(op) for op, _ in OP_CASES} == set(KERNELS)


def test_every_registered_op_has_a_kernel_and_every_op_is_registered() -> None:
    def kinds(cls: type[Op]) -> set[type[Op]]:  # the op classes that name a kind
        subs = set().union(*(kinds(s) for s in cls.__subclasses__()))
        return subs | {cls} if "kind" in vars(cls) else subs

    assert set(KERNELS) == set(OPS.values()) == kinds(Op)
    assert all(kind == cls.kind for kind, cls in OPS.items())
    assert set(LAYER_OPS) == set(OPS) - MULTI_INPUT


@pytest.mark.parametrize(("op", "shape"), OP_CASES, ids=lambda v: repr(v))
def test_init_params_total_op_params(op: Op, shape: Shape) -> None:
    params = init_params(op, shape, np.random.default_rng(0), np.float64)
    assert sum(p.size for p in params.values()) == op.params(shape)


@pytest.mark.parametrize(
    "model",
    [
        seed_cnn(),
        resnet((1, 1, 1, 1), "resnet_tiny", classes=10, image=32),
        lstm_lm(vocab=50, embed=8, hidden=8, layers=2, seq_len=5),
        gpt(2, 16, 50, 8, 2),
        bert("bert_tiny", 2, 16, 2, 32, vocab=50, max_positions=16, seq_len=8),
        dlrm(DLRMSpec("dlrm_tiny", (20, 7, 3), dim=4, dense_features=4, bottom=(8, 4),
                      top=(8, 1), pad_to=8)),
    ],
    ids=lambda m: m.name,
)
def test_init_model_params_total_model_params(model) -> None:
    params = init_model_params(model, np.random.default_rng(0))
    assert sum(p.size for layer in params.values() for p in layer.values()) == model.params()


def test_seed_cnn_has_225034_parameters() -> None:
    params = init_model_params(seed_cnn(), np.random.default_rng(0))
    assert sum(p.size for layer in params.values() for p in layer.values()) == 225_034


# --- precision: float16 and float32 against float64 ----------------------------------

# Normwise relative error bound: 20 unit roundoffs u (float32 u = 6e-8, float16
# u = 4.9e-4), i.e. 1.2e-6 and 9.8e-3. These kernels sum a few dozen terms per output
# and the worst case measured is ~5u (attention, LSTM, GRU: softmax and recurrences
# compound), so 20u leaves 4x margin while a float16 overflow or an accidental
# float64 upcast (caught by the dtype checks) would not pass.
ROUNDOFFS = 20


def precision_bound(dtype: type) -> float:
    return ROUNDOFFS * float(np.finfo(dtype).eps) / 2


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(("op", "shape"), [c for c in OP_CASES if not getattr(c[0], "tied", False)],
                         ids=lambda v: repr(v))
def test_low_precision_tracks_float64(op: Op, shape: Shape, dtype: type) -> None:
    rng = np.random.default_rng(8)
    kernel = KERNELS[type(op)]
    # round inputs and weights to float16 first: every run sees the same numbers
    x = cast(cast(make_input(op, shape, rng, batch=3), np.float16), np.float64)
    params = cast(cast(random_params(op, shape, rng), np.float16), np.float64)
    y64, cache64 = kernel.forward(op, params, x)
    dy = cast(cast(rng.standard_normal(np.shape(y64)), np.float16), np.float64)
    dx64, g64 = kernel.backward(op, params, cache64, dy)
    low_params = cast(params, dtype)
    y, cache = kernel.forward(op, low_params, cast(x, dtype))
    dx, grads = kernel.backward(op, low_params, cache, cast(dy, dtype))
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads.values())
    tol = precision_bound(dtype)
    assert rel_err(y, y64) < tol
    for name in g64:
        assert rel_err(grads[name], g64[name]) < tol, name
    for low, ref in zip(*(d if isinstance(d, tuple) else (d,) for d in (dx, dx64)), strict=True):
        if ref is not None:
            assert low.dtype == dtype and rel_err(low, ref) < tol


# --- bad input -----------------------------------------------------------------------


def test_bad_inputs_are_named() -> None:
    table = {"table": np.zeros((5, 2))}
    with pytest.raises(ValueError, match=r"Embedding: indices must lie in \[0, 5\), got \[-1, 2\]"):
        fwd(Embedding(5, 2), table, np.array([[-1, 2]]))
    with pytest.raises(ValueError, match=r"SoftmaxCrossEntropy: labels of shape \(2,\) expected"):
        fwd(SoftmaxCrossEntropy(), {}, (np.zeros((2, 3)), np.zeros((2, 1), int)))
    with pytest.raises(ValueError, match=r"tied Dense: pass the owner's matrix"):
        fwd(Dense(3, tied=True), {}, np.zeros((1, 2)))
    with pytest.raises(ValueError, match="Add: expected 3 inputs, got 2"):
        fwd(Add(3), {}, (np.zeros(1), np.zeros(1)))


def residual_model():
    s = LayerStack("residual", (3,))
    s.add("fc", Dense(3))
    s.add("add", Add())
    return s.build()


def test_network_wiring_errors_name_the_layer() -> None:
    model = residual_model()
    with pytest.raises(ValueError, match=r"layer 'add': expected 2 source\(s\), got \['fc'\]"):
        network(model)
    with pytest.raises(ValueError, match=r"unknown layer 'ad'; did you mean 'add'\?"):
        network(model, {"ad": ("fc", "input")})
    with pytest.raises(ValueError, match=r"source 'later' is not 'input' or an earlier layer"):
        network(model, {"add": ("fc", "later")})
    net = network(model, {"add": ("fc", "input")})
    y = run_forward(net, init_model_params(model, np.random.default_rng(0)), np.ones((2, 3))).output
    assert y.shape == (2, 3)
    cnn = seed_cnn()
    with pytest.raises(ValueError, match="is a loss: pass labels"):
        run_forward(cnn, init_model_params(cnn, np.random.default_rng(0)), np.zeros((1, 28, 28, 1)))
