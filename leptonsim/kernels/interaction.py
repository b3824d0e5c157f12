"""DLRM's dot interaction: (N, n, d) -> (N, d + n(n-1)/2).

The output is the first vector (the bottom MLP's) followed by the strictly-lower
triangle of Z Z^T in DLRM's order: (1,0), (2,0), (2,1), (3,0), ...
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.interaction import DotInteraction


def forward(op: DotInteraction, params: Params, x: Array) -> tuple[Array, Any]:
    n = x.shape[1]
    rows, cols = np.tril_indices(n, -1)
    gram = x @ x.swapaxes(1, 2)  # the full batched matmul, as DLRM's reference does
    return np.concatenate([x[:, 0, :], gram[:, rows, cols]], axis=1), x


def backward(op: DotInteraction, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    z = cache
    batch, n, d = z.shape
    rows, cols = np.tril_indices(n, -1)
    dgram = np.zeros((batch, n, n), dtype=dy.dtype)
    dgram[:, rows, cols] = dy[:, d:]
    # S = Z Z^T gives dZ = (dS + dS^T) Z
    dz = (dgram + dgram.swapaxes(1, 2)) @ z
    dz[:, 0, :] += dy[:, :d]
    return dz, {}
