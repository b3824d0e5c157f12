"""Dense (a matmul plus bias on the last axis) and Flatten.

Dense maps (..., in) -> (..., units); the leading axes are rows that share weights
(tokens of a sequence, time steps). Per row: forward 2 * in * units FLOPs + units for
the bias; backward_data dx = dy W^T repeats the 2 * in * units; backward_weights
dW = x^T dy repeats it again and db = sum(dy) adds units. As GEMMs, with R rows:
forward (R, units, in), backward_data (R, in, units), backward_weights (in, units, R);
a column-parallel split divides units, a row-parallel one in.

A `tied` Dense reuses another layer's matrix (GPT's output projection is the token
embedding transposed): it owns no parameters and the optimizer updates the matrix
once, at its owner, but every matmul - including its weight gradient, which is
accumulated into the owner's - still costs here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.base import (
    ZERO,
    Cost,
    Gemm,
    Op,
    Saved,
    Shape,
    check_min_rank,
    check_positive,
    numel,
)


@dataclass(frozen=True)
class Dense(Op):
    """Dense(units, use_bias, tied), applied to the last axis."""

    units: int
    use_bias: bool = True
    tied: bool = False

    kind: ClassVar[str] = "dense"

    def __post_init__(self) -> None:
        check_positive("Dense", units=self.units)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("Dense", input_shape, 1, "(..., features)")
        return (*input_shape[:-1], self.units)

    def _matrix(self, x: Shape) -> int:
        return x[-1] * self.units

    def _own(self, x: Shape) -> int:
        """Weights stored by this layer: all of them unless tied."""
        bias = self.units if self.use_bias else 0
        return bias if self.tied else self._matrix(x) + bias

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return self._own(input_shape)

    def param_tensors(self, input_shape: Shape) -> int:
        return (0 if self.tied else 1) + (1 if self.use_bias else 0)

    def _rows(self, x: Shape, batch: int) -> int:
        return batch * numel(x[:-1])

    def _bias_flops(self, x: Shape, batch: int) -> int:
        return self._rows(x, batch) * self.units if self.use_bias else 0

    def _act_bytes(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        return float(self._rows(x, batch) * (x[-1] + self.units) * dtype_bytes)

    def _weight_bytes(self, x: Shape, dtype_bytes: int) -> float:
        bias = self.units if self.use_bias else 0
        return float((self._matrix(x) + bias) * dtype_bytes)

    def _matmul_flops(self, x: Shape, batch: int) -> int:
        return 2 * self._rows(x, batch) * self._matrix(x)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        flops = self._matmul_flops(x, batch) + self._bias_flops(x, batch)
        gemm = Gemm(self._rows(x, batch), self.units, x[-1], split="n", row_split="k")
        return Cost(flops, self._act_bytes(x, batch, dtype_bytes)
                    + self._weight_bytes(x, dtype_bytes), gemms=(gemm,))

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads dy and W, writes dx
        weights = self._matrix(x) * dtype_bytes
        gemm = Gemm(self._rows(x, batch), x[-1], self.units, split="k", row_split="n")
        return Cost(self._matmul_flops(x, batch), self._act_bytes(x, batch, dtype_bytes) + weights,
                    gemms=(gemm,))

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads saved x and dy, writes dW and db (a second kernel, the bias reduction)
        flops = self._matmul_flops(x, batch) + self._bias_flops(x, batch)
        gemm = Gemm(x[-1], self.units, self._rows(x, batch), split="n", row_split="m")
        return Cost(flops, self._act_bytes(x, batch, dtype_bytes)
                    + self._weight_bytes(x, dtype_bytes), gemms=(gemm,), kernels=1 + self.use_bias)


@dataclass(frozen=True)
class Flatten(Op):
    """(d1, d2, ...) -> (d1 * d2 * ...,): a view, free in both directions."""

    kind: ClassVar[str] = "flatten"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("Flatten", input_shape, 1, "(d1, ...)")
        return (numel(input_shape),)

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        self.output_shape(input_shape)
        return Saved()  # a reshape's backward needs only the shape

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return ZERO

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return ZERO
