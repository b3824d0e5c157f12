"""LSTM and GRU kernels over (N, T, features), with full backpropagation through time.

Weights follow Keras: kernel (i, gates*h) for the input, recurrent_kernel
(h, gates*h), gate order i, f, g, o (LSTM) and z, r, n (GRU). LSTM has one bias per
gate; GRU is reset_after=True with an input and a recurrent bias, bias (2, 3h). The
initial state is zero. The input projection of every step is one GEMM before the
loop; only the h @ U product must wait for the previous step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.activation import sigmoid
from leptonsim.kernels.base import Array, InputGrad, Params, glorot
from leptonsim.ops.base import Shape
from leptonsim.ops.recurrent import GRU, LSTM, _Recurrent


def init(op: _Recurrent, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    i, h, g = input_shape[1], op.units, op.gates
    params = {
        "kernel": glorot(rng, (i, g * h), i, g * h, dtype),
        "recurrent_kernel": glorot(rng, (h, g * h), h, g * h, dtype),
    }
    if isinstance(op, LSTM):
        bias = np.zeros(g * h, dtype=dtype)
        bias[h : 2 * h] = 1  # Keras' unit_forget_bias: start by remembering
        params["bias"] = bias
    else:
        params["bias"] = np.zeros((2, g * h), dtype=dtype)
    return params


def _outputs(op: _Recurrent, hs: Array) -> Array:
    """The returned sequence, from hs (N, T+1, h) whose step 0 is the initial state."""
    return hs[:, 1:] if op.return_sequences else hs[:, -1]


def _step_grads(op: _Recurrent, dy: Array, shape: tuple[int, int, int]) -> Array:
    """dy spread over every step (N, T, h): zero where no output was returned."""
    if op.return_sequences:
        return dy
    dhs = np.zeros(shape, dtype=dy.dtype)
    dhs[:, -1] = dy
    return dhs


def _weight_grads(x: Array, hs: Array, dxw: Array, dhu: Array) -> tuple[Array, Array]:
    """dW from the input-projection gradients, dU from the recurrent ones, all steps."""
    flat = dxw.shape[-1]
    dw = x.reshape(-1, x.shape[-1]).T @ dxw.reshape(-1, flat)
    du = hs[:, :-1].reshape(-1, hs.shape[-1]).T @ dhu.reshape(-1, flat)
    return dw, du


def lstm_forward(op: LSTM, params: Params, x: Array) -> tuple[Array, Any]:
    n, t, _ = x.shape
    h, u = op.units, params["recurrent_kernel"]
    xw = x @ params["kernel"] + params["bias"]
    hs = np.zeros((n, t + 1, h), dtype=x.dtype)
    cs = np.zeros((n, t + 1, h), dtype=x.dtype)
    acts = np.empty((n, t, 4 * h), dtype=x.dtype)  # gate activations, saved for backward
    for s in range(t):
        z = xw[:, s] + hs[:, s] @ u
        acts[:, s] = sigmoid(z)  # i, f, o; the g slice is overwritten with its tanh
        acts[:, s, 2 * h : 3 * h] = np.tanh(z[:, 2 * h : 3 * h])
        i, f, g, o = np.split(acts[:, s], 4, axis=-1)
        cs[:, s + 1] = f * cs[:, s] + i * g
        hs[:, s + 1] = o * np.tanh(cs[:, s + 1])
    return _outputs(op, hs), (x, hs, cs, acts)


def lstm_backward(op: LSTM, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    x, hs, cs, acts = cache
    n, t, _ = x.shape
    u = params["recurrent_kernel"]
    dhs = _step_grads(op, dy, hs[:, 1:].shape)
    dz = np.empty_like(acts)  # gradient of the gate pre-activations
    dh_next = np.zeros_like(hs[:, 0])
    dc_next = np.zeros_like(cs[:, 0])
    for s in reversed(range(t)):
        i, f, g, o = np.split(acts[:, s], 4, axis=-1)
        dh = dhs[:, s] + dh_next
        tc = np.tanh(cs[:, s + 1])
        dc = dc_next + dh * o * (1 - tc * tc)
        dz[:, s] = np.concatenate(
            [dc * g * i * (1 - i), dc * cs[:, s] * f * (1 - f), dc * i * (1 - g * g),
             dh * tc * o * (1 - o)],
            axis=-1,
        )
        dc_next = dc * f
        dh_next = dz[:, s] @ u.T
    dw, du = _weight_grads(x, hs, dz, dz)
    grads = {"kernel": dw, "recurrent_kernel": du, "bias": dz.sum(axis=(0, 1))}
    return dz @ params["kernel"].T, grads


def gru_forward(op: GRU, params: Params, x: Array) -> tuple[Array, Any]:
    n, t, _ = x.shape
    h, u, bias = op.units, params["recurrent_kernel"], params["bias"]
    xw = x @ params["kernel"] + bias[0]
    hs = np.zeros((n, t + 1, h), dtype=x.dtype)
    # per step: z, r, n and the recurrent candidate term U_n h + b_n that r gates
    saved = np.empty((n, t, 4 * h), dtype=x.dtype)
    for s in range(t):
        hu = hs[:, s] @ u + bias[1]
        zr = sigmoid(xw[:, s, : 2 * h] + hu[:, : 2 * h])
        cand = np.tanh(xw[:, s, 2 * h :] + zr[:, h:] * hu[:, 2 * h :])
        saved[:, s] = np.concatenate([zr, cand, hu[:, 2 * h :]], axis=-1)
        z = zr[:, :h]
        hs[:, s + 1] = z * hs[:, s] + (1 - z) * cand  # Keras: z keeps the old state
    return _outputs(op, hs), (x, hs, saved)


def gru_backward(op: GRU, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    x, hs, saved = cache
    n, t, _ = x.shape
    u = params["recurrent_kernel"]
    dhs = _step_grads(op, dy, hs[:, 1:].shape)
    dxw = np.empty((n, t, u.shape[1]), dtype=x.dtype)  # d(x W + b_input) per step
    dhu = np.empty_like(dxw)  # d(h U + b_recurrent) per step
    dh_next = np.zeros_like(hs[:, 0])
    for s in reversed(range(t)):
        z, r, cand, hun = np.split(saved[:, s], 4, axis=-1)
        dh = dhs[:, s] + dh_next
        dz = dh * (hs[:, s] - cand) * z * (1 - z)
        dn = dh * (1 - z) * (1 - cand * cand)
        dr = dn * hun * r * (1 - r)
        dxw[:, s] = np.concatenate([dz, dr, dn], axis=-1)
        dhu[:, s] = np.concatenate([dz, dr, dn * r], axis=-1)
        dh_next = dh * z + dhu[:, s] @ u.T
    dw, du = _weight_grads(x, hs, dxw, dhu)
    db = np.stack([dxw.sum(axis=(0, 1)), dhu.sum(axis=(0, 1))])
    return dxw @ params["kernel"].T, {"kernel": dw, "recurrent_kernel": du, "bias": db}
