"""Multi-head self-attention kernels, input (N, S, H) -> (N, S, H).

Weights: qkv_kernel (H, 3H) projecting to Q, K and V at once, qkv_bias (3H,),
out_kernel (H, H) and out_bias (H,): 4H^2 + 4H, as the cost side counts. Scores are
Q K^T / sqrt(d) per head (d = H / heads); softmax is the stable form. The unfused
form: scores and probabilities are materialised, (N, heads, S, S) each. With
op.dropout the probabilities are dropped (kernels/dropout.py's fixed-seed mask) before
they weight V, and the backward applies the same mask to their gradient.
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
    h = input_shape[1]
    params = {
        # Q, K and V each Glorot-initialised as an (H, H) matrix
        "qkv_kernel": np.concatenate([glorot(rng, (h, h), h, h, dtype) for _ in range(3)], axis=1),
        "out_kernel": glorot(rng, (h, h), h, h, dtype),
    }
    if op.use_bias:
        params["qkv_bias"] = zeros((3 * h,), dtype)
        params["out_bias"] = zeros((h,), dtype)
    return params


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
    op.output_shape(x.shape[1:])
    q, k, v = (_split_heads(t, op.heads) for t in np.split(_affine(x, params, "qkv"), 3, axis=-1))
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
    grads = _affine_grads(context, dy, op.use_bias, "out")
    dcontext = _split_heads(dy @ params["out_kernel"].T, op.heads)
    dv = (p if keep is None else p * keep).swapaxes(-1, -2) @ dcontext
    dp = dcontext @ v.swapaxes(-1, -2)
    # masked scores have p = 0, so they receive no gradient without another mask
    dscores = softmax_backward_rows(p, dp if keep is None else dp * keep) * scale
    dq, dk = dscores @ k, dscores.swapaxes(-1, -2) @ q
    dqkv = np.concatenate([_merge_heads(dq), _merge_heads(dk), _merge_heads(dv)], axis=-1)
    grads.update(_affine_grads(x, dqkv, op.use_bias, "qkv"))
    return dqkv @ params["qkv_kernel"].T, grads


def _affine_grads(x: Array, dy: Array, use_bias: bool, name: str) -> Params:
    rows_x, rows_dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    grads = {f"{name}_kernel": rows_x.T @ rows_dy}
    if use_bias:
        grads[f"{name}_bias"] = rows_dy.sum(axis=0)
    return grads
