"""DLRM's dot interaction: (N, n, d) -> (N, d + pairs), zero-padded to `pad_to`.

The output is the first vector (the bottom MLP's) followed by the strictly-lower
triangle of Z Z^T in DLRM's order: (1,0), (2,0), (2,1), (3,0), ... (with
`self_interaction`, the lower triangle with its diagonal: (0,0), (1,0), (1,1), ...),
then zeros up to the padded width.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.interaction import DotInteraction


def _triangle(op: DotInteraction, n: int) -> tuple[Array, Array]:
    return np.tril_indices(n, 0 if op.self_interaction else -1)


def forward(op: DotInteraction, params: Params, x: Array) -> tuple[Array, Any]:
    batch, n, d = x.shape
    rows, cols = _triangle(op, n)
    gram = x @ x.swapaxes(1, 2)  # the full batched matmul, as DLRM's reference does
    (width,) = op.output_shape((n, d))
    pad = np.zeros((batch, width - d - rows.size), dtype=x.dtype)
    return np.concatenate([x[:, 0, :], gram[:, rows, cols], pad], axis=1), x


def backward(op: DotInteraction, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    z = cache
    batch, n, d = z.shape
    rows, cols = _triangle(op, n)
    dgram = np.zeros((batch, n, n), dtype=dy.dtype)
    dgram[:, rows, cols] = dy[:, d:d + rows.size]
    # S = Z Z^T gives dZ = (dS + dS^T) Z (a diagonal entry counts twice, as it should:
    # d(z_i . z_i)/dz_i = 2 z_i)
    dz = (dgram + dgram.swapaxes(1, 2)) @ z
    dz[:, 0, :] += dy[:, :d]
    return dz, {}
