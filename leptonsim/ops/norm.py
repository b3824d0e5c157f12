"""Normalisation over the last axis' features: BatchNorm, LayerNorm and RMSNorm.

BatchNorm (training mode) normalises each channel over batch and spatial positions;
LayerNorm normalises each row (token) over its features. Both learn a scale gamma and
a shift beta per feature. Per-element FLOPs, shared by both:
    forward           mean 1 + variance 3 + normalise 2 + affine 2 = 8
    backward_data     recompute x_hat 2 + two reductions 3 + dx 5 = 10
    backward_weights  recompute x_hat 2 + dgamma 2 + dbeta 1 = 5
plus per statistic (channel or row) one rsqrt and a few scalars. Every pass reads the
tensor once (one-pass Welford statistics). The saved mean and 1/std per statistic are
written in forward and read in both backward passes. BatchNorm also reads and writes
its moving mean and variance: 2 * C values stored but not trained, which Keras counts
in "total params" and torchvision does not count at all.

LayerNorm(fused=True) runs in one kernel with the residual add before it (fused
add + LayerNorm: Apex's and Transformer Engine's, FlashAttention's
dropout_add_layer_norm): the forward has no kernel of its own and does not read its
input back (the add still writes it: it is the residual stream). The backward is
unchanged.

BatchNorm(feeds=True): its output is consumed inside the kernel of the op after it (a
ReLU or residual Add fused by a compiler: `zoo.cnn.with_fusion`), so the forward does not
write it. BatchNorm(relu_grad=True): the gradient of the ReLU after it is computed inside
its backward kernels, so each backward pass also reads that ReLU's saved output (for
the mask) where the ReLU's own backward kernel is gone.

RMSNorm (Zhang & Sennrich, "Root Mean Square Layer Normalization", NeurIPS 2019)
divides each row by its root mean square, with no mean and no shift: gamma only,
`features` parameters in one tensor. Per element: forward square-sum 2 + normalise 1 +
scale 1 = 4; backward_data recompute x_hat 1 + one reduction 2 + dx 4 = 7;
backward_weights recompute x_hat 1 + dgamma 2 = 3. It saves 1/rms per row.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass, replace
from typing import ClassVar

from leptonsim.ops.base import (
    TRANSCENDENTAL_FLOPS,
    Cost,
    Op,
    Shape,
    check_min_rank,
    numel,
)

FORWARD_FLOPS = 8
BACKWARD_DATA_FLOPS = 10
BACKWARD_WEIGHTS_FLOPS = 5
PER_STATISTIC_FLOPS = TRANSCENDENTAL_FLOPS + 2


@dataclass(frozen=True)
class _Norm(Op):
    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank(type(self).__name__, input_shape, 1, "(..., features)")
        return input_shape

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return 2 * input_shape[-1]

    def param_tensors(self, input_shape: Shape) -> int:
        return 2  # gamma and beta

    @abstractmethod
    def _statistics(self, x: Shape, batch: int) -> int:
        """How many (mean, 1/std) pairs one pass computes."""

    def _state_words(self, x: Shape) -> int:
        """Non-trainable words read and written per forward pass."""
        return 0

    def _pass(self, x: Shape, batch: int, dtype_bytes: int, flops: int, tensors: int) -> Cost:
        elements = batch * numel(x)
        stats = self._statistics(x, batch)
        words = elements * tensors + 2 * stats + self.params(x)
        return Cost(elements * flops + stats * PER_STATISTIC_FLOPS, float(words * dtype_bytes))

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        cost = self._pass(x, batch, dtype_bytes, FORWARD_FLOPS, 2)  # x in, y out
        return cost + Cost(0.0, float(self._state_words(x) * dtype_bytes), kernels=0)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._pass(x, batch, dtype_bytes, BACKWARD_DATA_FLOPS, 3)  # dy, x in; dx out

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._pass(x, batch, dtype_bytes, BACKWARD_WEIGHTS_FLOPS, 2)  # dy, x in


@dataclass(frozen=True)
class BatchNorm(_Norm):
    """Batch normalisation over the channel (last) axis: 2C trainable, 2C moving stats."""

    feeds: bool = False      # output consumed in the next op's kernel: not written
    relu_grad: bool = False  # the next ReLU's gradient computed in this backward

    kind: ClassVar[str] = "batchnorm"

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        cost = super()._forward(x, batch, dtype_bytes)
        return cost + Cost(0.0, -self._tensor(x, batch, dtype_bytes), kernels=0) if self.feeds else cost

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._with_relu_grad(super()._backward_data(x, batch, dtype_bytes), x, batch,
                                    dtype_bytes)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return self._with_relu_grad(super()._backward_weights(x, batch, dtype_bytes), x, batch,
                                    dtype_bytes)

    def _tensor(self, x: Shape, batch: int, dtype_bytes: int) -> float:
        return float(batch * numel(x) * dtype_bytes)

    def _with_relu_grad(self, cost: Cost, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        """A backward pass that also reads the ReLU's output (its mask) if it computes
        that ReLU's gradient (whose FLOPs the ReLU keeps)."""
        if not self.relu_grad:
            return cost
        return cost + Cost(0.0, self._tensor(x, batch, dtype_bytes), kernels=0)

    def non_trainable_params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return 2 * input_shape[-1]

    def _statistics(self, x: Shape, batch: int) -> int:
        return x[-1]

    def _state_words(self, x: Shape) -> int:
        return 2 * self.non_trainable_params(x)  # moving mean and variance, read and written


@dataclass(frozen=True)
class LayerNorm(_Norm):
    """Layer normalisation over the last axis: gamma and beta, 2 * features."""

    fused: bool = False

    kind: ClassVar[str] = "layernorm"

    def _statistics(self, x: Shape, batch: int) -> int:
        return batch * numel(x[:-1])

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        if not self.fused:
            return super()._forward(x, batch, dtype_bytes)
        return replace(self._pass(x, batch, dtype_bytes, FORWARD_FLOPS, 1), kernels=0)  # y out


@dataclass(frozen=True)
class RMSNorm(LayerNorm):
    """Root-mean-square normalisation over the last axis: gamma only, `features`."""

    kind: ClassVar[str] = "rmsnorm"

    def params(self, input_shape: Shape) -> int:
        self.output_shape(input_shape)
        return input_shape[-1]

    def param_tensors(self, input_shape: Shape) -> int:
        return 1

    def _pass(self, x: Shape, batch: int, dtype_bytes: int, flops: int, tensors: int) -> Cost:
        rms = {FORWARD_FLOPS: 4, BACKWARD_DATA_FLOPS: 7, BACKWARD_WEIGHTS_FLOPS: 3}[flops]
        elements, rows = batch * numel(x), self._statistics(x, batch)
        words = elements * tensors + rows + self.params(x)  # 1/rms only, no mean
        return Cost(elements * rms + rows * PER_STATISTIC_FLOPS, float(words * dtype_bytes))
