"""Sliding windows over NHWC images, shared by convolution and pooling.

Padding follows TensorFlow: 'valid' pads nothing; 'same' pads so the output is
ceil(n / stride) long, splitting the padding with the extra row or column at the end.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from leptonsim.kernels.base import Array

Pads = tuple[tuple[int, int], tuple[int, int]]


def same_pads(n: int, k: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of one axis for 'same' output length ceil(n / stride)."""
    out = -(-n // stride)
    total = max((out - 1) * stride + k - n, 0)
    return total // 2, total - total // 2


def pads_for(
    padding: str, hw: tuple[int, int], kernel: tuple[int, int], stride: tuple[int, int]
) -> Pads:
    if padding == "valid":
        return (0, 0), (0, 0)
    return same_pads(hw[0], kernel[0], stride[0]), same_pads(hw[1], kernel[1], stride[1])


def pad(x: Array, pads: Pads, value: float = 0.0) -> Array:
    """x (N, H, W, C) with `pads` rows and columns of `value` around each image."""
    if pads == ((0, 0), (0, 0)):
        return x
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value)


def windows(
    xpad: Array, kernel: tuple[int, int], stride: tuple[int, int], out_hw: tuple[int, int]
) -> Array:
    """A strided view (N, H_out, W_out, C, kh, kw) of every window; no copy."""
    view = sliding_window_view(xpad, kernel, axis=(1, 2))
    return view[:, :: stride[0], :: stride[1]][:, : out_hw[0], : out_hw[1]]


def scatter_windows(
    dwin: Array, padded_shape: tuple[int, ...], stride: tuple[int, int], pads: Pads
) -> Array:
    """Adjoint of `windows` then `pad`: sum each window's gradient back into the image.

    dwin is (N, H_out, W_out, C, kh, kw). One strided add per kernel offset (kh * kw of
    them, each over the whole batch) handles overlapping windows without np.add.at.
    """
    _, ho, wo, _, kh, kw = dwin.shape
    (sh, sw), dxpad = stride, np.zeros(padded_shape, dtype=dwin.dtype)
    for i in range(kh):
        for j in range(kw):
            dxpad[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw] += dwin[..., i, j]
    (top, bottom), (left, right) = pads
    return dxpad[:, top : padded_shape[1] - bottom, left : padded_shape[2] - right]
