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
"""

from __future__ import annotations

import math

from .. import mesh
from ..graph import GraphBuilder
from ..hardware import Cluster
from ..models import Model
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


def build_recsys_step(model: Model, cfg: ParallelConfig, cluster: Cluster) -> StepGraph:
    p = cfg.dp
    if cfg.pp != 1 or cfg.tp != 1 or cluster.size != p:
        raise ValueError("sharded embeddings need pp = tp = 1 and dp equal to the unit count")
    tables = [i for i, layer in enumerate(model.layers) if layer.kind in EMBEDDING_KINDS]
    split = model.layers.index(next(la for la in model.layers if la.kind == "interaction"))
    bottom = [i for i in range(split) if i not in tables]
    top = list(range(split, len(model.layers)))
    b = GraphBuilder()
    local, dt = cfg.batch // p, cfg.dtype_bytes
    table_bytes = [model.layers[t].params * dt for t in tables]
    own = [[tables[j] for j in mine] for mine in place_tables(table_bytes, p)]

    def task(name: str, u: int, layers: list[int], phase: str, batch: int) -> int:
        phases = ("backward_data", "backward_weights") if phase == "backward" else (phase,)
        costs = [model.layers[i].cost(batch, ph, dt) for i in layers for ph in phases]  # type: ignore[arg-type]
        return b.task(f"{name}.u{u}", flops=sum(c.flops for c in costs),
                      nbytes=sum(c.bytes for c in costs), pin=u, kind=name.split(".")[0],
                      gemms=[g for c in costs for g in c.gemms],
                      kernels=sum(c.kernels for c in costs))

    # what each owner holds for the whole batch: its tables' pooled vectors
    held = [sum(math.prod(model.layers[t].output_shape) for t in own[u]) * dt * cfg.batch
            for u in range(p)]
    lookups = [task("embedding.fwd", u, own[u], "forward", cfg.batch) for u in range(p)]
    sent = collectives.uneven_all_to_all(b, list(range(p)), held, lookups, "a2a.fwd")
    grads_back, dense_done = [], []
    for u in range(p):
        bot = task("bottom.fwd", u, bottom, "forward", local)
        head = task("top.fwd", u, top, "forward", local)
        b.edge(bot, head)
        b.edge(sent[u], head)
        head_bwd = task("top.bwd", u, top, "backward", local)
        b.edge(head, head_bwd)
        bot_bwd = task("bottom.bwd", u, bottom, "backward", local)
        b.edge(head_bwd, bot_bwd)
        grads_back.append(head_bwd)
        dense_done.append(bot_bwd)
    returned = collectives.uneven_all_to_all(b, list(range(p)), held, grads_back, "a2a.bwd")
    mlp_bytes = sum(model.layers[i].params for i in bottom + top) * dt
    synced = collectives.on_rings(collectives.ring_allreduce, b, mesh.rings(cluster, range(p)),
                                  list(range(p)), mlp_bytes, dense_done, "dp.mlp")
    phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
    for u in range(p):
        sparse = task("embedding.update", u, own[u], phase, cfg.batch)
        b.edge(returned[u], sparse)
        dense = task("optimizer", u, bottom + top, phase, local)
        b.edge(synced[u], dense)
    memory = tuple((cluster.units[u].name, _memory(model, own[u], bottom + top, cfg))
                   for u in range(p))
    check_fits(memory, cluster, list(range(p)), cfg)
    return StepGraph(model, b.build(), cfg, ((0, len(model.layers)),), memory,
                     {u: (u,) for u in range(p)})


def _memory(model: Model, tables: list[int], dense: list[int], cfg: ParallelConfig) -> MemoryBreakdown:
    """Own tables plus a replica of the MLPs; Adam state for the MLPs only (the tables'
    sparse rows are updated in place, as DLRM does with sparse SGD/Adagrad)."""
    dt = cfg.dtype_bytes
    layers = [model.layers[i] for i in tables + dense]
    params = sum(layer.params for layer in layers)
    mlp = sum(model.layers[i].params for i in dense)
    state = optimizer_state_bytes(cfg.optimizer, dt)
    rows = sum(math.prod(model.layers[i].output_shape) for i in tables) * cfg.batch
    dense_acts = sum(math.prod(model.layers[i].output_shape) for i in dense) * (cfg.batch // cfg.dp)
    return MemoryBreakdown(params * dt, mlp * dt, mlp * state, (rows + dense_acts) * dt)
