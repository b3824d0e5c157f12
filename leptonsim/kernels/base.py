"""Types every NumPy kernel shares, and the initialisers parameters are drawn with.

A kernel is a pair of pure functions over batch-first arrays:
    forward(op, params, x) -> (y, cache)
    backward(op, params, cache, dy) -> (dx, grads)
`op` is the same frozen dataclass the cost model reads, so shapes and hyper-parameters
have one source. `x` is one array, or a tuple for ops that read several tensors (Add;
the losses read (logits, labels)). `dx` mirrors `x`, with None where an input has no
gradient (integer indices, labels). `grads` has the keys of `params`. Arithmetic runs
in the dtype of the inputs: nothing upcasts, so float16 runs measure float16.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import DTypeLike, NDArray

from leptonsim.ops.base import Shape

Array = NDArray[Any]
Params = dict[str, Array]
InputGrad = Array | tuple[Array | None, ...] | None
Cache = Any  # whatever a forward saves for its backward; opaque to callers

# The op argument is typed Any: each kernel takes its own Op subclass, and Callable
# parameters are contravariant, so a narrower type would not fit one registry.
ForwardFn = Callable[[Any, Params, Any], tuple[Array, Cache]]
BackwardFn = Callable[[Any, Params, Cache, Array], tuple[InputGrad, Params]]
InitFn = Callable[[Any, Shape, np.random.Generator, DTypeLike], Params]


class Kernel(NamedTuple):
    """Forward, backward and parameter initialiser of one op type."""

    forward: ForwardFn
    backward: BackwardFn
    init: InitFn


def no_params(op: Any, input_shape: Shape, rng: np.random.Generator, dtype: DTypeLike) -> Params:
    """Initialiser of an op without weights."""
    return {}


def glorot(
    rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, fan_out: int, dtype: DTypeLike
) -> Array:
    """Glorot-uniform weights (the Keras default), drawn in float64 then cast.

    Drawing in float64 first makes the float16 and float32 weights roundings of the
    same values, so runs in different dtypes start from the same point.
    """
    limit = math.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def zeros(shape: tuple[int, ...], dtype: DTypeLike) -> Array:
    return np.zeros(shape, dtype=dtype)


def as_dtype(value: Any, like: Array) -> Array:
    """`value` as a 0-d array of like's dtype.

    Under NumPy 2 promotion a 0-d float64 array (an upstream scalar gradient, say)
    would upcast a float16 tensor; casting first keeps the computation in its dtype.
    """
    return np.asarray(value, dtype=like.dtype)
