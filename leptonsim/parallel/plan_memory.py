"""Memory of every device of a step configuration, checked before anything is built:
a configuration that does not fit is reported, not simulated as if it fitted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..errors import DoesNotFit
from ..hardware import Cluster
from ..models import Model
from ..quantities import format_quantity
from . import experts, offload
from .config import ParallelConfig
from .memory import MemoryBreakdown, kept_parts, model_state_bytes, stage_memory
from .pipeline import Op, schedule
from .tensor import LayerRole


def in_flight(order: list[Op], chunk: int) -> int:
    """Most micro-batches of a chunk whose forward ran and backward did not yet."""
    live = peak = 0
    for kind, _, c in order:
        if c == chunk:
            live += 1 if kind == "F" else -1
            peak = max(peak, live)
    return max(peak, 1)


def peak_in_flight(order: list[Op], per_chunk: Sequence[float]) -> float:
    """The most a stage keeps at once when each in-flight micro-batch of chunk c keeps
    per_chunk[c]: the peak over its order of the chunks' sum, not the sum of each
    chunk's peak (an interleaved first stage holds p (1 + (p-1)/(pm)) chunk-micro-batches
    at its peak, Korthikanti et al., MLSys 2023, section 4.3; in_flight per chunk sums
    to more)."""
    live = [0] * len(per_chunk)
    peak = 0.0
    for kind, _, c in order:
        live[c] += 1 if kind == "F" else -1
        peak = max(peak, sum(n * b for n, b in zip(live, per_chunk, strict=True)))
    return peak if peak > 0 else max(per_chunk)


def plan_memory(model: Model, cfg: ParallelConfig, cluster: Cluster, roles: list[LayerRole],
                stages: list[tuple[int, int]], orders: list[list[Op]]
                ) -> tuple[tuple[str, MemoryBreakdown], ...]:
    """Per pipeline stage, its name and the memory one unit of it needs (check_fits
    compares it with the units')."""
    sharded = vocab_parallel(model, roles) if cfg.tp > 1 else [r.sharded for r in roles]
    sp = cfg.sp and cfg.tp > 1
    rows = []
    for s, order in enumerate(orders):
        ranges = [stages[c * cfg.pp + s] for c in range(cfg.chunks)]
        parts = [_held_params(stage_memory(
            model, r, tp=cfg.tp, microbatch_size=cfg.microbatch_size, in_flight=1,
            optimizer=cfg.optimizer, dtype_bytes=cfg.dtype_bytes, recompute=cfg.recompute,
            training=cfg.training, sharded=sharded, sp=sp, dp=cfg.replicas, zero=cfg.zero),
            model, r, sharded, cfg) for r in ranges]
        state = [sum(getattr(p, f) for p in parts)
                 for f in ("weights_bytes", "gradients_bytes", "optimizer_bytes")]
        if cfg.training:
            kept = [kept_parts(model, r, tp=cfg.tp, dtype_bytes=cfg.dtype_bytes,
                               recompute=cfg.recompute, sharded=sharded, sp=sp) for r in ranges]
            activations = cfg.microbatch_size * (peak_in_flight(order, [k for k, _ in kept])
                                                 + max(r for _, r in kept))
        else:
            activations = sum(p.activations_bytes for p in parts)
        memory = _context(MemoryBreakdown(state[0], state[1], state[2], activations), cfg)
        if cfg.offload_optimizer or cfg.offload_activations:  # their terms on the host
            moved = sum(offload.offloaded_activations(model, r, cfg, sharded, in_flight(order, c))
                        for c, r in enumerate(ranges)) if cfg.offload_activations else 0.0
            memory = offload.on_gpu(memory, moved, cfg)
        rows.append((f"stage {s} ({cluster.units[cfg.rank(0, s, 0)].name})", memory))
    return tuple(rows)


def _context(m: MemoryBreakdown, cfg: ParallelConfig) -> MemoryBreakdown:
    """With context parallelism a rank keeps the activations of its s/cp tokens: every
    saved tensor is per token, and an unfused attention's scores are its s/cp query
    rows against s keys, so all of Korthikanti et al.'s terms divide by cp (the weights
    do not; ZeRO shards over the dp x cp ranks: parallel.context)."""
    return m if cfg.cp == 1 else replace(m, activations_bytes=m.activations_bytes / cfg.cp)


def vocab_parallel(model: Model, roles: list[LayerRole]) -> list[bool]:
    """Which layers' memory tensor parallelism splits: the roles' split layers, and the
    two Megatron-LM splits over the vocabulary (Shoeybi et al. 2019, section 3): the
    word embedding (VocabParallelEmbedding: the model's largest un-pooled embedding;
    positions and token types stay whole), whose V/t rows each rank holds, and the
    loss after a split LM head (vocab_parallel_cross_entropy), whose softmax each rank
    keeps for its V/t logits."""
    sharded = [r.sharded for r in roles]
    layers = model.layers
    tables = [(layer.op.vocab, i) for i, layer in enumerate(layers)  # type: ignore[attr-defined]
              if layer.kind == "embedding" and not layer.op.pooling]  # type: ignore[attr-defined]
    if tables:
        sharded[max(tables)[1]] = True
    for i in range(1, len(layers)):
        if layers[i].kind == "softmax_xent" and layers[i - 1].kind == "dense" and sharded[i - 1]:
            sharded[i] = True
    return sharded


def _held_params(m: MemoryBreakdown, model: Model, layers: tuple[int, int],
                 sharded: list[bool], cfg: ParallelConfig) -> MemoryBreakdown:
    """The stage's parameter terms with expert parallelism: a rank holds 1/ep of each
    MoE layer's routed experts (parallel.experts), and ZeRO shards those over the dp/ep
    replicas holding the same experts (Megatron-Core's expert data-parallel group;
    llm-analysis divides them by dp/ep likewise), the rest over all dp."""
    if cfg.ep == 1:
        return m
    whole = rep = own = 0.0
    for i in range(*layers):
        layer, share = model.layers[i], cfg.tp if sharded[i] else 1
        whole += layer.params / share
        rep += experts.replicated_params(layer, cfg.ep) / share
        own += experts.held_expert_params(layer, cfg.ep) / share

    def state(n: float, dp: int) -> tuple[float, float, float]:
        return model_state_bytes(n, 0.0, optimizer=cfg.optimizer, dtype_bytes=cfg.dtype_bytes,
                                 dp=dp, zero=cfg.zero if cfg.training else 0)

    delta = [a + b - c for a, b, c in zip(state(rep, cfg.dp), state(own, cfg.dp // cfg.ep),
                                          state(whole, cfg.dp), strict=True)]
    if not cfg.training:
        return replace(m, weights_bytes=m.weights_bytes + delta[0])
    return replace(m, weights_bytes=m.weights_bytes + delta[0],
                   gradients_bytes=m.gradients_bytes + delta[1],
                   optimizer_bytes=m.optimizer_bytes + delta[2])


def check_fits(rows: Sequence[tuple[str, MemoryBreakdown]], cluster: Cluster, units: list[int],
               cfg: ParallelConfig) -> None:
    """Raise DoesNotFit for the first row whose unit's memory is too small, saying by how
    much and what to change."""
    for (where, need), u in zip(rows, units, strict=True):
        capacity = cluster.units[u].memory_bytes
        if need.total_bytes > capacity:
            raise _overflow(where, need, capacity, cfg)


def _overflow(where: str, m: MemoryBreakdown, capacity: float, cfg: ParallelConfig) -> DoesNotFit:
    def gib(x: float) -> str:
        return format_quantity(x, "bytes")

    need = (f"{where} needs {gib(m.total_bytes)} per unit, {gib(m.total_bytes - capacity)} "
            f"more than its {gib(capacity)} (weights {gib(m.weights_bytes)}, gradients "
            f"{gib(m.gradients_bytes)}, optimizer {gib(m.optimizer_bytes)}, activations "
            f"{gib(m.activations_bytes)})")
    advice = (f"try more tp/pp, recompute, or fewer micro-batches in flight "
              f"(dp={cfg.dp} pp={cfg.pp} tp={cfg.tp}" + (f" cp={cfg.cp})" if cfg.cp > 1 else ")"))
    if cfg.training and cfg.dp > 1 and cfg.zero < 3:
        advice += f", or a zero stage above {cfg.zero} to shard the model state over dp"
    return DoesNotFit(need, advice, m.total_bytes, capacity)


def memory_notes(cfg: ParallelConfig) -> list[list[str]]:
    """Per pipeline stage, what its memory terms assume, for the report: how ZeRO shards
    the model state over dp, what tp splits, how activations are kept and how many
    micro-batches (of all its chunks) a stage holds at its peak."""
    shared = []
    if cfg.training and cfg.dp > 1:
        sharded = [term for term, stage in (("optimizer state and fp32 master weights", 1),
                                             ("gradients", 2), ("weights", 3))
                   if cfg.zero >= stage]
        shared.append(f"ZeRO-{cfg.zero}: {', '.join(sharded)} sharded over dp {cfg.dp}"
                      if sharded else f"model state replicated over dp {cfg.dp} (zero 0)")
    if cfg.tp > 1:
        shared.append(f"split layers and the word embedding over tp {cfg.tp}")
    if cfg.ep > 1:
        shared.append(f"1/{cfg.ep} of each MoE layer's routed experts per rank (ep {cfg.ep})")
    if not cfg.training:
        return [[*shared, "inference: the largest layer output, in and out"]] * cfg.pp
    kept = f"activations: recompute {cfg.recompute}" + (
        ", sequence parallel" if cfg.sp and cfg.tp > 1 else "")
    orders = schedule(cfg.schedule, cfg.pp, cfg.microbatches, cfg.chunks)
    peaks = [round(peak_in_flight(order, [1.0] * cfg.chunks)) for order in orders]
    return [[*shared, kept, f"{n} micro-batch{'es' if n > 1 else ''} in flight at the peak "
             f"({cfg.schedule})"] for n in peaks]
