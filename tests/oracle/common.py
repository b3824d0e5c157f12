"""What every sharded run shares: its result record, the unsplit reference, errors.

A step is one forward and backward pass: the network's output (a loss, or any tensor
when `dy` seeds the backward), the gradient w.r.t. its input and every parameter
gradient. A sharded run returns the same record, with weight gradients gathered
back into the full shapes, so it compares directly with `unsplit_step`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from leptonsim.kernels import Array, ModelParams, Network, run_backward, run_forward

# A collective over one array per rank, returning one array per rank (simulated ranks).
AllReduce = Callable[[list[Array]], list[Array]]


@dataclass(frozen=True)
class StepResult:
    """Output, input gradient (None for integer inputs) and parameter gradients."""

    output: Array
    input_grad: Array | None
    grads: ModelParams


def allreduce_sum(parts: list[Array]) -> list[Array]:
    """The reference all-reduce: every rank gets the sum, added in rank order."""
    total = parts[0]
    for part in parts[1:]:
        total = total + part
    return [total] * len(parts)


def no_allreduce(parts: list[Array]) -> list[Array]:
    """A broken collective (each rank keeps its own part): negative controls use it."""
    return list(parts)


def unsplit_step(net: Network, params: ModelParams, x: Array, labels: Array | None = None,
                 dy: Array | None = None) -> StepResult:
    """The reference: the kernels' own runner on the whole model and batch."""
    tape = run_forward(net, params, x, labels)
    dx, grads = run_backward(net, params, tape, dy)
    return StepResult(tape.output, dx, grads)


def flat(arrays: Iterable[Array]) -> Array:
    """Arrays raveled and joined, in float64 (norms of float16 data overflow)."""
    parts = [np.asarray(a, dtype=np.float64).ravel() for a in arrays]
    return np.concatenate(parts) if parts else np.zeros(0)


def grad_arrays(grads: ModelParams, like: ModelParams) -> list[Array]:
    """`grads` in the layer and parameter order of `like` (a fixed order to compare in)."""
    return [grads[layer][name] for layer, p in like.items() for name in p if layer in grads]


def rel_error(a: Array | Iterable[Array], b: Array | Iterable[Array]) -> float:
    """Normwise relative error ||a - b|| / ||b|| in float64; 0 when both are 0."""
    fa = flat([a] if isinstance(a, np.ndarray) else a)
    fb = flat([b] if isinstance(b, np.ndarray) else b)
    if fa.shape != fb.shape:
        raise ValueError(f"cannot compare {fa.size} values with {fb.size}")
    scale = float(np.linalg.norm(fb))
    diff = float(np.linalg.norm(fa - fb))
    return diff / scale if scale else diff


def step_errors(got: StepResult, ref: StepResult) -> dict[str, float]:
    """Normwise relative error of the output, the input gradient and each weight gradient."""
    errors = {"output": rel_error(got.output, ref.output)}
    if ref.input_grad is not None:
        if got.input_grad is None:
            raise ValueError("the sharded run lost the input gradient")
        errors["input_grad"] = rel_error(got.input_grad, ref.input_grad)
    if set(got.grads) != set(ref.grads):
        raise ValueError(f"gradients of layers {sorted(got.grads)}, expected {sorted(ref.grads)}")
    for layer, grads in ref.grads.items():
        for name, g in grads.items():
            errors[f"{layer}.{name}"] = rel_error(got.grads[layer][name], g)
    return errors
