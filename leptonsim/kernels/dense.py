"""Dense (a matmul on the last axis, plus bias) and Flatten kernels.

A tied Dense owns only its bias; the caller passes the owner's matrix as
params["kernel"] and adds grads["kernel"] into the owner's gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.base import Array, InputGrad, Params, glorot, zeros
from leptonsim.ops.base import Shape
from leptonsim.ops.dense import Dense, Flatten


def init(op: Dense, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    params: Params = {}
    if not op.tied:
        fan_in = input_shape[-1]
        params["kernel"] = glorot(rng, (fan_in, op.units), fan_in, op.units, dtype)
    if op.use_bias:
        params["bias"] = zeros((op.units,), dtype)
    return params


def forward(op: Dense, params: Params, x: Array) -> tuple[Array, Any]:
    if "kernel" not in params:
        raise ValueError("tied Dense: pass the owner's matrix as params['kernel']")
    y = x @ params["kernel"]
    if op.use_bias:
        y += params["bias"]
    return y, x


def backward(op: Dense, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    x, kernel = cache, params["kernel"]
    # leading axes (batch, tokens, steps) are rows sharing the weights
    rows_x, rows_dy = x.reshape(-1, x.shape[-1]), dy.reshape(-1, dy.shape[-1])
    grads = {"kernel": rows_x.T @ rows_dy}
    if op.use_bias:
        grads["bias"] = rows_dy.sum(axis=0)
    return dy @ kernel.T, grads


def flatten_forward(op: Flatten, params: Params, x: Array) -> tuple[Array, Any]:
    return x.reshape(x.shape[0], -1), x.shape


def flatten_backward(op: Flatten, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return dy.reshape(cache), {}
