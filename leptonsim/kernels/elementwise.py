"""Add: the elementwise sum of `arity` same-shaped tensors (residual merges)."""

from __future__ import annotations

from typing import Any

from leptonsim.kernels.base import Array, InputGrad, Params
from leptonsim.ops.elementwise import Add


def forward(op: Add, params: Params, x: tuple[Array, ...]) -> tuple[Array, Any]:
    if len(x) != op.arity:
        raise ValueError(f"Add: expected {op.arity} inputs, got {len(x)}")
    total = x[0]
    for term in x[1:]:
        total = total + term  # not +=: x[0] belongs to the caller
    return total, None


def backward(op: Add, params: Params, cache: Any, dy: Array) -> tuple[InputGrad, Params]:
    # every operand receives dy unchanged; callers sum, never mutate, gradients
    return tuple(dy for _ in range(op.arity)), {}
