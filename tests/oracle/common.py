"""What every sharded run shares: its result record, the unsplit reference, errors.

A step is one forward and backward pass: the network's output (a loss, or any tensor
when `dy` seeds the backward), the gradient w.r.t. its input and every parameter
gradient. A sharded run returns the same record, with weight gradients gathered
back into the full shapes, so it compares directly with `unsplit_step`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from leptonsim.kernels import Array, ModelParams, Network, run_backward, run_forward
from leptonsim.kernels.norms import normwise_error

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


def step_errors(got: StepResult, ref: StepResult) -> dict[str, float]:
    """Normwise relative error of the output, the input gradient and each weight gradient."""
    errors = {"output": normwise_error(got.output, ref.output)}
    if ref.input_grad is not None:
        if got.input_grad is None:
            raise ValueError("the sharded run lost the input gradient")
        errors["input_grad"] = normwise_error(got.input_grad, ref.input_grad)
    if set(got.grads) != set(ref.grads):
        raise ValueError(f"gradients of layers {sorted(got.grads)}, expected {sorted(ref.grads)}")
    for layer, grads in ref.grads.items():
        for name, g in grads.items():
            errors[f"{layer}.{name}"] = normwise_error(got.grads[layer][name], g)
    return errors
