"""Softmax and the loss kernels: softmax cross-entropy and sigmoid cross-entropy.

The losses read (logits, labels) and return a 0-d array, the mean loss over every row
of the batch; their backward takes that scalar's gradient (1 to start a backward
pass) and returns (dlogits, None): labels have no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels.activation import sigmoid
from leptonsim.kernels.base import Array, InputGrad, Params, as_dtype
from leptonsim.ops.softmax import SigmoidCrossEntropy, Softmax, SoftmaxCrossEntropy


def log_softmax(z: Array) -> Array:
    """log softmax over the last axis; shifting by the max keeps exp <= 1."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(z: Array) -> Array:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_backward_rows(y: Array, dy: Array) -> Array:
    """dx = y * (dy - <dy, y>) per row: the softmax Jacobian applied to dy."""
    return y * (dy - (dy * y).sum(axis=-1, keepdims=True))


def forward(op: Softmax, params: Params, x: Array) -> tuple[Array, Any]:
    y = softmax(x)
    return y, y


def backward(op: Softmax, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return softmax_backward_rows(cache, dy), {}


def _labels(logits: Array, labels: Array, shape: tuple[int, ...], op: str) -> None:
    if labels.shape != shape:
        raise ValueError(f"{op}: labels of shape {shape} expected, got {labels.shape}")


def xent_forward(op: SoftmaxCrossEntropy, params: Params, x: tuple[Array, Array]) -> tuple[Array, Any]:
    logits, labels = x
    classes = logits.shape[-1]
    _labels(logits, labels, logits.shape[:-1], "SoftmaxCrossEntropy")
    if labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise ValueError(f"SoftmaxCrossEntropy: labels must lie in [0, {classes})")
    logp = log_softmax(logits)
    picked = np.take_along_axis(logp, labels[..., None], axis=-1)
    return np.asarray(-picked.mean()), (np.exp(logp), labels)


def xent_backward(
    op: SoftmaxCrossEntropy, params: Params, cache: Any, dy: Array
) -> tuple[InputGrad, Params]:
    p, labels = cache
    dz = p.copy()
    # p - onehot(label), without materialising the one-hot matrix
    np.put_along_axis(dz, labels[..., None], np.take_along_axis(p, labels[..., None], -1) - 1, -1)
    return (dz * as_dtype(dy / labels.size, p), None), {}


def sigmoid_xent_forward(
    op: SigmoidCrossEntropy, params: Params, x: tuple[Array, Array]
) -> tuple[Array, Any]:
    logits, labels = x
    _labels(logits, labels, logits.shape, "SigmoidCrossEntropy")
    y = labels.astype(logits.dtype)
    # max(z, 0) - z y + log(1 + exp(-|z|)): never exponentiates a positive number
    loss = np.maximum(logits, 0) - logits * y + np.log1p(np.exp(-np.abs(logits)))
    return np.asarray(loss.mean()), (sigmoid(logits), y)


def sigmoid_xent_backward(
    op: SigmoidCrossEntropy, params: Params, cache: Any, dy: Array
) -> tuple[InputGrad, Params]:
    s, y = cache
    return ((s - y) * as_dtype(dy / y.size, s), None), {}
