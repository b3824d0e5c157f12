"""Embedding kernels: a row gather forward, a scatter-add of dy into the rows backward.

Input is (N, L) integer indices; output (N, L, dim), or (N, dim) when pooled. The
table gradient is dense (the whole table), as a plain framework computes it; only
the rows a batch touched are non-zero.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.base import Shape
from leptonsim.ops.embedding import Embedding

INIT_SCALE = 0.05  # Keras' uniform(-0.05, 0.05) embedding initialiser


def init(op: Embedding, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    table = rng.uniform(-INIT_SCALE, INIT_SCALE, (op.vocab, op.dim)).astype(dtype)
    return {"table": table}


def _check(op: Embedding, idx: Array) -> None:
    # negative indices would silently wrap around in NumPy; name the real problem
    if not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"Embedding: indices must be integers, got dtype {idx.dtype}")
    if idx.size and (idx.min() < 0 or idx.max() >= op.vocab):
        raise ValueError(
            f"Embedding: indices must lie in [0, {op.vocab}), got [{idx.min()}, {idx.max()}]"
        )


def forward(op: Embedding, params: Params, x: Array) -> tuple[Array, Any]:
    _check(op, x)
    rows = params["table"][x]  # (N, L, dim)
    if op.pooling == "sum":
        return rows.sum(axis=1), x
    if op.pooling == "mean":
        return rows.mean(axis=1), x
    return rows, x


def backward(op: Embedding, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    idx, table = cache, params["table"]
    if op.pooling:
        # every pooled row received the same gradient (scaled by 1/L for a mean)
        share = dy / idx.shape[1] if op.pooling == "mean" else dy
        dy = np.broadcast_to(share[:, None, :], (*idx.shape, op.dim))
    dtable = np.zeros_like(table)
    np.add.at(dtable, idx, dy)  # repeated indices accumulate, unlike dtable[idx] += dy
    return None, {"table": dtable}
