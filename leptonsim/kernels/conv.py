"""Conv2D kernels, NHWC: im2col through a strided view, then one GEMM.

Weights are Keras-shaped: kernel (kh, kw, C_in, filters), bias (filters,).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.base import Array, InputGrad, Params, glorot, zeros
from leptonsim.kernels.window import pad, pads_for, scatter_windows, windows
from leptonsim.ops.base import Shape
from leptonsim.ops.conv import Conv2D


def init(op: Conv2D, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    (kh, kw), c = op.kernel_hw, input_shape[2]
    shape = (kh, kw, c, op.filters)
    params = {"kernel": glorot(rng, shape, kh * kw * c, kh * kw * op.filters, dtype)}
    if op.use_bias:
        params["bias"] = zeros((op.filters,), dtype)
    return params


def forward(op: Conv2D, params: Params, x: Array) -> tuple[Array, Any]:
    n, h, w, c = x.shape
    ho, wo, f = op.output_shape((h, w, c))
    kernel, stride = op.kernel_hw, op.stride_hw
    pads = pads_for(op.padding, (h, w), kernel, stride)
    xpad = pad(x, pads)
    win = windows(xpad, kernel, stride, (ho, wo))  # (N, Ho, Wo, C, kh, kw)
    # im2col: one copy, rows = output pixels, columns ordered (kh, kw, C) like the kernel
    cols = win.transpose(0, 1, 2, 4, 5, 3).reshape(n * ho * wo, -1)
    y = cols @ params["kernel"].reshape(-1, f)
    if op.use_bias:
        y += params["bias"]
    return y.reshape(n, ho, wo, f), (cols, xpad.shape, pads)


def backward(op: Conv2D, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    cols, padded_shape, pads = cache
    n, ho, wo, f = dy.shape
    kernel = params["kernel"]
    dy2 = dy.reshape(-1, f)
    grads = {"kernel": (cols.T @ dy2).reshape(kernel.shape)}
    if op.use_bias:
        grads["bias"] = dy2.sum(axis=0)
    kh, kw, c, _ = kernel.shape
    dcols = (dy2 @ kernel.reshape(-1, f).T).reshape(n, ho, wo, kh, kw, c)
    dx = scatter_windows(dcols.transpose(0, 1, 2, 5, 3, 4), padded_shape, op.stride_hw, pads)
    return dx, grads
