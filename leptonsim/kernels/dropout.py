"""Dropout: y = x * mask / (1 - p), the mask drawn with a fixed seed so that runs are
deterministic (the values a measurement moves do not depend on which elements drop).
The cache is the bool mask, the 1 byte per element the cost side counts."""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.dropout import Dropout

SEED = 0


def mask(shape: tuple[int, ...], p: float) -> Array:
    """Keep each element with probability 1 - p."""
    return np.random.default_rng(SEED).random(shape) >= p


def forward(op: Dropout, params: Params, x: Array) -> tuple[Array, Any]:
    keep = mask(x.shape, op.p)
    return x * keep * (1 / (1 - op.p)), keep


def backward(op: Dropout, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    return dy * cache * (1 / (1 - op.p)), {}
