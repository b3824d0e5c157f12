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
    """seconds(tokens, emits, pairs, context) of one iteration on one replica, for
    iterations of at most `max_tokens` tokens and `max_emits` emitting requests."""

    def __init__(self, shard: Shard, unit: ComputeUnit, precision: str,
                 link: tuple[float, float], max_tokens: int, max_emits: int) -> None:
        self.shard, self.unit = shard, unit
        self.cost = GpuCost(precision, overlap="max")
        self.latency, self.bandwidth = link  # of the replica's slowest hop
        spec = shard.spec
        m = np.arange(1, max_tokens + 1)
        words = m * spec.hidden * shard.value_bytes
        reduce = (2 * ring_allreduce_seconds(shard.tp, words, self.latency, self.bandwidth)
                  if shard.tp > 1 else 0.0)
        launches = (KERNELS_PER_LAYER - 4) * unit.overhead_s  # the non-GEMM kernels
        layer = self._kernels(m, shard.layer_gemms(1)) + reduce + launches
        self.layer = np.concatenate([[0.0], spec.layers * layer]).tolist()
        e = np.arange(1, max_emits + 1)
        head = self._kernels(e, [(1, spec.vocab // shard.tp, spec.hidden)])
        self.head = np.concatenate([[0.0], head]).tolist()
        # attention's compute and memory times are linear in pairs and context: the
        # cost model's times of one pair and of one token's K and V, per layer
        one = self.cost.work_seconds(np.array([4.0 * shard.heads * spec.head_size, 0.0]),
                                     np.array([0.0, shard.kv_bytes_per_token() / spec.layers]),
                                     unit) - unit.overhead_s
        self.per_pair, self.per_token = float(one[0]), float(one[1])

    def _kernels(self, m: np.ndarray, shapes: list[tuple[int, int, int]]) -> np.ndarray:
        """Per row count in `m`, the sum of max(compute, memory) of the GEMMs (m, n, k)
        (shapes given at m = 1), each reading its weights and input and writing its
        output once."""
        b, cols = self.shard.value_bytes, len(shapes)
        task = np.arange(len(m) * cols)
        mm = np.repeat(m, cols)
        n = np.tile([s[1] for s in shapes], len(m))
        k = np.tile([s[2] for s in shapes], len(m))
        ones = np.ones_like(task)
        rows = GemmRows(task, mm, n, k, ones, ones)
        flops = 2.0 * mm * n * k
        nbytes = b * (n * k + mm * k + mm * n).astype(float)
        t = self.cost.work_seconds(flops, nbytes, self.unit, gemms=rows, kernels=ones)
        return t.reshape(len(m), cols).sum(axis=1)

    def attention_seconds(self, pairs: float, context: float) -> float:
        """All layers' attention over `pairs` query-key pairs and `context` K, V tokens
        read: one kernel per layer, combined as GpuCost.work_seconds combines them."""
        c, m = self.per_pair * pairs, self.per_token * context
        one = max(c, m) + self.cost.blend * min(c, m) + self.unit.overhead_s
        return self.shard.spec.layers * one

    def seconds(self, tokens: int, emits: int, pairs: float, context: float) -> float:
        """One iteration of `tokens` tokens in all, `emits` of them emitting a token,
        `pairs` query-key pairs and `context` KV tokens read per layer."""
        return self.layer[tokens] + self.head[emits] + self.attention_seconds(pairs, context)


def chunk_pairs(done: int, q: int) -> int:
    """Query-key pairs of q new tokens after `done` cached ones, causal: each new token
    i = 1..q meets done + i keys."""
    return q * done + q * (q + 1) // 2
