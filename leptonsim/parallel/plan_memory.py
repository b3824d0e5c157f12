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
from .memory import MemoryBreakdown, stage_memory
from .pipeline import Op
from .tensor import LayerRole


def in_flight(order: list[Op], chunk: int) -> int:
    """Most micro-batches of a chunk whose forward ran and backward did not yet."""
    live = peak = 0
    for kind, _, c in order:
        if c == chunk:
            live += 1 if kind == "F" else -1
            peak = max(peak, live)
    return max(peak, 1)


def plan_memory(model: Model, cfg: ParallelConfig, cluster: Cluster, roles: list[LayerRole],
                stages: list[tuple[int, int]], orders: list[list[Op]]
                ) -> tuple[tuple[str, MemoryBreakdown], ...]:
    sharded = [r.sharded for r in roles]
    rows = []
    for s, order in enumerate(orders):
        parts = [stage_memory(model, stages[c * cfg.pp + s], tp=cfg.tp,
                              microbatch_size=cfg.microbatch_size,
                              in_flight=in_flight(order, c), optimizer=cfg.optimizer,
                              dtype_bytes=cfg.dtype_bytes, recompute=cfg.recompute,
                              training=cfg.training, sharded=sharded, sp=cfg.sp and cfg.tp > 1,
                              dp=cfg.replicas, zero=cfg.zero)
                 for c in range(cfg.chunks)]
        parts = [_context(p, cfg) for p in parts]
        parts = [_held_experts(p, model, stages[c * cfg.pp + s], sharded, cfg)
                 for c, p in enumerate(parts)]
        if cfg.offload_optimizer or cfg.offload_activations:  # their terms on the host
            parts = [offload.on_gpu(p, offload.offloaded_activations(
                model, stages[c * cfg.pp + s], cfg, sharded, in_flight(order, c))
                if cfg.offload_activations else 0.0, cfg) for c, p in enumerate(parts)]
        total = MemoryBreakdown(*(sum(getattr(p, f) for p in parts) for f in (
            "weights_bytes", "gradients_bytes", "optimizer_bytes", "activations_bytes")))
        rows.append((f"stage {s} ({cluster.units[cfg.rank(0, s, 0)].name})", total))
    check_fits(rows, cluster, [cfg.rank(0, s, 0) for s in range(cfg.pp)], cfg)
    return tuple(rows)


def _context(m: MemoryBreakdown, cfg: ParallelConfig) -> MemoryBreakdown:
    """With context parallelism a rank keeps the activations of its s/cp tokens: every
    saved tensor is per token, and an unfused attention's scores are its s/cp query
    rows against s keys, so all of Korthikanti et al.'s terms divide by cp (the weights
    do not; ZeRO shards over the dp x cp ranks: parallel.context)."""
    return m if cfg.cp == 1 else replace(m, activations_bytes=m.activations_bytes / cfg.cp)


def _held_experts(m: MemoryBreakdown, model: Model, layers: tuple[int, int],
                  sharded: list[bool], cfg: ParallelConfig) -> MemoryBreakdown:
    """The stage's parameter terms with expert parallelism: a rank holds 1/ep of each
    MoE layer's routed experts (parallel.experts), so its weights, gradients and
    optimizer state shrink by the parameters it does not hold."""
    if cfg.ep == 1:
        return m
    whole = held = 0.0
    for i in range(*layers):
        layer, share = model.layers[i], cfg.tp if sharded[i] else 1
        whole += layer.params / share
        held += (experts.replicated_params(layer, cfg.ep)
                 + experts.held_expert_params(layer, cfg.ep)) / share
    f = held / whole if whole else 1.0
    return replace(m, weights_bytes=m.weights_bytes * f, gradients_bytes=m.gradients_bytes * f,
                   optimizer_bytes=m.optimizer_bytes * f)


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
