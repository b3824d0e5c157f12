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

Grouped-query attention (Ainslie et al., "GQA: Training Generalized Multi-Query
Transformer Models from Multi-Head Checkpoints", EMNLP 2023; Shazeer 2019 for
multi-query): `kv_heads` key/value heads shared by groups of the query heads, and a
`head_dim` d that need not be H / heads. With q = heads * d and kv = kv_heads * d the
projections are Q (H -> q), K and V (H -> kv each) and the output (q -> H), so every
"SH" term above splits by the width it belongs to: the formulas are written with
x = H, q and kv, and reduce to the ones above when q = kv = H. The per-head products
are unchanged (each query head still meets every key); K and V move kv/q of Q's bytes.
`rope` (Su et al., "RoFormer: Enhanced Transformer with Rotary Position Embedding",
2021) rotates Q and K in place: 3 FLOPs per element (two multiplies, an add; the
cos/sin table is cached), one read and one write of Q and K, one kernel, in forward
and again (the transposed rotation) in backward_data.

`implementation = "eager"` is the unfused form as PyTorch runs it without a fuser
(DeepLearningExamples BERT modeling.py, BertSelfAttention: `attention_scores /
math.sqrt(self.attention_head_size)`, then `+ attention_mask`, then the softmax, each a
separate kernel when the model is not scripted, as run_squad.py runs it): the scale and
the mask's addition are two more elementwise passes over the S x S scores forward
(4 heads S^2 words and the mask's S), and the scale's gradient one more backward
(2 heads S^2); the unfused form has them inside its softmax kernel (Megatron-LM's
fused scale-mask-softmax, or a fuser's). Everything else is the unfused form's.

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

Implementation = Literal["flash", "unfused", "eager"]
IMPLEMENTATIONS: tuple[Implementation, ...] = get_args(Implementation)
LSE_BYTES = 4  # flash keeps its log-sum-exp in fp32 (FlashAttention-2, Algorithm 1)
FLASH_TILE = 128  # rows of Q, K, V per tile: FlashAttention-2's block size for head sizes
#                   up to 128 on A100/H100 (Dao 2023, section 3.3: blocks of {64, 128})


@dataclass(frozen=True)
class MultiHeadSelfAttention(Op):
    """MultiHeadSelfAttention(heads, use_bias, implementation, causal, kv_heads,
    head_dim, rope, qkv_bias, dropout); head size H / heads unless head_dim is given,
    kv_heads heads (0: heads) for K and V, qkv_bias (None: use_bias) for Q, K, V's biases
    apart from the output's (Qwen2 has the first and not the second), and dropout the
    attention probabilities' (0: none)."""

    heads: int
    use_bias: bool = True
    implementation: Implementation = "unfused"
    causal: bool = False
    kv_heads: int = 0
    head_dim: int = 0
    rope: bool = False
    qkv_bias: bool | None = None
    dropout: float = 0.0

    kind: ClassVar[str] = "attention"

    def __post_init__(self) -> None:
        check_positive("MultiHeadSelfAttention", heads=self.heads)
        if self.implementation not in IMPLEMENTATIONS:
            raise ValueError(f"MultiHeadSelfAttention: implementation must be one of "
                             f"{', '.join(IMPLEMENTATIONS)}, got {self.implementation!r}")
        if self.kv_heads < 0 or self.head_dim < 0:
            raise ValueError("MultiHeadSelfAttention: kv_heads and head_dim must be >= 0")
        if self.heads % self.groups:
            raise ValueError(f"MultiHeadSelfAttention: {self.heads} heads do not split into "
                             f"{self.groups} key/value heads")
        if isinstance(self.dropout, bool) or not 0 <= self.dropout < 1:
            raise ValueError(f"MultiHeadSelfAttention: dropout must be in [0, 1), "
                             f"got {self.dropout!r}")

    @property
    def groups(self) -> int:
        """Key/value heads (heads when kv_heads is 0)."""
        return self.kv_heads or self.heads

    def output_shape(self, input_shape: Shape) -> Shape:
        check_rank("MultiHeadSelfAttention", input_shape, 2, "(sequence, hidden)")
        if not self.head_dim and input_shape[1] % self.heads:
            raise ShapeError(
                f"MultiHeadSelfAttention: hidden size {input_shape[1]} "
                f"is not divisible by {self.heads} heads"
            )
        return input_shape

    def widths(self, input_shape: Shape) -> tuple[int, int, int]:
        """(H, q, kv): the hidden size, and the widths of Q and of each of K and V."""
        h = self.output_shape(input_shape)[1]
        d = self.head_dim or h // self.heads
        return h, self.heads * d, self.groups * d

    def _biases(self) -> tuple[bool, bool]:
        """(Q, K, V biases, output bias)."""
        return (self.use_bias if self.qkv_bias is None else self.qkv_bias), self.use_bias

    def params(self, input_shape: Shape) -> int:
        h, q, kv = self.widths(input_shape)
        qkv_bias, out_bias = self._biases()
        return 2 * h * q + 2 * h * kv + qkv_bias * (q + 2 * kv) + out_bias * h

    def param_tensors(self, input_shape: Shape) -> int:
        return 4 + 3 * self._biases()[0] + self._biases()[1]  # Q, K, V, output; biases

    def _bias(self, x: Shape, batch: int) -> int:
        h, q, kv = self.widths(x)
        qkv_bias, out_bias = self._biases()
        return batch * x[0] * (qkv_bias * (q + 2 * kv) + out_bias * h)

    def _tiles(self, x: Shape) -> tuple[int, float]:
        """Flash: tiles per sequence T, and the fraction of score tiles computed."""
        tiles = math.ceil(x[0] / FLASH_TILE)
        return tiles, (tiles + 1) / (2 * tiles) if self.causal else 1.0

    def _per_head(self, x: Shape, batch: int, visited: float = 1.0) -> tuple[Gemm, Gemm]:
        """The batched per-head products (S, S', d) and (S, d, S'), split by head, over
        the S' = visited S keys each query row meets."""
        s, n = x[0], batch * self.heads
        d = self.widths(x)[1] // self.heads
        keys = math.ceil(s * visited)
        return Gemm(s, keys, d, n, split="batch"), Gemm(s, d, keys, n, split="batch")

    def _core_flops(self, x: Shape, batch: int, matmuls: int, per_score: float) -> float:
        """The per-head products (`matmuls` of them per score) and per-score work."""
        scores = batch * self.heads * x[0] ** 2
        return matmuls * 2 * scores * (self.widths(x)[1] // self.heads) + scores * per_score

    def _rope(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        """Rotating Q and K (forward), or their gradients (backward_data)."""
        if not self.rope:
            return ZERO
        _, q, kv = self.widths(x)
        elements = batch * x[0] * (q + kv)
        return Cost(3.0 * elements, 2.0 * elements * dtype_bytes, kernels=1)

    def _forward(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        h, q, kv = self.widths(x)
        t, scores = batch * x[0], batch * self.heads * x[0] ** 2
        projections = 2 * t * h * (2 * q + 2 * kv) + self._bias(x, batch)
        attention = self._core_flops(x, batch, 2, 1 + SOFTMAX_FORWARD_FLOPS)
        projection_gemms = (Gemm(t, q + 2 * kv, h, split="n"), Gemm(t, h, q, split="k"))
        rope = self._rope(x, batch, dtype_bytes)
        if self.implementation != "flash":  # unfused or eager
            # X read; Q, K, V written, read by the products; context written, read; Y written
            words = t * (2 * h + 4 * q + 4 * kv) + 4 * scores + self.params(x)
            gemms = (projection_gemms[0], *self._per_head(x, batch), projection_gemms[1])
            return Cost(projections + attention, float(words * dtype_bytes), gemms=gemms,
                        kernels=5) + rope
        tiles, visited = self._tiles(x)
        rows = batch * self.heads * x[0]  # one log-sum-exp per row of each head
        # projections as above; Q read and O written once, K and V once per Q tile
        io = t * (2 * h + 2 * q + 2 * kv) + t * (2 * q + 2 * tiles * visited * kv) + rows
        gemms = (projection_gemms[0], *self._per_head(x, batch, visited), projection_gemms[1])
        return Cost(projections + attention * visited, float((io + self.params(x)) * dtype_bytes),
                    gemms=gemms, kernels=3) + rope

    def _backward_data(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        h, q, kv = self.widths(x)
        t, scores = batch * x[0], batch * self.heads * x[0] ** 2
        w = self.params(x) - self._biases()[0] * (q + 2 * kv) - self._biases()[1] * h
        projections = 2 * t * h * (2 * q + 2 * kv) + 2 * t * h  # dx sums the Q, K, V paths
        projection_gemms = (Gemm(t, q, h, split="n"), Gemm(t, h, q + 2 * kv, split="k"))
        rope = self._rope(x, batch, dtype_bytes)
        proj_words = t * (2 * h + 2 * q + 2 * kv)  # dY, dX and the head-side gradients
        if self.implementation != "flash":  # unfused or eager
            attention = self._core_flops(x, batch, 4, 1 + SOFTMAX_BACKWARD_FLOPS)
            # dcontext, Q read and dQ written; V, K read and dV, dK written
            words = proj_words + t * (3 * q + 4 * kv) + 6 * scores + w
            scores_gemm, context_gemm = self._per_head(x, batch)
            gemms = (projection_gemms[0], scores_gemm, replace(context_gemm, count=3),
                     projection_gemms[1])
            return Cost(projections + attention, float(words * dtype_bytes), gemms=gemms,
                        kernels=7) + rope
        tiles, visited = self._tiles(x)
        # the scores and probabilities recomputed, then the four gradient matmuls
        per_score = 1 + SOFTMAX_FORWARD_FLOPS + SOFTMAX_BACKWARD_FLOPS
        flash = self._core_flops(x, batch, 5, per_score) * visited
        rows = batch * self.heads * x[0]
        # D = rowsum(dO * O) reads dO and O; per K, V tile K, V read and dK, dV written
        # once; Q, dO re-read and dQ read and written once per tile
        io = (proj_words + t * (2 * q + 4 * kv) + 4 * tiles * visited * t * q
              + (1 + 2 * tiles * visited) * rows + w)
        scores_gemm, context_gemm = self._per_head(x, batch, visited)
        gemms = (projection_gemms[0], replace(scores_gemm, count=2),
                 replace(context_gemm, count=3), projection_gemms[1])
        return Cost(projections + flash, float(io * dtype_bytes), gemms=gemms, kernels=4) + rope

    def _backward_weights(self, x: Shape, batch: int, dtype_bytes: int) -> Cost:
        h, q, kv = self.widths(x)
        t = batch * x[0]
        flops = 2 * t * h * (2 * q + 2 * kv) + self._bias(x, batch)
        gemms = (Gemm(q, h, t, split="m"), Gemm(h, q + 2 * kv, t, split="n"))
        words = t * (2 * h + 2 * q + 2 * kv) + self.params(x)  # X, dY, context, dQKV
        return Cost(flops, float(words * dtype_bytes), gemms=gemms,
                    kernels=2 + self._biases()[0] + self._biases()[1])

    # -- attention dropout, and what the backward keeps (module docstring) -------------
    def cost(self, input_shape: Shape, batch: int, phase: Phase, dtype_bytes: int = 4) -> Cost:
        base = super().cost(input_shape, batch, phase, dtype_bytes)
        if phase not in ("forward", "backward_data"):
            return base
        if self.dropout:
            base += self._dropout_cost(input_shape, batch, phase, dtype_bytes)
        if self.implementation == "eager":
            base += self._eager_cost(input_shape, batch, phase, dtype_bytes)
        return base

    def _eager_cost(self, x: Shape, batch: int, phase: Phase, dtype_bytes: int) -> Cost:
        """Eager (module docstring): forward, the scale and the mask's addition as two
        passes over the scores (the mask, one value per key, read too; the addition one
        FLOP per score, the scale's already counted); backward_data, the scale's
        gradient as one pass (the addition passes its gradient through)."""
        scores = batch * self.heads * x[0] ** 2
        if phase == "forward":
            return Cost(float(scores), float((4 * scores + batch * x[0]) * dtype_bytes), kernels=2)
        return Cost(0.0, float(2 * scores * dtype_bytes), kernels=1)

    def _dropout_cost(self, x: Shape, batch: int, phase: Phase, dtype_bytes: int) -> Cost:
        scores = batch * self.heads * x[0] ** 2
        if self.implementation != "flash":  # unfused or eager
            flops = DROPOUT_FORWARD_FLOPS if phase == "forward" else DROPOUT_BACKWARD_FLOPS
            return Cost(float(scores * flops), dropout_bytes(scores, dtype_bytes))
        per_score = DROPOUT_FORWARD_FLOPS + (phase != "forward") * DROPOUT_BACKWARD_FLOPS
        return Cost(scores * self._tiles(x)[1] * per_score, kernels=0)  # inside the kernel

    def saved_bytes(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Saved:
        h, q, kv = self.widths(input_shape)
        t, scores = batch * input_shape[0], batch * self.heads * input_shape[0] ** 2
        made = t * (2 * q + 2 * kv) * dtype_bytes  # Q, K, V and the context
        if self.implementation == "flash":
            return Saved(t * h * dtype_bytes, made + batch * self.heads * input_shape[0] * LSE_BYTES)
        dropped = scores * (MASK_BYTES + dtype_bytes) if self.dropout else 0
        return Saved(t * h * dtype_bytes, made, float(scores * dtype_bytes + dropped))

    def recompute_cost(self, input_shape: Shape, batch: int, dtype_bytes: int) -> Cost:
        """Unfused: the scores, softmax, dropout and context forward again, from the
        kept Q, K, V: 3 kernels (4 with dropout) reading Q, K, V and writing the
        context, with the scores and probabilities through memory."""
        self.output_shape(input_shape)
        if self.implementation == "flash":
            return ZERO
        _, q, kv = self.widths(input_shape)
        t, scores = batch * input_shape[0], batch * self.heads * input_shape[0] ** 2
        flops = self._core_flops(input_shape, batch, 2, 1 + SOFTMAX_FORWARD_FLOPS)
        core = Cost(flops, float((t * (2 * q + 2 * kv) + 4 * scores) * dtype_bytes),
                    gemms=self._per_head(input_shape, batch), kernels=3)
        if self.dropout:
            core += self._dropout_cost(input_shape, batch, "forward", dtype_bytes)
        if self.implementation == "eager":
            core += self._eager_cost(input_shape, batch, "forward", dtype_bytes)
        return core
