"""Per layer, the work of one micro-batch on one tensor-parallel rank: FLOPs and bytes
of the forward and the backward, the GEMMs among those FLOPs and the kernels each
launches. The step graph's tasks (step.py), its stage partition and the optimizer's
estimate (optimize/estimate.py) all read it, so one cost model prices them alike.

A layer tensor parallelism shards (tensor.layer_roles) does 1/tp of its FLOPs and
bytes on each rank, and each of its GEMMs loses 1/tp of the dimension the split
divides: a column-parallel Dense its output features, a row-parallel Dense its input
features, attention its heads (ops.base.Gemm.shard). A layer sequence parallelism
splits (role.sequence: norms, adds) runs on 1/tp of the tokens, so it too does 1/tp of
its FLOPs and bytes (such layers have no GEMMs). Context parallelism (parallel.context)
puts every layer on s/cp of the tokens the same way: 1/cp more of its FLOPs, of its
GEMMs' token rows and of its bytes but the weights', which every rank reads whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..graph import GemmRows
from ..models import Layer, Model
from ..ops.base import Cost, Gemm, Phase
from .context import rank_bytes, token_split
from .tensor import LayerRole

FORWARD, BACKWARD, CORE = 0, 1, 2  # CORE: what selective recompute rebuilds (Op.recompute_cost)
BACKWARD_PHASES: tuple[Phase, ...] = ("backward_data", "backward_weights")


@dataclass(frozen=True)
class LayerWork:
    costs: np.ndarray    # (layers, 4): forward FLOPs, forward bytes, backward FLOPs, bytes
    kernels: np.ndarray  # (layers, 3): kernels of the forward, the backward, the core
    gemms: tuple[tuple[tuple[Gemm, ...], ...], ...]  # per layer: (fwd, bwd, core)
    core: np.ndarray     # (layers, 2): FLOPs and bytes selective recompute adds

    def rows(self, phases: Sequence[int] = (FORWARD, BACKWARD),
             layers: Sequence[int] | None = None) -> GemmRows:
        """GEMM rows of these phases of these layers (every layer when None), each
        row's task the layer's position in `layers`: the columns of a cost call."""
        chosen = range(len(self.gemms)) if layers is None else layers
        return GemmRows.of([[g for p in phases for g in self.gemms[i][p]] for i in chosen])

    def segment(self, layers: Sequence[int], phases: Sequence[int]) -> tuple[list[Gemm], int]:
        """The GEMMs and kernel count of these layers' phases, run as one task."""
        gemms = [g for i in layers for p in phases for g in self.gemms[i][p]]
        return gemms, int(self.kernels[list(layers)][:, list(phases)].sum())


def row_parallel(layer: Layer, role: LayerRole) -> bool:
    """A Dense that closes a region: its input features are split (tensor.splits)."""
    return layer.kind == "dense" and role.forward_after == "allreduce"


def layer_work(model: Model, microbatch: int, dtype_bytes: int, tp: int,
               roles: Sequence[LayerRole], cp: int = 1) -> LayerWork:
    costs = np.zeros((len(model.layers), 4))
    core = np.zeros((len(model.layers), 2))
    kernels = np.zeros((len(model.layers), 3), np.int64)
    gemms = []
    for i, (layer, role) in enumerate(zip(model.layers, roles, strict=True)):
        f = layer.cost(microbatch, "forward", dtype_bytes)
        b = (layer.cost(microbatch, "backward_data", dtype_bytes)
             + layer.cost(microbatch, "backward_weights", dtype_bytes))
        c = layer.op.recompute_cost(layer.input_shape, microbatch, dtype_bytes)
        split = tp if role.sharded or role.sequence else 1
        share = split * cp
        fb = rank_bytes(layer, f.bytes, microbatch, dtype_bytes, ("forward",), cp)
        bb = rank_bytes(layer, b.bytes, microbatch, dtype_bytes, BACKWARD_PHASES, cp)
        costs[i] = (f.flops / share, fb / split, b.flops / share, bb / split)
        core[i] = (c.flops / share, c.bytes / share)
        kernels[i] = (f.kernels, b.kernels, c.kernels)
        row = row_parallel(layer, role)
        gemms.append(tuple(token_split(_shard(x, split, row), cp) for x in (f, b, c)))
    return LayerWork(costs, kernels, tuple(gemms), core)


def _shard(cost: Cost, tp: int, row: bool) -> tuple[Gemm, ...]:
    return tuple(g.shard(tp, row) for g in cost.gemms)
