"""Multi-head self-attention with biases, input (S, H) -> (S, H).

Parameters: Q, K, V and output projections, 4 * (H^2 + H). Per sample, forward runs
    QKV projection   2 * S * H * 3H + 3SH bias
    scores Q K^T     2 * S^2 * H    (all heads; plus a 1/sqrt(d) scale per score)
    softmax          per score, see softmax.py
    context P V      2 * S^2 * H
    out projection   2 * S * H^2 + SH bias
Backward repeats every matmul twice - once per operand's gradient - split as dense
does: gradients w.r.t. activations are backward_data, w.r.t. weights
backward_weights. A causal mask (GPT) skips no work here, as in unfused kernels.

Bytes are for the unfused form, where Q, K, V, scores, probabilities and context each
go through memory: per sample 10 SH + 4 heads S^2 words in forward, 13 SH +
6 heads S^2 in backward_data, 6 SH in backward_weights, plus weights. A fused
(flash) kernel moves far less; the S^2 terms are the difference.

As GEMMs, with T = batch * S tokens, a heads, d = H / a and a * batch per-head products
in one batched launch:
    forward           QKV (T, 3H, H); scores (S, S, d); context (S, d, S); out (T, H, H)
    backward_data     out dX (T, H, H); dP (S, S, d); dV, dQ, dK (S, d, S); QKV dX (T, H, 3H)
    backward_weights  out dW (H, H, T); QKV dW (H, 3H, T)
and a head split divides the dimension that carries the heads (3H, H as heads x d, or
the batch of per-head products). Kernels: those GEMMs plus the softmax (forward, with
its scale and mask) and its backward; the bias gradients are one more reduction each.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import ClassVar

from leptonsim.ops.base import Cost, Gemm, Op, Shape, ShapeError, check_positive, check_rank
from leptonsim.ops.softmax import SOFTMAX_BACKWARD_FLOPS, SOFTMAX_FORWARD_FLOPS


@dataclass(frozen=True)
class MultiHeadSelfAttention(Op):
    """MultiHeadSelfAttention(heads, use_bias); head size is H / heads."""

    heads: int
    use_bias: bool = True

    kind: ClassVar[str] = "attention"

    def __post_init__(self) -> None:
        check_positive("MultiHeadSelfAttention", heads=self.heads)

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("MultiHeadSelfAttention", input_shape, 2, "(sequence, hidden)")
        if input_shape[1] % self.heads:
            raise ShapeError(
                f"MultiHeadSelfAttention: hidden size {input_shape[1]} "
                f"is not divisible by {self.heads} heads"
            )
        return input_shape

    def params(self, input_shape: Shape) -> int:
        _, h = self.output_shape(input_shape)
        return 4 * h * h + (4 * h if self.use_bias else 0)

    def _sizes(self, x: Shape, batch: int) -> tuple[int, int, int]:
        """Per batch: S*H activations, heads*S^2 scores, 4*H^2 projection weights."""
        s, h = x
        return batch * s * h, batch * self.heads * s * s, 4 * h * h

    def _bias(self, x: Shape, batch: int) -> int:
        return 4 * batch * x[0] * x[1] if self.use_bias else 0

    def _per_head(self, x: Shape, batch: int) -> tuple[Gemm, Gemm]:
        """The batched per-head products (S, S, d) and (S, d, S), split by head."""
        s, d, n = x[0], x[1] // self.heads, batch * self.heads
        return Gemm(s, s, d, n, split="batch"), Gemm(s, d, s, n, split="batch")

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, scores, _ = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        projections = 2 * sh * 4 * h + self._bias(x, batch)
        attention = 2 * 2 * scores * (h // self.heads) + scores * (1 + SOFTMAX_FORWARD_FLOPS)
        words = 10 * sh + 4 * scores + self.params(x)
        gemms = (Gemm(t, 3 * h, h, split="n"), *self._per_head(x, batch), Gemm(t, h, h, split="k"))
        return Cost(projections + attention, float(words * dtype_bytes), gemms, 5)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, scores, w = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        projections = 2 * sh * 4 * h + 2 * sh  # dx sums the Q, K, V paths
        attention = 4 * 2 * scores * (h // self.heads) + scores * (1 + SOFTMAX_BACKWARD_FLOPS)
        words = 13 * sh + 6 * scores + w
        scores_gemm, context_gemm = self._per_head(x, batch)
        gemms = (Gemm(t, h, h, split="n"), scores_gemm, replace(context_gemm, count=3),
                 Gemm(t, h, 3 * h, split="k"))
        return Cost(projections + attention, float(words * dtype_bytes), gemms, 7)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, _, _ = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        flops = 2 * sh * 4 * x[1] + self._bias(x, batch)
        gemms = (Gemm(h, h, t, split="m"), Gemm(h, 3 * h, t, split="n"))
        return Cost(flops, float((6 * sh + self.params(x)) * dtype_bytes), gemms,
                    2 + 2 * self.use_bias)
