"""Pooling kernels, NHWC: windowed max and average, and global average.

'same' padding follows TensorFlow: max pooling never selects the padding (it is
-inf), and average pooling divides by the number of real values in each window.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.kernels.window import Pads, pad, pads_for, scatter_windows, windows
from leptonsim.ops.pool import AvgPool2D, GlobalAvgPool, MaxPool2D, _Pool2D


def _windows(op: _Pool2D, x: Array, fill: float) -> tuple[Array, Pads, tuple[int, ...]]:
    """Every window of x as a view (N, Ho, Wo, C, kh, kw), the pads and padded shape."""
    _, h, w, c = x.shape
    ho, wo, _ = op.output_shape((h, w, c))
    pads = pads_for(op.padding, (h, w), op.pool_hw, op.stride_hw)
    xpad = pad(x, pads, fill)
    return windows(xpad, op.pool_hw, op.stride_hw, (ho, wo)), pads, xpad.shape


def max_forward(op: MaxPool2D, params: Params, x: Array) -> tuple[Array, Any]:
    win, pads, padded_shape = _windows(op, x, -np.inf)
    flat = win.reshape(*win.shape[:4], -1)
    # the first maximum of each window receives the gradient, as in TF and PyTorch
    arg = flat.argmax(axis=-1)
    y = np.take_along_axis(flat, arg[..., None], axis=-1)[..., 0]
    return y, (arg, pads, padded_shape)


def max_backward(op: MaxPool2D, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    arg, pads, padded_shape = cache
    kh, kw = op.pool_hw
    onehot = arg[..., None] == np.arange(kh * kw)
    dwin = (onehot * dy[..., None]).astype(dy.dtype).reshape(*dy.shape, kh, kw)
    return scatter_windows(dwin, padded_shape, op.stride_hw, pads), {}


def _counts(op: AvgPool2D, x: Array) -> Array:
    """Real (unpadded) values per window, shape (Ho, Wo, 1)."""
    ones = np.ones((1, *x.shape[1:3], 1), dtype=x.dtype)
    win, _, _ = _windows(op, ones, 0.0)
    return win.sum(axis=(-2, -1))[0]


def avg_forward(op: AvgPool2D, params: Params, x: Array) -> tuple[Array, Any]:
    win, pads, padded_shape = _windows(op, x, 0.0)
    counts = _counts(op, x)
    return win.sum(axis=(-2, -1)) / counts, (counts, pads, padded_shape)


def avg_backward(op: AvgPool2D, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    counts, pads, padded_shape = cache
    kh, kw = op.pool_hw
    share = (dy / counts)[..., None, None]
    dwin = np.broadcast_to(share, (*dy.shape, kh, kw))
    return scatter_windows(dwin, padded_shape, op.stride_hw, pads), {}


def global_forward(op: GlobalAvgPool, params: Params, x: Array) -> tuple[Array, Any]:
    return x.mean(axis=(1, 2)), x.shape


def global_backward(
    op: GlobalAvgPool, params: Params, cache: Any, dy: Array
) -> tuple[InputGrad, Params]:
    n, h, w, c = cache
    return np.broadcast_to(dy[:, None, None, :] / (h * w), cache).copy(), {}
