"""How far one set of arrays is from another: normwise, over all their values at once.

Not formulas.relative_error, the signed error of one predicted scalar: these compare
tensors (a sharded step's gradients with the unsplit ones, a low-precision forward
with the fp64 one), so one large value cannot hide in a mean of per-element errors.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from leptonsim.kernels.base import Array
from leptonsim.kernels.optim import ModelParams


def flat(arrays: Iterable[Array]) -> Array:
    """Arrays raveled and joined, in float64 (norms of float16 data overflow)."""
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    return np.concatenate(parts) if parts else np.zeros(0)


def grad_arrays(grads: ModelParams, like: ModelParams) -> list[Array]:
    """`grads` in the layer and parameter order of `like` (a fixed order to compare in)."""
    return [grads[layer][name] for layer, p in like.items() for name in p if layer in grads]


def normwise_error(a: Array | Iterable[Array], b: Array | Iterable[Array]) -> float:
    """Normwise relative error ||a - b||_2 / ||b||_2 in float64 (Higham, Accuracy and
    Stability of Numerical Algorithms, 2002, section 1.2); ||a - b|| when b is 0."""
    fa = flat([a] if isinstance(a, np.ndarray) else a)
    fb = flat([b] if isinstance(b, np.ndarray) else b)
    if fa.shape != fb.shape:
        raise ValueError(f"cannot compare {fa.size} values with {fb.size}")
    scale = float(np.linalg.norm(fb))
    diff = float(np.linalg.norm(fa - fb))
    return diff / scale if scale else diff
