"""Elementwise activation kernels: ReLU, GELU (tanh form), Tanh, Sigmoid.

ReLU and GELU save their input; Tanh and Sigmoid save their output, from which the
derivative follows with no transcendental (matching the cost side's bytes).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.activation import GELU, ReLU, Sigmoid, SiLU, SwiGLU, Tanh

GELU_C = math.sqrt(2.0 / math.pi)
GELU_A = 0.044715


def sigmoid(x: Array) -> Array:
    """Logistic function without overflow: exp only ever sees -|x|."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def relu_forward(op: ReLU, params: Params, x: Array) -> tuple[Array, Any]:
    return np.maximum(x, 0), x


def relu_backward(op: ReLU, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return dy * (cache > 0), {}


def gelu_forward(op: GELU, params: Params, x: Array) -> tuple[Array, Any]:
    t = np.tanh(GELU_C * (x + GELU_A * x**3))
    return 0.5 * x * (1 + t), x


def gelu_backward(op: GELU, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    x = cache
    t = np.tanh(GELU_C * (x + GELU_A * x**3))  # recomputed, as the cost side assumes
    du = GELU_C * (1 + 3 * GELU_A * x**2)
    return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * du), {}


def tanh_forward(op: Tanh, params: Params, x: Array) -> tuple[Array, Any]:
    y = np.tanh(x)
    return y, y


def tanh_backward(op: Tanh, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return dy * (1 - cache * cache), {}


def sigmoid_forward(op: Sigmoid, params: Params, x: Array) -> tuple[Array, Any]:
    y = sigmoid(x)
    return y, y


def sigmoid_backward(op: Sigmoid, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return dy * cache * (1 - cache), {}


def silu_forward(op: SiLU, params: Params, x: Array) -> tuple[Array, Any]:
    return x * sigmoid(x), x


def silu_backward(op: SiLU, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    s = sigmoid(cache)  # recomputed, as the cost side assumes
    return dy * s * (1 + cache * (1 - s)), {}


def swiglu_forward(op: SwiGLU, params: Params, x: Array) -> tuple[Array, Any]:
    a, b = np.split(x, 2, axis=-1)
    return a * sigmoid(a) * b, (a, b)


def swiglu_backward(op: SwiGLU, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    a, b = cache
    s = sigmoid(a)  # recomputed, as the cost side assumes
    return np.concatenate([dy * b * s * (1 + a * (1 - s)), dy * a * s], axis=-1), {}
