"""Elementwise sum of same-shaped tensors: residual and embedding adds.

The input shape is that of each operand. Forward reads `arity` tensors and writes
one: (arity - 1) adds per element. In a layer list the add also stands for its
mirror in backward: the fork whose output fed both branches must sum their
gradients, the same elementwise work, so backward_data costs what forward does.
It keeps nothing for the backward.

Add(fused=True): the operand the previous op produced arrives inside that op's kernel
(a compiler's loop fusion, `zoo.cnn.with_fusion`): the forward reads the other
operands only and launches no kernel. Add(feeds=True): its output is consumed inside
the next op's kernel and not written. The backward (the fork's gradient sum) is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from leptonsim.ops.base import Cost, Op, Saved, Shape, check_min_rank, elementwise, numel


@dataclass(frozen=True)
class Add(Op):
    """Add(arity=2): the sum of `arity` tensors of the input shape."""

    arity: int = 2
    fused: bool = False  # the previous op's output arrives in its kernel: not read
    feeds: bool = False  # the output is consumed in the next op's kernel: not written

    kind: ClassVar[str] = "add"

    def __post_init__(self) -> None:
        if not isinstance(self.arity, int) or self.arity < 2:
            raise ValueError(f"Add: arity must be an integer >= 2, got {self.arity!r}")

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("Add", input_shape, 1, "(...)")
        return input_shape

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        self.output_shape(input_shape)
        return Saved()  # the gradient passes through unchanged: nothing to keep

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        tensors = self.arity + 1 - self.fused - self.feeds
        cost = elementwise(batch * numel(x), self.arity - 1, tensors, dtype_bytes)
        return replace(cost, kernels=0) if self.fused else cost

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(x), self.arity - 1, self.arity + 1, dtype_bytes)
