"""What one iteration of a replica costs: the training cost model applied to a batch
of prefill chunks and decode steps (Agrawal et al., "Vidur", MLSys 2024, section 3:
an iteration's time is its operators' times, each a function of the batch's tokens
and of its requests' contexts).

Per layer of a decoder split tp ways (Megatron-LM's column/row split; GQA's kv_heads
sharded with the query heads), for an iteration of T tokens:

    GEMMs       QKV (T, q + 2 kv, H), output (T, H, q), gate+up (T, 2 F, H), down
                (T, H, F), each n or k divided by tp: priced by cost.gpu.gemm_seconds
                (tile and wave quantisation, split-K), their weights and activations
                read and written once at the achievable bandwidth
    attention   FlashAttention over each request's context: 4 (heads / tp) d FLOPs per
                query-key pair (causal inside a prefill chunk), K and V of every
                context token read once (decode is the memory-bound read of the KV cache)
    TP          two ring all-reduces of T H words (formulas.ring_allreduce_seconds)
                over the replica's links

plus the LM head (E, V / tp, H) over the E requests that emit a token this iteration.
Each kernel is max(compute, memory) (the roofline inside one kernel: GpuCost with
overlap "max"); kernels and collectives add up, one after another, as llm-analysis
adds a layer's kernels. Every unit of the replica runs its shard in lockstep, so one
unit's time is the iteration's. ASSUMPTION: norms, rotary embedding and SwiGLU are
kernels whose bytes are counted with their GEMMs' activations, and flash attention
reads K and V once per chunk (chunks of at most a few tiles).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..cost.gpu import GpuCost
from ..formulas import ring_allreduce_seconds
from ..graph import GemmRows
from ..hardware import ComputeUnit
from ..zoo.spec import TransformerSpec

KERNELS_PER_LAYER = 9
"""QKV, rotary, attention, output, two norms, gate+up, SwiGLU, down (the residual adds
fused into the norms, as vLLM's fused_add_rms_norm)."""


@dataclass(frozen=True)
class Shard:
    """One unit's share of a transformer split tp ways, and its bytes per value."""

    spec: TransformerSpec
    tp: int
    value_bytes: int

    @property
    def heads(self) -> int:
        return self.spec.heads // self.tp

    @property
    def q(self) -> int:
        return self.heads * self.spec.head_size

    @property
    def kv(self) -> int:
        """K (or V) width per unit: kv_heads / tp heads, at least one (replicated)."""
        return max(1, self.spec.kv_group_count // self.tp) * self.spec.head_size

    @property
    def ffn(self) -> int:
        return self.spec.ffn_size // self.tp

    def kv_bytes_per_token(self) -> int:
        """K and V of one token over all layers, on one unit."""
        return 2 * self.kv * self.spec.layers * self.value_bytes

    def layer_gemms(self, tokens: int) -> list[tuple[int, int, int]]:
        h = self.spec.hidden
        up = 2 * self.ffn if self.spec.activation == "swiglu" else self.ffn
        return [(tokens, self.q + 2 * self.kv, h), (tokens, h, self.q), (tokens, up, h),
                (tokens, h, self.ffn)]


class IterationCost:
    """seconds(tokens, emits, pairs, context) of one iteration on one replica."""

    def __init__(self, shard: Shard, unit: ComputeUnit, precision: str,
                 link: tuple[float, float]) -> None:
        self.shard, self.unit, self.precision = shard, unit, precision
        self.cost = GpuCost(precision, overlap="max")
        self.latency, self.bandwidth = link  # of the replica's slowest hop
        self.rate = unit.peak(precision) * unit.efficiency
        self._gemms = lru_cache(maxsize=None)(self._gemm_seconds)

    def _kernels(self, shapes: list[tuple[int, int, int]]) -> float:
        """Sum of max(compute, memory) of GEMMs (m, n, k), each reading its weights and
        input and writing its output once."""
        rows = GemmRows.of([[_Shape(*s)] for s in shapes])
        b = self.shard.value_bytes
        nbytes = [b * (n * k + m * k + m * n) for m, n, k in shapes]
        flops = np.array([2.0 * m * n * k for m, n, k in shapes])
        return float(self.cost.work_seconds(flops, np.array(nbytes, float), self.unit,
                                            gemms=rows, kernels=np.ones(len(flops))).sum())

    def _gemm_seconds(self, tokens: int, emits: int) -> float:
        """The iteration's GEMMs, kernel launches and TP all-reduces: a function of its
        token and emit counts alone, so cached."""
        spec, tp = self.shard.spec, self.shard.tp
        layer = self._kernels(self.shard.layer_gemms(tokens)) if tokens else 0.0
        head = self._kernels([(emits, spec.vocab // tp, spec.hidden)]) if emits else 0.0
        words = tokens * spec.hidden * self.shard.value_bytes
        reduce = (2 * float(ring_allreduce_seconds(tp, words, self.latency, self.bandwidth))
                  if tp > 1 else 0.0)
        launches = (KERNELS_PER_LAYER - 4) * self.unit.overhead_s  # the non-GEMM kernels
        return spec.layers * (layer + reduce + launches) + head

    def attention_seconds(self, pairs: float, context: float) -> float:
        """All layers' attention over `pairs` query-key pairs and `context` K, V tokens
        read, as one kernel per layer at max(compute, memory)."""
        s = self.shard
        flops = 4.0 * s.heads * s.spec.head_size * pairs
        nbytes = float(s.kv_bytes_per_token() / s.spec.layers * context)
        t = self.cost.work_seconds(np.array([flops]), np.array([nbytes]), self.unit)
        return s.spec.layers * float(t[0])

    def seconds(self, tokens: int, emits: int, pairs: float, context: float) -> float:
        """One iteration of `tokens` tokens in all, `emits` of them emitting a token,
        `pairs` query-key pairs and `context` KV tokens read per layer."""
        return self._gemms(tokens, emits) + self.attention_seconds(pairs, context)


@dataclass(frozen=True)
class _Shape:
    """A GEMM row for GemmRows.of (m, n, k, one product, one launch)."""

    m: int
    n: int
    k: int
    batch: int = 1
    count: int = 1


def chunk_pairs(done: int, q: int) -> int:
    """Query-key pairs of q new tokens after `done` cached ones, causal: each new token
    i = 1..q meets done + i keys."""
    return q * done + q * (q + 1) // 2
