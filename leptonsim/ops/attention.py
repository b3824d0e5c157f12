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
6 heads S^2 in backward_data, 6 SH in backward_weights, plus weights.

`implementation = "flash"` is FlashAttention-2's IO-aware kernel (Dao et al.,
"FlashAttention: Fast and Memory-Efficient Exact Attention with IO-Awareness",
NeurIPS 2022, Theorem 2: Theta(N^2 d^2 / M) HBM accesses for SRAM of M words; Dao,
"FlashAttention-2: Faster Attention with Better Parallelism and Work Partitioning",
ICLR 2024, Algorithms 1 and 2): the S x S scores never reach HBM. Its tiles are
FLASH_TILE rows of Q (and of K, V), so with T = ceil(S / FLASH_TILE) the forward
reads Q once, K and V T times, and writes the context and one log-sum-exp per row:
6 SH (projections) + (2 + 2T) SH + heads S words. The backward computes
D = rowsum(dO * O) (2 SH read, heads S written), then per K, V tile reads K, V and
writes dK, dV once (4 SH) while re-reading Q, dO, L, D and reading and writing dQ
T times (T (4 SH + 2 heads S)); with the projections' 6 SH: (12 + 4T) SH +
(1 + 2T) heads S words. It recomputes the scores and probabilities from Q, K and L:
5 S x S matmuls instead of 4, 2.5 times the forward's (FlashAttention-2, section 3.2).
T(M) is Theorem 2's bound with M = 4 d FLASH_TILE words of SRAM. With `causal` (GPT)
the flash kernel skips the tiles above the diagonal: (T + 1) / 2T of the score
FLOPs and of the K, V re-reads remain; the unfused form masks but skips nothing.

As GEMMs, with T = batch * S tokens, a heads, d = H / a and a * batch per-head products
in one batched launch:
    forward           QKV (T, 3H, H); scores (S, S, d); context (S, d, S); out (T, H, H)
    backward_data     out dX (T, H, H); dP (S, S, d); dV, dQ, dK (S, d, S); QKV dX (T, H, 3H)
    backward_weights  out dW (H, H, T); QKV dW (H, 3H, T)
and a head split divides the dimension that carries the heads (3H, H as heads x d, or
the batch of per-head products). Flash adds the recomputed scores (S, S, d) to the
backward, and with `causal` each query row meets (T + 1) / 2T of the keys on average,
so the per-head products run over that many keys. Kernels: unfused, those GEMMs plus
the softmax and its backward (5 forward, 7 backward); flash, the projections around one
attention kernel (3 forward; 4 backward, with D's preprocessing kernel).

`dropout` p > 0 drops attention probabilities, as GPT and BERT train (Vaswani et al.
2017, section 5.4; Megatron-LM's attention_dropout). Unfused, it is one more
elementwise kernel each way over the S x S probabilities (ops/dropout.py: a 1-byte
mask); flash draws it inside its kernel from a seed, with no HBM traffic: only its
FLOPs, forward and (regenerated, then applied to P and dP) backward.

Kept for the backward (Korthikanti et al., "Reducing Activation Recomputation in
Large Transformer Models", MLSys 2023, section 4.1; `saved_bytes`): the input of the
QKV projection, Q, K, V and the context (the output projection's input), 5 SH
values; unfused also the softmax output, and with dropout its mask (1 byte) and the
dropped probabilities, heads S^2 (1 or 2.5 values): at fp16 with dropout
11 sbh + 5 a s^2 b bytes with the output dropout's mask, the paper's attention block.
That S x S part is the core selective recompute rebuilds: `recompute_cost` is the
scores, softmax, dropout and context forward again. Flash keeps no S x S term but
one fp32 log-sum-exp per row and head (FlashAttention-2, Algorithm 1), and
recomputes its core anyway: selective recompute adds nothing to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar, Literal, get_args

from leptonsim.ops.base import (
    ZERO,
    Cost,
    Gemm,
    Op,
    Phase,
    Saved,
    Shape,
    ShapeError,
    check_positive,
    check_rank,
)
from leptonsim.ops.dropout import (
    DROPOUT_BACKWARD_FLOPS,
    DROPOUT_FORWARD_FLOPS,
    MASK_BYTES,
    dropout_bytes,
)
from leptonsim.ops.softmax import SOFTMAX_BACKWARD_FLOPS, SOFTMAX_FORWARD_FLOPS

Implementation = Literal["unfused", "flash"]
IMPLEMENTATIONS: tuple[Implementation, ...] = get_args(Implementation)
LSE_BYTES = 4  # flash keeps its log-sum-exp in fp32 (FlashAttention-2, Algorithm 1)
FLASH_TILE = 128  # rows of Q, K, V per tile: FlashAttention-2's block size for head sizes
#                   up to 128 on A100/H100 (Dao 2023, section 3.3: blocks of {64, 128})


@dataclass(frozen=True)
class MultiHeadSelfAttention(Op):
    """MultiHeadSelfAttention(heads, use_bias, implementation, causal, dropout); head
    size is H / heads; dropout is the attention probabilities' (0: none)."""

    heads: int
    use_bias: bool = True
    implementation: Implementation = "unfused"
    causal: bool = False
    dropout: float = 0.0

    kind: ClassVar[str] = "attention"

    def __post_init__(self) -> None:
        check_positive("MultiHeadSelfAttention", heads=self.heads)
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"MultiHeadSelfAttention: implementation must be unfused or "
                             f"flash, got {self.implementation!r}")
        if isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ValueError(f"MultiHeadSelfAttention: dropout must be in [0, 1), "
                             f"got {self.dropout!r}")

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

    def param_tensors(self, input_shape: Shape) -> int:
        return 4 * (2 if self.use_bias else 1)  # Q, K, V and output: matrix and bias

    def _sizes(self, x: Shape, batch: int) -> tuple[int, int, int]:
        """Per batch: S*H activations, heads*S^2 scores, 4*H^2 projection weights."""
        s, h = x
        return batch * s * h, batch * self.heads * s * s, 4 * h * h

    def _bias(self, x: Shape, batch: int) -> int:
        return 4 * batch * x[0] * x[1] if self.use_bias else 0

    def _tiles(self, x: Shape) -> tuple[int, float]:
        """Flash: tiles per sequence T, and the fraction of score tiles computed."""
        tiles = math.ceil(x[0] / FLASH_TILE)
        return tiles, (tiles + 1) / (2 * tiles) if self.causal else 1.0

    def _per_head(self, x: Shape, batch: int, visited: float = 1.0) -> tuple[Gemm, Gemm]:
        """The batched per-head products (S, S', d) and (S, d, S'), split by head, over
        the S' = visited S keys each query row meets."""
        s, d, n = x[0], x[1] // self.heads, batch * self.heads
        keys = math.ceil(s * visited)
        return Gemm(s, keys, d, n, split="batch"), Gemm(s, d, keys, n, split="batch")

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, scores, _ = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        projections = 2 * sh * 4 * h + self._bias(x, batch)
        attention = 2 * 2 * scores * (h // self.heads) + scores * (1 + SOFTMAX_FORWARD_FLOPS)
        projection_gemms = (Gemm(t, 3 * h, h, split="n"), Gemm(t, h, h, split="k"))
        if self.implementation == "unfused":
            words = 10 * sh + 4 * scores + self.params(x)
            gemms = (projection_gemms[0], *self._per_head(x, batch), projection_gemms[1])
            return Cost(projections + attention, float(words * dtype_bytes), gemms=gemms, kernels=5)
        tiles, visited = self._tiles(x)
        rows = batch * self.heads * x[0]  # one log-sum-exp per row of each head
        io = 6 * sh + (2 + 2 * tiles * visited) * sh + rows + self.params(x)
        gemms = (projection_gemms[0], *self._per_head(x, batch, visited), projection_gemms[1])
        return Cost(projections + attention * visited, float(io * dtype_bytes), gemms=gemms, kernels=3)

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, scores, w = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        projections = 2 * sh * 4 * h + 2 * sh  # dx sums the Q, K, V paths
        projection_gemms = (Gemm(t, h, h, split="n"), Gemm(t, h, 3 * h, split="k"))
        if self.implementation == "unfused":
            attention = 4 * 2 * scores * (h // self.heads) + scores * (1 + SOFTMAX_BACKWARD_FLOPS)
            words = 13 * sh + 6 * scores + w
            scores_gemm, context_gemm = self._per_head(x, batch)
            gemms = (projection_gemms[0], scores_gemm, replace(context_gemm, count=3),
                     projection_gemms[1])
            return Cost(projections + attention, float(words * dtype_bytes), gemms=gemms, kernels=7)
        tiles, visited = self._tiles(x)
        # the scores and probabilities recomputed, then the four gradient matmuls
        per_score = 1 + SOFTMAX_FORWARD_FLOPS + SOFTMAX_BACKWARD_FLOPS
        flash = (5 * 2 * scores * (h // self.heads) + scores * per_score) * visited
        rows = batch * self.heads * x[0]
        io = (12 + 4 * tiles * visited) * sh + (1 + 2 * tiles * visited) * rows + w
        scores_gemm, context_gemm = self._per_head(x, batch, visited)
        gemms = (projection_gemms[0], replace(scores_gemm, count=2),
                 replace(context_gemm, count=3), projection_gemms[1])
        return Cost(projections + flash, float(io * dtype_bytes), gemms=gemms, kernels=4)

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        sh, _, _ = self._sizes(x, batch)
        h, t = x[1], batch * x[0]
        flops = 2 * sh * 4 * x[1] + self._bias(x, batch)
        gemms = (Gemm(h, h, t, split="m"), Gemm(h, 3 * h, t, split="n"))
        return Cost(flops, float((6 * sh + self.params(x)) * dtype_bytes), gemms=gemms,
                    kernels=2 + 2 * self.use_bias)

    # -- attention dropout, and what the backward keeps (module docstring) -------------
    def cost(self, input_shape: Shape, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        base = super().cost(input_shape, batch, phase, dtype_bytes)
        if not self.dropout or phase not in ("forward", "backward_data"):
            return base
        return base + self._dropout_cost(input_shape, batch, phase, dtype_bytes)

    def _dropout_cost(self, x: Shape, batch: int, phase: Phase, dtype_bytes: int) -> Cost:
        scores = self._sizes(x, batch)[1]
        if self.implementation == "unfused":
            flops = DROPOUT_FORWARD_FLOPS if phase == "forward" else DROPOUT_BACKWARD_FLOPS
            return Cost(float(scores * flops), dropout_bytes(scores, dtype_bytes))
        per_score = DROPOUT_FORWARD_FLOPS + (phase != "forward") * DROPOUT_BACKWARD_FLOPS
        return Cost(scores * self._tiles(x)[1] * per_score, kernels=0)  # inside the kernel

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        sh, scores, _ = self._sizes(input_shape, batch)
        made = 4 * sh * dtype_bytes  # Q, K, V and the context
        if self.implementation == "flash":
            return Saved(sh * dtype_bytes, made + batch * self.heads * input_shape[0] * LSE_BYTES)
        dropped = scores * (MASK_BYTES + dtype_bytes) if self.dropout else 0
        return Saved(sh * dtype_bytes, made, float(scores * dtype_bytes + dropped))

    def recompute_cost(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Cost:
        """Unfused: the scores, softmax, dropout and context forward again, from the
        kept Q, K, V: 3 kernels (4 with dropout) reading Q, K, V and writing the
        context, with the scores and probabilities through memory."""
        self.output_shape(input_shape)
        if self.implementation == "flash":
            return ZERO
        sh, scores, _ = self._sizes(input_shape, batch)
        d = input_shape[1] // self.heads
        flops = 2 * 2 * scores * d + scores * (1 + SOFTMAX_FORWARD_FLOPS)
        core = Cost(flops, float((4 * sh + 4 * scores) * dtype_bytes),
                    gemms=self._per_head(input_shape, batch), kernels=3)
        if self.dropout:
            core += self._dropout_cost(input_shape, batch, "forward", dtype_bytes)
        return core
