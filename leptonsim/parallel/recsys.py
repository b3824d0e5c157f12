"""DLRM-style hybrid parallelism (Naumov et al., 2019): the MLPs data-parallel, the
embedding tables model-parallel, exchanged with all-to-alls.

Per step on P units with global batch B (local batch b = B/P):
  bottom MLP (b)  ─┐
  own tables (B) ──► all-to-all (each owner sends every unit its b rows) ──► interaction,
  top MLP, loss (b) ──► backward of top MLP and interaction ──► all-to-all of the
  embedding gradients back to their owners ──► sparse table updates;
  bottom MLP backward; a ring all-reduce of the MLP gradients; the dense optimizer.
Tables go to units by size (parallel/placement.py), so any number of them works; each
unit then sends its own tables' rows, and the all-to-alls move unequal amounts
(collectives.uneven_all_to_all).

`bottom_first` (embeddings = "sharded_bottom_first") is NVIDIA DeepLearningExamples'
placement (PyTorch/Recommendation/DLRM, dlrm/utils/distributed.py get_device_mapping):
the bottom MLP runs on unit 0 alone over the global batch B, its output one more vector
in the all-to-alls (unit 0 sends every unit its b rows, and gets their gradients back);
above 4 units unit 0 holds no table, the tables going to units 1..P-1 by the same rule.
The top MLP stays data-parallel: only its gradients are all-reduced.
"""

from __future__ import annotations

import math

from .. import mesh
from ..graph import GraphBuilder
from ..hardware import Cluster
from ..models import Model
from ..ops.base import chained_update
from . import collectives
from .config import ParallelConfig
from .memory import MemoryBreakdown, optimizer_state_bytes
from .placement import place_tables
from .plan_memory import check_fits
from .step import StepGraph

EMBEDDING_KINDS = {"embedding"}


def is_recommender(model: Model) -> bool:
    kinds = {layer.kind for layer in model.layers}
    return "embedding" in kinds and "interaction" in kinds


def build_recsys_step(model: Model, cfg: ParallelConfig, cluster: Cluster,
                      bottom_first: bool = False) -> StepGraph:
    p = cfg.dp
    if cfg.pp != 1 or cfg.tp != 1 or cluster.size != p:
        raise ValueError("sharded embeddings need pp = tp = 1 and dp equal to the unit count")
    tables = [i for i, layer in enumerate(model.layers) if layer.kind in EMBEDDING_KINDS]
    split = model.layers.index(next(la for la in model.layers if la.kind == "interaction"))
    bottom = [i for i in range(split) if i not in tables]
    top = list(range(split, len(model.layers)))
    b = GraphBuilder()
    local, dt = cfg.batch // p, cfg.dtype_bytes
    own = table_owners(model, tables, p, dt, bottom_first)
    # who runs the bottom MLP, over how many samples: unit 0 over B, or every unit over b
    bottom_on = {0: cfg.batch} if bottom_first else dict.fromkeys(range(p), local)

    def task(name: str, u: int, layers: list[int], phase: str, batch: int) -> int:
        phases = ("backward_data", "backward_weights") if phase == "backward" else (phase,)
        costs = [model.layers[i].cost(batch, ph, dt) for i in layers for ph in phases]  # type: ignore[arg-type]
        if name == "optimizer":  # the dense update, unfused as the scenario says
            costs = [chained_update(c, phase, dt, cfg.update_kernels) for c in costs]  # type: ignore[arg-type]
        return b.task(f"{name}.u{u}", flops=sum(c.flops for c in costs),
                      nbytes=sum(c.bytes for c in costs), pin=u, kind=name.split(".")[0],
                      gemms=[g for c in costs for g in c.gemms],
                      kernels=sum(c.kernels for c in costs))

    # what each unit holds for the whole batch: its tables' pooled vectors (and unit 0
    # the bottom MLP's output, when it runs it for everyone)
    held = [_vectors(model, own[u], bottom if bottom_first and u == 0 else []) * dt * cfg.batch
            for u in range(p)]
    ready = [task("embedding.fwd", u, own[u], "forward", cfg.batch) for u in range(p)]
    if bottom_first:  # unit 0 sends the bottom MLP's output too
        ready[0] = _after(b, ready[0], task("bottom.fwd", 0, bottom, "forward", cfg.batch))
    sent = collectives.uneven_all_to_all(b, list(range(p)), held, ready, "a2a.fwd")
    grads_back, dense_done = [], []
    for u in range(p):
        bot = None if bottom_first else task("bottom.fwd", u, bottom, "forward", local)
        head = task("top.fwd", u, top, "forward", local)
        if bot is not None:
            b.edge(bot, head)
        b.edge(sent[u], head)
        head_bwd = _after(b, head, task("top.bwd", u, top, "backward", local))
        grads_back.append(head_bwd)
        dense_done.append(head_bwd if bottom_first else
                          _after(b, head_bwd, task("bottom.bwd", u, bottom, "backward", local)))
    returned = collectives.uneven_all_to_all(b, list(range(p)), held, grads_back, "a2a.bwd")
    if bottom_first:  # its input gradient comes back with the tables'
        dense_done[0] = _after(b, returned[0], task("bottom.bwd", 0, bottom, "backward", cfg.batch))
    replicated = top if bottom_first else bottom + top
    mlp_bytes = sum(model.layers[i].params for i in replicated) * dt
    synced = collectives.on_rings(collectives.ring_allreduce, b, mesh.rings(cluster, range(p)),
                                  list(range(p)), mlp_bytes, dense_done, "dp.mlp")
    phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
    for u in range(p):
        b.edge(returned[u], task("embedding.update", u, own[u], phase, cfg.batch))
        dense = _after(b, synced[u], task("optimizer", u, bottom + top if u in bottom_on else top,
                                          phase, local))
        if bottom_first and u == 0:
            b.edge(dense_done[0], dense)
    runs = [[(bottom, bottom_on[u])] if u in bottom_on else [] for u in range(p)]
    memory = tuple((cluster.units[u].name, _memory(model, own[u], runs[u] + [(top, local)], cfg))
                   for u in range(p))
    check_fits(memory, cluster, list(range(p)), cfg)
    return StepGraph(model, b.build(), cfg, ((0, len(model.layers)),), memory,
                     {u: (u,) for u in range(p)})


BOTTOM_ALONE_ABOVE = 4
"""Above this many units NVIDIA's get_device_mapping leaves unit 0 (the bottom MLP's)
without tables."""


def _after(b: GraphBuilder, first: int, then: int) -> int:
    """`then` after `first`; `then`."""
    b.edge(first, then)
    return then


def table_owners(model: Model, tables: list[int], p: int, dtype_bytes: int,
                 bottom_first: bool = False) -> list[list[int]]:
    """Each unit's tables (layer indices) by size (placement.place_tables); with
    `bottom_first` above BOTTOM_ALONE_ABOVE units, over units 1..P-1, unit 0 none."""
    sizes = [model.layers[t].params * dtype_bytes for t in tables]
    alone = bottom_first and p > BOTTOM_ALONE_ABOVE
    placed = place_tables(sizes, p - 1 if alone else p)
    return ([[]] if alone else []) + [[tables[j] for j in mine] for mine in placed]


def _vectors(model: Model, tables: list[int], bottom: list[int]) -> int:
    """Values per sample a unit contributes to the all-to-all: its tables' pooled
    vectors, and the bottom MLP's output if it runs the bottom MLP for every unit."""
    out = sum(math.prod(model.layers[t].output_shape) for t in tables)
    return out + (math.prod(model.layers[bottom[-1]].output_shape) if bottom else 0)


def _memory(model: Model, tables: list[int], dense: list[tuple[list[int], int]],
            cfg: ParallelConfig) -> MemoryBreakdown:
    """Own tables plus the MLPs the unit runs, each with its activations at the batch
    it runs them over; optimizer state for the MLPs only (the tables' sparse rows are
    updated in place, as DLRM does with sparse SGD/Adagrad)."""
    dt = cfg.dtype_bytes
    mlp = sum(model.layers[i].params for layers, _ in dense for i in layers)
    params = sum(model.layers[i].params for i in tables) + mlp
    state = optimizer_state_bytes(cfg.optimizer, dt)
    rows = sum(math.prod(model.layers[i].output_shape) for i in tables) * cfg.batch
    acts = sum(math.prod(model.layers[i].output_shape) * n for layers, n in dense for i in layers)
    return MemoryBreakdown(params * dt, mlp * dt, mlp * state, (rows + acts) * dt)
