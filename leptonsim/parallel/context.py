"""Context parallelism (`cp`): ring attention over the ranks that split a sequence.

Each of a replica's cp ranks holds s/cp of every sequence's tokens (Megatron-Core's
context parallelism, docs/user-guide/features/context_parallel.md: "CP partitions the
network inputs and all activations along the sequence dimension"; the GPU count is
TP x CP x PP x DP). Every layer but attention treats tokens alone, so it runs
unchanged on s/cp tokens: 1/cp of its FLOPs (parallel.work divides them as it divides
a sequence-parallel layer's by tp), of its GEMMs' token rows (`token_split`) and of its
bytes but the weights', which every rank reads whole (`rank_bytes`).

Attention needs each query to meet every key. Ring attention (Liu, Zaharia & Abbeel,
"Ring Attention with Blockwise Transformers for Near-Infinite Context", ICLR 2024,
section 3 and Algorithm 1) computes it blockwise: a rank attends its s/cp queries to
the K, V block it holds while it sends that block to the next rank of the ring and
receives the previous rank's, so after cp - 1 transfers every query has met all s
keys and each block's transfer overlapped a block's compute. Per rank that is s/cp
queries against s keys: 1/cp of the layer's work. With a causal mask Megatron gives
each rank two of 2 cp chunks (chunk i and 2 cp - 1 - i; TransformerEngine's
context_parallel.py, get_seq_chunk_ids_for_reordering_before_attn) so every rank
does 1/cp of the causal work too, hence the work divides by cp either way and the
causal sequence must split into 2 cp chunks.

In the step graph (parallel.step) an attention layer's task becomes cp equal blocks;
before block j >= 1 a zero "cp_ring" task on each rank marks the arrival of block j
from the previous rank, and the same task forwards it to the next: it runs once the
rank finished block j - 1 and the block is in (TransformerEngine issues the send of
step j + 1's K, V when it starts step j). On an uncontended ring with block compute
c and transfer x the layer takes c + (cp - 1) max(c, x): transfers faster than the
compute are hidden, slower ones expose (cp - 1)(x - c) (tests/test_context.py).
A message is K and V of s/cp tokens, 2 (s/cp) kv_heads head_dim bytes per element
and sample; in the backward K, V circulate again with dK, dV beside them ("gathers KV
again in backward", the dK, dV reduce-scatter as point-to-point transfers in the same
ring: Megatron-Core's docs), twice the bytes, over the same cp - 1 steps.

Weight gradients are reduced over dp x cp ranks (Megatron-Core's
finalize_model_grads and DDP use get_data_parallel_group(with_context_parallel=True)),
and ZeRO shards over the same dp x cp ranks: the step builder treats the dp x cp ranks
as its replicas (ParallelConfig.replicas), which each ring groups cp at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..graph import GraphBuilder
from ..models import Layer, Model
from ..ops.base import Gemm, Phase
from . import experts
from .config import ParallelConfig

RING_KIND = "cp_ring"


class ContextSplitError(ValueError):
    """A cp the model cannot take: no attention, or a sequence it does not split."""

    def __init__(self, cp: int, expected: str, hint: str = "") -> None:
        self.cp, self.expected, self.hint = cp, expected, hint
        super().__init__(f"cp {cp}: expected {expected}" + (f" ({hint})" if hint else ""))


def attention_layers(model: Model) -> list[int]:
    return [i for i, layer in enumerate(model.layers) if layer.kind == "attention"]


def check_context(model: Model, cfg: ParallelConfig) -> None:
    """Raise ContextSplitError unless cp splits every attention layer's sequence evenly
    (into 2 cp chunks when causal, as Megatron balances it), with sequence parallelism
    leaving a multiple of tp tokens per rank."""
    cp = cfg.cp
    if cp == 1:
        return
    layers = attention_layers(model)
    if not layers:
        raise ContextSplitError(cp, "cp = 1 for a model without attention layers",
                                f"{model.name!r} has none; context parallelism splits a "
                                f"transformer's sequence around its attention")
    for i in layers:
        layer = model.layers[i]
        seq = layer.input_shape[0]
        if seq % cp:
            raise ContextSplitError(cp, f"a divisor of the sequence length ({seq})")
        if getattr(layer.op, "causal", False) and seq % (2 * cp):
            raise ContextSplitError(cp, f"a cp whose 2 x cp chunks divide the causal sequence "
                                        f"length ({seq})",
                                    "Megatron balances causal attention over 2 x cp chunks")
        if cfg.sp and cfg.tp > 1 and (seq // cp) % cfg.tp:
            raise ContextSplitError(cp, f"a cp leaving a multiple of tp = {cfg.tp} tokens per "
                                        f"rank for sequence parallelism ({seq} / {cp} = "
                                        f"{seq // cp})")


def ring_layers(model: Model, cfg: ParallelConfig) -> frozenset[int]:
    """The layers that run as ring attention (none when cp = 1)."""
    return frozenset(attention_layers(model)) if cfg.cp > 1 else frozenset()


def lockstep_groups(cfg: ParallelConfig) -> list[tuple[int, ...]]:
    """Replicas (ParallelConfig.replicas) built together: the cp ranks of a ring, or
    without cp the expert-parallel groups (parallel.experts; cp and ep exclude each
    other, ParallelConfig)."""
    if cfg.cp == 1:  # mirrored: replica 0 alone (parallel.mirror excludes ep > 1)
        return experts.ep_groups(cfg)[:len(cfg.simulated_replicas())]
    return [tuple(range(d * cfg.cp, (d + 1) * cfg.cp)) for d in range(cfg.dp)]


def ring_bytes(layer: Layer, cfg: ParallelConfig, kind: str) -> float:
    """One ring message of one tp rank for one micro-batch: K and V of its s/cp tokens
    and kv_heads / tp heads, and in the backward ("B") dK and dV too. Each tp rank has
    a ring of its own (cp ranks just outside tp: rank (c, t) sends to (c + 1, t)), so
    tp_mode 'symmetric', which simulates rank t = 0, sends the same message as 'full'
    and leaves out only the other tp rings' contention on links they share."""
    seq, kv = layer.input_shape[0], layer.op.widths(layer.input_shape)[2]  # type: ignore[attr-defined]
    tensors = 4 if kind == "B" else 2
    return tensors * cfg.microbatch_size * (seq // cfg.cp) * kv * cfg.dtype_bytes / cfg.tp


def ring_step(b: GraphBuilder, units: Sequence[int], sources: Sequence[int], nbytes: float,
              name: str) -> list[int]:
    """One ring step: on each rank c a zero task that waits for the block rank c - 1
    forwards from its task `sources[c - 1]`; it is the task that forwards it onward."""
    relays = []
    for c, unit in enumerate(units):
        relay = b.task(f"{name}.c{c}", duration_s=0.0, pin=unit, kind=RING_KIND)
        b.edge(sources[c - 1], relay, nbytes)
        relays.append(relay)
    return relays


def rank_bytes(layer: Layer, whole: float, microbatch: int, dtype_bytes: int,
               phases: Sequence[Phase], cp: int) -> float:
    """Bytes of a layer's `phases` on one of cp ranks, from `whole`, their bytes on all
    the tokens: the per-sample part (linear in the tokens, an unfused attention's scores
    too: s/cp rows of s) divided by cp, the weights' part, which every rank reads
    whole, not. The weights' part is the intercept of the bytes, linear in the
    micro-batch: 2 bytes(b) - bytes(2b)."""
    if cp == 1:
        return whole
    double = sum(layer.cost(2 * microbatch, p, dtype_bytes).bytes for p in phases)
    weights = 2 * whole - double
    return weights + (whole - weights) / cp


def token_split(gemms: Sequence[Gemm], parts: int) -> tuple[Gemm, ...]:
    """The GEMMs on 1/parts of the tokens: their rows m divided (rounded up). The rows
    are the tokens of every forward and data-gradient GEMM (and a query block of the
    per-head products, whose keys stay whole); a weight gradient's tokens are its k,
    so its FLOPs are right and its shape approximate (ASSUMPTION)."""
    if parts == 1:
        return tuple(gemms)
    return tuple(replace(g, m=-(-g.m // parts)) for g in gemms)
