"""Megatron-style tensor parallelism: which layers are split, where groups talk.

Walking the layers in order: a Dense layer opens a column-parallel region, the next
Dense closes it as row-parallel, and elementwise layers in between are split too
(MLP: fc → activation → proj). Attention is a whole region by itself (QKV column-
parallel, output projection row-parallel). Closing a region needs an all-reduce of
its output in the forward pass, and the region's opener needs one on its input
gradient in the backward pass (Shoeybi et al., 2019, Fig. 3: operators g and f). A
region left open at a layer that cannot be split ends with an all-gather of its
output (whose backward is a free slice) and the same all-reduce at its opener.
Norms, residual adds, convolutions, pooling, embeddings and losses are replicated:
every rank of the group computes them whole.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..models import Model

ELEMENTWISE = {"relu", "gelu", "tanh", "sigmoid", "activation"}


@dataclass(frozen=True, slots=True)
class LayerRole:
    sharded: bool            # its FLOPs, bytes and parameters divide by tp
    forward_after: str       # collective after its forward: "", "allreduce", "allgather"
    backward_after: str      # collective after its backward: "", "allreduce"


def layer_roles(model: Model) -> list[LayerRole]:
    kinds = [layer.kind for layer in model.layers]
    sharded = [False] * len(kinds)
    fwd = [""] * len(kinds)
    bwd = [""] * len(kinds)
    opener = -1  # index of the Dense that opened the current column-parallel region
    for i, kind in enumerate(kinds):
        if kind == "attention":
            _close_open(opener, i - 1, sharded, fwd, bwd)
            opener = -1
            sharded[i], fwd[i], bwd[i] = True, "allreduce", "allreduce"
        elif kind == "dense" and opener < 0:
            opener, sharded[i] = i, True
        elif kind == "dense":
            sharded[i], fwd[i], bwd[opener] = True, "allreduce", "allreduce"
            opener = -1
        elif opener >= 0 and kind in ELEMENTWISE:
            sharded[i] = True
        elif opener >= 0:
            _close_open(opener, i - 1, sharded, fwd, bwd)
            opener = -1
    _close_open(opener, len(kinds) - 1, sharded, fwd, bwd)
    return [LayerRole(*r) for r in zip(sharded, fwd, bwd, strict=True)]


def _close_open(opener: int, last: int, sharded: list[bool], fwd: list[str], bwd: list[str]) -> None:
    """An open column-parallel region ends: gather its output; reduce the opener's
    input gradient."""
    if opener >= 0:
        fwd[last] = "allgather"
        bwd[opener] = "allreduce"
