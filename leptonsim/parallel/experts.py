"""Expert parallelism: the experts of each MoE layer spread over `ep` replicas.

As Megatron-Core and DeepSpeed-MoE place them (Rajbhandari et al., "DeepSpeed-MoE:
Advancing Mixture-of-Experts Inference and Training", ICML 2022, section 4.1; Lepikhin
et al., "GShard", ICLR 2021, section 2.2), the ep ranks of a group lie inside the data-
parallel group: replicas d = g ep .. g ep + ep - 1 form expert-parallel group g, each
holding experts / ep of every MoE layer's routed experts (the router and the shared
experts stay whole on every replica), so the units stay dp x pp x tp. Around each MoE
layer the group's replicas exchange their tokens: an all-to-all dispatch before the
experts and an all-to-all combine after them, and both again, reversed, in the
backward. Each rank sends its tokens' top_k copies (ops.moe.MoE.dispatch_bytes), 1/ep
of them to each rank of the group (collectives.all_to_all, whose transfers share links
with every other transfer of the step).

ASSUMPTION: routing is balanced across ranks (the op's `imbalance` already scales the
busiest expert's rows), so a rank's expert rows, and its FLOPs, are those of the op on
one replica's tokens whatever ep is. Under tensor parallelism each simulated tp rank
exchanges all its tokens among its peers of the same tp index (each holds 1/tp of
every expert's ffn).
"""

from __future__ import annotations

import math

from ..models import Layer, Model
from .config import ParallelConfig


def ep_groups(cfg: ParallelConfig) -> list[tuple[int, ...]]:
    """The replicas of each expert-parallel group, in order (ep = 1: each replica alone)."""
    return [tuple(range(g * cfg.ep, (g + 1) * cfg.ep)) for g in range(cfg.dp // cfg.ep)]


def exchanged_layers(model: Model, cfg: ParallelConfig) -> frozenset[int]:
    """Indices of the MoE layers whose tokens are all-to-alled (none when ep = 1)."""
    if cfg.ep == 1:
        return frozenset()
    return frozenset(i for i, layer in enumerate(model.layers) if layer.kind == "moe")


def exchange_bytes(layer: Layer, cfg: ParallelConfig) -> float:
    """Bytes a rank holds for one all-to-all of this MoE layer: its micro-batch's token
    copies (gradients of the same size in the backward)."""
    return float(layer.op.dispatch_bytes(layer.input_shape, cfg.microbatch_size,  # type: ignore[attr-defined]
                                         cfg.dtype_bytes))


def routed_params(layer: Layer) -> int:
    """Parameters of a MoE layer's routed experts (0 for any other layer)."""
    if layer.kind != "moe":
        return 0
    return layer.op.routed_params(layer.input_shape)  # type: ignore[attr-defined]


def held_expert_params(layer: Layer, ep: int) -> float:
    """Routed-expert parameters one rank of an expert-parallel group holds."""
    return routed_params(layer) / ep


def replicated_params(layer: Layer, ep: int) -> float:
    """Parameters every replica holds and data parallelism all-reduces: all of them
    with ep = 1, else all but the routed experts (the router, the shared experts)."""
    return layer.params - (routed_params(layer) if ep > 1 else 0)


def held_fraction(layer: Layer, ep: int) -> float:
    """The fraction of a layer's parameters one rank holds (its optimizer's share)."""
    if not layer.params or ep == 1:
        return 1.0
    return (replicated_params(layer, ep) + held_expert_params(layer, ep)) / layer.params


def experts_gcd(model: Model) -> int:
    """The greatest common divisor of every MoE layer's expert count (0: no MoE layer,
    which every ep divides)."""
    return math.gcd(*(layer.op.experts for layer in model.layers  # type: ignore[attr-defined]
                      if layer.kind == "moe"))


class ExpertSplitError(ValueError):
    """An ep that splits some MoE layer's experts unevenly."""

    def __init__(self, model: Model, ep: int) -> None:
        counts = sorted({layer.op.experts for layer in model.layers  # type: ignore[attr-defined]
                         if layer.kind == "moe"})
        self.ep = ep
        self.expected = (f"an ep that divides every MoE layer's experts "
                         f"({', '.join(map(str, counts))})" if counts
                         else "ep = 1 (the model has no MoE layer)")
        bad = next((c for c in counts if c % ep), 0)
        self.hint = f"{bad} experts do not split into {ep} equal parts" if counts else (
            "remove ep, or use a MoE model")
        super().__init__(f"ep {ep}: expected {self.expected} ({self.hint})")


def check_experts(model: Model, ep: int) -> None:
    """Raise ExpertSplitError unless ep divides every MoE layer's experts (an ep > 1
    with no MoE layer is an error too: it would change nothing)."""
    g = experts_gcd(model)
    if ep > 1 and (g == 0 or g % ep):
        raise ExpertSplitError(model, ep)
