"""Multi-head self-attention kernels, input (N, S, H) -> (N, S, H).

Weights: qkv_kernel (H, q + 2 kv) projecting to Q, K and V at once, qkv_bias
(q + 2 kv,), out_kernel (q, H) and out_bias (H,), with q = heads * d and kv = kv_heads * d
(4H^2 + 4H for multi-head attention with d = H / heads), as the cost side counts.
Grouped-query attention shares each K, V head among heads / kv_heads query heads, so
their gradients sum over the group. Rotary embeddings (RoFormer, Su et al. 2021) rotate
each pair (x_i, x_{i + d/2}) of Q and K by position * theta^(-2i/d), theta = 10,000,
the "rotate half" layout of GPT-NeoX and Llama; the backward rotates back. Scores are
Q K^T / sqrt(d) per head; softmax is the stable form. The unfused form: scores and
probabilities are materialised, (N, heads, S, S) each.
With op.dropout the probabilities are dropped (kernels/dropout.py's fixed-seed mask)
before they weight V, and the backward applies the same mask to their gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.base import Array, InputGrad, Params, glorot, zeros
from leptonsim.kernels.dropout import mask
from leptonsim.kernels.softmax import softmax, softmax_backward_rows
from leptonsim.ops.attention import MultiHeadSelfAttention
from leptonsim.ops.base import Shape


def init(
    op: MultiHeadSelfAttention, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike
) -> Params:
    h, q, kv = op.widths(input_shape)
    params = {
        # Q, K and V each Glorot-initialised as a matrix of their own
        "qkv_kernel": np.concatenate([glorot(rng, (h, w), h, w, dtype) for w in (q, kv, kv)],
                                     axis=1),
        "out_kernel": glorot(rng, (q, h), q, h, dtype),
    }
    qkv_bias, out_bias = op._biases()
    if qkv_bias:
        params["qkv_bias"] = zeros((q + 2 * kv,), dtype)
    if out_bias:
        params["out_bias"] = zeros((h,), dtype)
    return params


ROPE_THETA = 10_000.0  # Su et al. 2021, eq. 15; Llama 3 uses 500,000 (same cost)


def _rotation(s: int, d: int, dtype: DTypeLike) -> tuple[Array, Array]:
    """cos and sin of each position's angles, (S, d), for the rotate-half layout."""
    freq = ROPE_THETA ** (-np.arange(0, d, 2) / d)
    angles = np.outer(np.arange(s), freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def _rotate(t: Array, cos: Array, sin: Array, sign: int = 1) -> Array:
    """Rotate (N, heads, S, d) by the angles (sign -1: by their negatives, the
    transpose, which is the backward)."""
    half = t.shape[-1] // 2
    turned = np.concatenate([-t[..., half:], t[..., :half]], axis=-1)
    return t * cos + sign * turned * sin


def _split_heads(t: Array, heads: int) -> Array:
    """(N, S, H) -> (N, heads, S, d)."""
    n, s, h = t.shape
    return t.reshape(n, s, heads, h // heads).transpose(0, 2, 1, 3)


def _merge_heads(t: Array) -> Array:
    """(N, heads, S, d) -> (N, S, H)."""
    n, heads, s, d = t.shape
    return t.transpose(0, 2, 1, 3).reshape(n, s, heads * d)


def _affine(x: Array, params: Params, name: str) -> Array:
    y = x @ params[f"{name}_kernel"]
    bias = params.get(f"{name}_bias")
    return y if bias is None else y + bias


def forward(
    op: MultiHeadSelfAttention, params: Params, x: Array, causal: bool = False
) -> tuple[Array, Any]:
    """Self-attention; causal=True masks each position's view of later ones (GPT)."""
    _, qw, kvw = op.widths(x.shape[1:])
    qkv = _affine(x, params, "qkv")
    q = _split_heads(qkv[..., :qw], op.heads)
    k, v = (_split_heads(t, op.groups) for t in np.split(qkv[..., qw:], 2, axis=-1))
    if op.rope:
        cos, sin = _rotation(x.shape[1], q.shape[-1], q.dtype)
        q, k = _rotate(q, cos, sin), _rotate(k, cos, sin)
    k, v = (np.repeat(t, op.heads // op.groups, axis=1) for t in (k, v))
    scale = 1 / math.sqrt(q.shape[-1])  # a Python float: it takes the tensors' dtype
    scores = (q @ k.swapaxes(-1, -2)) * scale
    if causal:
        s = x.shape[1]
        scores = np.where(np.triu(np.ones((s, s), dtype=bool), 1), -np.inf, scores)
    p = softmax(scores)
    keep = _keep(op, p)
    context = _merge_heads((p if keep is None else p * keep) @ v)
    return _affine(context, params, "out"), (x, q, k, v, p, keep, context, scale)


def _keep(op: MultiHeadSelfAttention, p: Array) -> Array | None:
    """The dropout's kept probabilities, scaled by 1 / (1 - dropout); None without."""
    if not op.dropout:
        return None
    return mask(p.shape, op.dropout).astype(p.dtype) * (1 / (1 - op.dropout))  # keeps the dtype


def backward(
    op: MultiHeadSelfAttention, params: Params, cache: Any, dy: Array
) -> tuple[InputGrad, Params]:
    x, q, k, v, p, keep, context, scale = cache
    qkv_bias, out_bias = op._biases()
    grads = _affine_grads(context, dy, out_bias, "out")
    dcontext = _split_heads(dy @ params["out_kernel"].T, op.heads)
    dv = (p if keep is None else p * keep).swapaxes(-1, -2) @ dcontext
    dp = dcontext @ v.swapaxes(-1, -2)
    # masked scores have p = 0, so they receive no gradient without another mask
    dscores = softmax_backward_rows(p, dp if keep is None else dp * keep) * scale
    dq, dk = dscores @ k, dscores.swapaxes(-1, -2) @ q
    dk, dv = (_group_sum(t, op.groups) for t in (dk, dv))  # shared K, V heads
    if op.rope:
        cos, sin = _rotation(x.shape[1], q.shape[-1], q.dtype)
        dq, dk = _rotate(dq, cos, sin, -1), _rotate(dk, cos, sin, -1)
    dqkv = np.concatenate([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)
    grads.update(_affine_grads(x, dqkv, qkv_bias, "qkv"))
    return dqkv @ params["qkv_kernel"].T, grads


def _group_sum(t: Array, groups: int) -> Array:
    """(N, heads, S, d) -> (N, groups, S, d): the sum over each group's query heads."""
    n, heads, s, d = t.shape
    return t.reshape(n, groups, heads // groups, s, d).sum(axis=2)


def _affine_grads(x: Array, dy: Array, use_bias: bool, name: str) -> Params:
    rows_x, rows_dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    grads = {f"{name}_kernel": rows_x.T @ rows_dy}
    if use_bias:
        grads[f"{name}_bias"] = rows_dy.sum(axis=0)
    return grads
