"""MoE kernel: softmax router, top-k selection, gelu|swiglu expert MLPs, gated sum.

Every expert runs on every token and the unselected ones are masked out (clear, not
fast: these kernels verify the cost side's shapes on small inputs). The top-k choice
is piecewise constant, so gradients flow through the selected gates and the experts.
Shared experts are added ungated. Capacity and imbalance shape only the cost side.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.activation import GELU_A, GELU_C, sigmoid
from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.base import Shape
from leptonsim.ops.moe import MoE


def init(op: MoE, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    h, f, n = input_shape[-1], op.expert_ffn, op.experts + op.shared_experts
    p = {"router": rng.normal(0, h ** -0.5, (h, op.experts)),
         "w1": rng.normal(0, h ** -0.5, (n, h, f)), "w2": rng.normal(0, f ** -0.5, (n, f, h))}
    if op.activation == "swiglu":
        p["w3"] = rng.normal(0, h ** -0.5, (n, h, f))
    return {k: v.astype(dtype) for k, v in p.items()}


def _act(op: MoE, h1: Array, h3: Array | None) -> tuple[Array, Array, Array | None]:
    """a, da/dh1, da/dh3."""
    if op.activation == "swiglu":
        s = sigmoid(h1)
        silu = h1 * s
        return silu * h3, s * (1 + h1 * (1 - s)) * h3, silu
    t = np.tanh(GELU_C * (h1 + GELU_A * h1**3))
    du = GELU_C * (1 + 3 * GELU_A * h1**2)
    return 0.5 * h1 * (1 + t), 0.5 * (1 + t) + 0.5 * h1 * (1 - t * t) * du, None


def forward(op: MoE, params: Params, x: Array) -> tuple[Array, Any]:
    xs = x.reshape(-1, x.shape[-1])
    logits = xs @ params["router"]
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    top = np.argsort(-p, axis=-1, kind="stable")[:, :op.top_k]
    mask = np.zeros_like(p)
    np.put_along_axis(mask, top, 1.0, axis=-1)
    gate = np.concatenate([mask * p, np.ones((len(xs), op.shared_experts), p.dtype)], axis=-1)
    h1 = np.einsum("nh,ehf->nef", xs, params["w1"])
    h3 = np.einsum("nh,ehf->nef", xs, params["w3"]) if "w3" in params else None
    a, da1, da3 = _act(op, h1, h3)
    out = np.einsum("nef,efh->neh", a, params["w2"])
    y = np.einsum("ne,neh->nh", gate, out)
    return y.reshape(x.shape), (x.shape, xs, p, mask, gate, h3, a, da1, da3, out)


def backward(op: MoE, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    shape, xs, p, mask, gate, h3, a, da1, da3, out = cache
    dys = dy.reshape(-1, shape[-1])
    dgate = np.einsum("nh,neh->ne", dys, out)[:, :op.experts] * mask
    dlogits = p * (dgate - (p * dgate).sum(axis=-1, keepdims=True))
    dout = gate[:, :, None] * dys[:, None, :]
    grads = {"router": xs.T @ dlogits, "w2": np.einsum("nef,neh->efh", a, dout)}
    da = np.einsum("neh,efh->nef", dout, params["w2"])
    dh1 = da * da1
    grads["w1"] = np.einsum("nh,nef->ehf", xs, dh1)
    dx = dlogits @ params["router"].T + np.einsum("nef,ehf->nh", dh1, params["w1"])
    if h3 is not None:
        dh3 = da * da3
        grads["w3"] = np.einsum("nh,nef->ehf", xs, dh3)
        dx = dx + np.einsum("nef,ehf->nh", dh3, params["w3"])
    return dx.reshape(shape), grads
