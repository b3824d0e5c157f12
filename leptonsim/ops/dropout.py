"""Dropout: zero each element with probability p and scale the rest by 1 / (1 - p)
(Srivastava et al., "Dropout: A Simple Way to Prevent Neural Networks from
Overfitting", JMLR 2014; the inverted form every framework uses).

One elementwise kernel each way. Forward reads x and writes y and a 1-byte mask
(PyTorch's fused dropout keeps a bool mask, as Korthikanti et al., MLSys 2023,
section 4.1 count it); per element a comparison of the random draw with p and two
multiplies (mask, scale): DROPOUT_FORWARD_FLOPS. Backward reads dy and the mask and
writes dx: two multiplies. The random numbers come from integer Philox rounds, not
floating-point work, so they add no FLOPs (ASSUMPTION: they hide under the memory
traffic of this memory-bound kernel). It keeps only its mask for the backward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.base import Cost, Op, Saved, Shape, check_min_rank, numel

MASK_BYTES = 1  # a bool per element (Korthikanti et al. 2023, section 4.1)
DROPOUT_FORWARD_FLOPS = 3  # compare the draw with p, multiply by the mask and the scale
DROPOUT_BACKWARD_FLOPS = 2  # dy times the mask and the scale


def dropout_bytes(elements: int, dtype_bytes: int) -> float:
    """One pass: a tensor read, one written, and the mask written (forward) or read."""
    return float(elements * (2 * dtype_bytes + MASK_BYTES))


@dataclass(frozen=True)
class Dropout(Op):
    """Dropout(p): each element dropped with probability 0 < p < 1."""

    p: float = 0.1

    kind: ClassVar[str] = "dropout"

    def __post_init__(self) -> None:
        if isinstance(self.p, bool) or not isinstance(self.p, int | float) or not 0 < self.p < 1:
            raise ValueError(f"Dropout: p must be a probability in (0, 1), got {self.p!r}")

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("Dropout", input_shape, 1, "(...)")
        return input_shape

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        self.output_shape(input_shape)
        return Saved(made=float(batch * numel(input_shape) * MASK_BYTES))

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        n = batch * numel(x)
        return Cost(float(n * DROPOUT_FORWARD_FLOPS), dropout_bytes(n, dtype_bytes))

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        n = batch * numel(x)
        return Cost(float(n * DROPOUT_BACKWARD_FLOPS), dropout_bytes(n, dtype_bytes))
