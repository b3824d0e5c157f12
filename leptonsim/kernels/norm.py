"""BatchNorm (training mode) and LayerNorm kernels over the last (feature) axis.

Both normalise x to x_hat = (x - mean) / sqrt(var + EPS) and learn gamma, beta per
feature. BatchNorm takes the statistics per feature over batch and spatial axes,
LayerNorm per row over the features. The moving statistics BatchNorm keeps for
inference are not trained and not kept here: these kernels run training steps.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.base import Shape
from leptonsim.ops.norm import BatchNorm, RMSNorm, _Norm

# PyTorch's default; BERT's 1e-12 would vanish below float16's smallest subnormal
EPS = 1e-5


def init(op: _Norm, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    c = input_shape[-1]
    if isinstance(op, RMSNorm):
        return {"gamma": np.ones(c, dtype=dtype)}
    return {"gamma": np.ones(c, dtype=dtype), "beta": np.zeros(c, dtype=dtype)}


def _axes(op: _Norm, x: Array) -> tuple[int, ...]:
    """The axes one statistic reduces over."""
    return tuple(range(x.ndim - 1)) if isinstance(op, BatchNorm) else (x.ndim - 1,)


def forward(op: _Norm, params: Params, x: Array) -> tuple[Array, Any]:
    if isinstance(op, RMSNorm):
        return rms_forward(op, params, x)
    axes = _axes(op, x)
    centred = x - x.mean(axis=axes, keepdims=True)
    rstd = 1 / np.sqrt((centred * centred).mean(axis=axes, keepdims=True) + EPS)
    x_hat = centred * rstd
    return params["gamma"] * x_hat + params["beta"], (x_hat, rstd)


def backward(op: _Norm, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    if isinstance(op, RMSNorm):
        return rms_backward(op, params, cache, dy)
    x_hat, rstd = cache
    axes = _axes(op, x_hat)
    rows = tuple(range(dy.ndim - 1))  # gamma and beta are shared by every row
    grads = {"gamma": (dy * x_hat).sum(axis=rows), "beta": dy.sum(axis=rows)}
    g = dy * params["gamma"]
    # the mean and variance depend on every x they were taken over: two correction terms
    dx = rstd * (
        g - g.mean(axis=axes, keepdims=True) - x_hat * (g * x_hat).mean(axis=axes, keepdims=True)
    )
    return dx, grads



def rms_forward(op: RMSNorm, params: Params, x: Array) -> tuple[Array, Any]:
    rrms = 1 / np.sqrt((x * x).mean(axis=-1, keepdims=True) + EPS)
    x_hat = x * rrms
    return params["gamma"] * x_hat, (x_hat, rrms)


def rms_backward(op: RMSNorm, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    x_hat, rrms = cache
    rows = tuple(range(dy.ndim - 1))
    g = dy * params["gamma"]
    # the rms depends on every x of the row: one correction term (no mean to correct)
    dx = rrms * (g - x_hat * (g * x_hat).mean(axis=-1, keepdims=True))
    return dx, {"gamma": (dy * x_hat).sum(axis=rows)}
