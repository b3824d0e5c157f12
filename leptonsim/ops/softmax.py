"""Softmax over the last axis, and the losses that end a training graph.

Per element, with T = TRANSCENDENTAL_FLOPS:
    Softmax               max 1 + subtract 1 + exp T + sum 1 + divide 1 = T + 4;
                          backward dx = y * (dy - sum(dy * y)): 4, reading y and dy
    SoftmaxCrossEntropy   (sparse integer labels, mean over rows and batch) forward
                          T + 4 per logit plus log T + 2 per row; it writes the
                          probabilities so that backward, p - onehot(label) scaled by
                          1/N, costs 2 per logit
    SigmoidCrossEntropy   (binary labels, one per logit) forward 2T + 5 per logit for
                          the stable max(x, 0) - x*y + log(1 + exp(-|x|)), saving
                          sigmoid(x); backward (sigmoid(x) - y) / N: 2 per logit
The losses output a per-sample scalar: shape ().
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from leptonsim.ops.base import (
    TRANSCENDENTAL_FLOPS,
    Cost,
    Op,
    Saved,
    Shape,
    check_min_rank,
    check_positive,
    elementwise,
    numel,
)

FP32_BYTES = 4  # the loss's softmax, kept in fp32 (SoftmaxCrossEntropy.saved_bytes)
SOFTMAX_FORWARD_FLOPS = TRANSCENDENTAL_FLOPS + 4
SOFTMAX_BACKWARD_FLOPS = 4


@dataclass(frozen=True)
class Softmax(Op):
    """Softmax over the last axis."""

    kind: ClassVar[str] = "softmax"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("Softmax", input_shape, 1, "(..., classes)")
        return input_shape

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(x), SOFTMAX_FORWARD_FLOPS, 2, dtype_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(x), SOFTMAX_BACKWARD_FLOPS, 3, dtype_bytes)


@dataclass(frozen=True)
class SoftmaxCrossEntropy(Op):
    """Softmax + sparse categorical cross-entropy on logits (..., classes) -> ()."""

    label_bytes: int = 4

    kind: ClassVar[str] = "softmax_xent"

    def __post_init__(self) -> None:
        check_positive("SoftmaxCrossEntropy", label_bytes=self.label_bytes)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("SoftmaxCrossEntropy", input_shape, 1, "(..., classes)")
        return ()

    def _labels(self, x: Shape, batch: int) -> Cost:
        rows = batch * numel(x[:-1])
        return Cost(0.0, float(rows * self.label_bytes))

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        rows = batch * numel(x[:-1])
        per_row = Cost(rows * (TRANSCENDENTAL_FLOPS + 2), 0.0)
        logits = elementwise(batch * numel(x), SOFTMAX_FORWARD_FLOPS, 2, dtype_bytes)
        return logits + per_row + self._labels(x, batch)  # reads z, writes p

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        return elementwise(batch * numel(x), 2, 2, dtype_bytes) + self._labels(x, batch)

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        """The softmax kept for the backward in fp32 whatever the activations' precision:
        Megatron-LM's loss upcasts the logits (vocab_parallel_cross_entropy(output.float(),
        ...)), which Korthikanti et al., MLSys 2023, section 4.3 counts as 4sbv bytes."""
        self.output_shape(input_shape)
        return Saved(inputs=float(batch * numel(input_shape) * max(dtype_bytes, FP32_BYTES)))


@dataclass(frozen=True)
class SigmoidCrossEntropy(Op):
    """Sigmoid + binary cross-entropy, one label per logit: (...) -> ()."""

    kind: ClassVar[str] = "sigmoid_xent"

    def output_shape(self, input_shape: Shape) -> Shape:
        check_min_rank("SigmoidCrossEntropy", input_shape, 1, "(logits,)")
        return ()

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads logits and labels, writes sigmoid(x)
        return elementwise(batch * numel(x), 2 * TRANSCENDENTAL_FLOPS + 5, 3, dtype_bytes)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        # reads sigmoid(x) and labels, writes dx
        return elementwise(batch * numel(x), 2, 3, dtype_bytes)
