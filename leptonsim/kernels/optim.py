"""Optimizer updates: plain SGD and Adam, as the cost side counts them.

SGD is w -= lr * g. Adam keeps moving averages m and v and folds the bias
corrections into the step size (Kingma & Ba's "efficient" form, as Keras does):
    lr_t = lr * sqrt(1 - beta2^t) / (1 - beta1^t);  w -= lr_t * m / (sqrt(v) + eps)
The per-tensor functions are pure; `update` applies them to a model's parameters,
replacing arrays in the caller's dicts.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from leptonsim.kernels.base import Array, Params

Optimizer = Literal["sgd", "adam"]
OPTIMIZERS: tuple[Optimizer, ...] = ("sgd", "adam")
BETA1, BETA2 = 0.9, 0.999
EPS = 1e-7  # Keras' default; 1e-8 is below float16's smallest subnormal (6e-8)

ModelParams = dict[str, Params]  # layer name -> that layer's parameters


def sgd(w: Array, g: Array, lr: float) -> Array:
    return w - lr * g


def adam(
    w: Array,
    g: Array,
    m: Array,
    v: Array,
    step: int,
    lr: float,
    beta1: float = BETA1,
    beta2: float = BETA2,
    eps: float = EPS,
) -> tuple[Array, Array, Array]:
    """One Adam step (step counts from 1); returns the new (w, m, v)."""
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * (g * g)
    lr_t = lr * math.sqrt(1 - beta2**step) / (1 - beta1**step)
    return w - lr_t * m / (np.sqrt(v) + eps), m, v


def update(
    params: ModelParams,
    grads: ModelParams,
    state: dict[str, Any],
    optimizer: Optimizer,
    lr: float,
) -> None:
    """Step every parameter that has a gradient; `state` starts empty and persists.

    Python-float hyper-parameters take each tensor's dtype, so a float16 model
    updates in float16.
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    if optimizer == "sgd":
        for layer, layer_grads in grads.items():
            for name, g in layer_grads.items():
                params[layer][name] = sgd(params[layer][name], g, lr)
        return
    state["step"] = step = state.get("step", 0) + 1
    moments = state.setdefault("moments", {})
    for layer, layer_grads in grads.items():
        for name, g in layer_grads.items():
            w = params[layer][name]
            m, v = moments.get((layer, name), (np.zeros_like(w), np.zeros_like(w)))
            params[layer][name], m, v = adam(w, g, m, v, step, lr)
            moments[(layer, name)] = (m, v)
