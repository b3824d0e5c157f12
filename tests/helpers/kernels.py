"""Shared by the kernel tests: input makers, a finite-difference checker, small networks.

No tests live here; the name only matches the test_kernels*.py pattern.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from leptonsim.kernels import KERNELS, Network, init_params, network
from leptonsim.models import LayerStack
from leptonsim.ops import (
    GELU,
    LSTM,
    Add,
    Dense,
    Embedding,
    LayerNorm,
    MultiHeadSelfAttention,
    Op,
    SigmoidCrossEntropy,
    SoftmaxCrossEntropy,
)
from leptonsim.ops.base import Shape

Array = np.ndarray


def make_input(op: Op, shape: Shape, rng: np.random.Generator, batch: int = 2) -> Any:
    """A batch for `op` on per-sample `shape`: floats, indices, or (logits, labels)."""
    floats = rng.standard_normal((batch, *shape))
    if isinstance(op, Embedding):
        return rng.integers(0, op.vocab, (batch, *shape))
    if isinstance(op, SoftmaxCrossEntropy):
        return floats, rng.integers(0, shape[-1], (batch, *shape[:-1]))
    if isinstance(op, SigmoidCrossEntropy):
        return floats, rng.integers(0, 2, (batch, *shape)).astype(np.float64)
    if isinstance(op, Add):
        return tuple(rng.standard_normal((batch, *shape)) for _ in range(op.arity))
    return floats


def cast(x: Any, dtype: Any) -> Any:
    """Float arrays (also inside tuples and dicts) cast to dtype; integers untouched."""
    if isinstance(x, tuple):
        return tuple(cast(t, dtype) for t in x)
    if isinstance(x, dict):
        return {k: cast(v, dtype) for k, v in x.items()}
    if isinstance(x, np.ndarray) and np.issubdtype(x.dtype, np.floating):
        return x.astype(dtype)
    return x


def random_params(op: Op, shape: Shape, rng: np.random.Generator) -> dict[str, Array]:
    """float64 parameters moved off the initialiser's special points (zero bias, unit gamma)."""
    params = init_params(op, shape, rng, np.float64)
    return {k: v + 0.3 * rng.standard_normal(v.shape) for k, v in params.items()}


def rel_err(a: Any, b: Any, floor: float = 1e-12) -> float:
    """Normwise relative error ||a - b|| / max(||a||, ||b||, floor)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    scale = max(float(np.linalg.norm(a)), float(np.linalg.norm(b)), floor)
    return float(np.linalg.norm(a - b)) / scale


# Gradients smaller than this in norm are compared absolutely: finite-difference
# rounding noise (~1e-10 per entry) would otherwise dominate a vanishing gradient,
# e.g. LayerNorm over two features, whose output is almost constant at +-1.
GRAD_FLOOR = 1e-3


def numeric_grad(f: Callable[[], float], a: Array, h: float = 1e-6) -> Array:
    """Central differences of f() w.r.t. every entry of `a`, perturbed in place."""
    g = np.zeros_like(a)
    for idx in np.ndindex(a.shape):
        old = a[idx]
        a[idx] = old + h
        up = f()
        a[idx] = old - h
        down = f()
        a[idx] = old
        g[idx] = (up - down) / (2 * h)
    return g


def kernel_grad_errors(
    op: Op, shape: Shape, seed: int, batch: int = 2, forward: Callable[..., Any] | None = None
) -> dict[str, float]:
    """Relative error of every analytic gradient of op's kernel against finite differences.

    The scalar checked is L = sum(y * r) for a fixed random r, so backward receives a
    generic dy = r and every output element contributes.
    """
    rng = np.random.default_rng(seed)
    kernel = KERNELS[type(op)]
    fwd = forward or kernel.forward
    params = random_params(op, shape, rng)
    x = make_input(op, shape, rng, batch)
    y, cache = fwd(op, params, x)
    r = rng.standard_normal(np.shape(y))
    dx, grads = kernel.backward(op, params, cache, r)

    def loss() -> float:
        return float(np.sum(fwd(op, params, x)[0] * r))

    errors = {
        f"param {k}": rel_err(grads[k], numeric_grad(loss, v), GRAD_FLOOR) for k, v in params.items()
    }
    xs = x if isinstance(x, tuple) else (x,)
    dxs = dx if isinstance(dx, tuple) else (dx,)
    for i, (xi, di) in enumerate(zip(xs, dxs, strict=True)):
        if np.issubdtype(xi.dtype, np.floating) and di is not None:
            errors[f"input {i}"] = rel_err(di, numeric_grad(loss, xi), GRAD_FLOOR)
    return errors


def transformer_block(seq: int = 3, hidden: int = 4, heads: int = 2, vocab: int = 5) -> Network:
    """One pre-LN GPT block on (seq, hidden) states, a vocabulary head and its loss."""
    s = LayerStack("block", (seq, hidden))
    s.add("ln_1", LayerNorm())
    s.add("attn", MultiHeadSelfAttention(heads))
    s.add("attn.add", Add())
    s.add("ln_2", LayerNorm())
    s.add("mlp.fc", Dense(2 * hidden))
    s.add("mlp.gelu", GELU())
    s.add("mlp.proj", Dense(hidden))
    s.add("mlp.add", Add())
    s.add("head", Dense(vocab))
    s.add("loss", SoftmaxCrossEntropy())
    # the residual adds read the branch output and the block's / sub-block's input
    return network(s.build(), {"attn.add": ("attn", "input"), "mlp.add": ("mlp.proj", "attn.add")})


def lstm_lm_small(vocab: int = 12, embed: int = 6, hidden: int = 8, seq: int = 5) -> Network:
    s = LayerStack("lstm_lm_small", (seq,))
    s.add("embedding", Embedding(vocab, embed))
    s.add("lstm", LSTM(hidden))
    s.add("dense", Dense(vocab))
    s.add("loss", SoftmaxCrossEntropy())
    return network(s.build())
