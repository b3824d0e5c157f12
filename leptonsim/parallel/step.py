"""The task graph of one training step (or inference pass) under DP x PP x TP.

The seed's three steps, made concrete:
- model partition: layers into pipeline stages (cost-balanced) and tensor shards;
- task assignment: each (replica, stage, shard) pinned to one unit;
- data synchronisation: activations between stages, tensor-parallel all-reduces,
  and a bucketed data-parallel gradient all-reduce that overlaps the backward pass.
The graph is meant for the static scheduler: every task is pinned, and each device
runs its pipeline ops strictly in schedule order (0-byte edges chain them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import formulas
from ..cost import DEFAULT, CostModel
from ..graph import GraphBuilder, TaskGraph
from ..hardware import Cluster
from ..models import Layer, Model
from ..trace import Trace, mirror_units
from . import collectives
from .config import ParallelConfig
from .memory import MemoryBreakdown
from .pipeline import Op, partition, schedule
from .tensor import LayerRole, check_split, layer_roles
from .work import BACKWARD, FORWARD, LayerWork, layer_work

Ends = list[tuple[int, int]]  # per simulated tp rank: (first task, last task) of an op


@dataclass(frozen=True)
class Segment:
    """Consecutive layers of one virtual stage run as one unit of work, and the
    tensor-parallel collective that follows each of them (forward, backward)."""

    layers: tuple[int, ...]
    forward_after: str
    backward_after: str


@dataclass(frozen=True)
class StepGraph:
    model: Model
    graph: TaskGraph
    config: ParallelConfig
    stages: tuple[tuple[int, int], ...]          # layer range of each virtual stage
    memory: tuple[tuple[str, MemoryBreakdown], ...]
    groups: dict[int, tuple[int, ...]]            # simulated unit -> units it stands for
    work: dict[int, tuple[str, tuple[int, ...]]] | None = None
    """What each compute task does: ("F" | "B" | "update", model layer indices); the
    real executor uses it to run the layers' NumPy kernels (recompute is part of "B")."""
    collapsed_bytes: np.ndarray | None = None
    """Per channel of the cluster, the bytes the collectives collapsed into tasks
    (graph.comm, symmetric mode) move: their network energy (None: nothing collapsed)."""

    def every_unit(self, trace: Trace) -> Trace:
        """The trace with every unit of a symmetric group shown running what its
        simulated rank ran (the trace itself when every rank was simulated)."""
        return trace if self.config.tp_mode == "full" else mirror_units(trace, self.groups)

    def copies(self) -> np.ndarray:
        """Per task, how many units run it at once: its unit's group size."""
        size = np.ones(self.config.units, np.int64)
        for u, members in self.groups.items():
            size[u] = len(members)
        return size[self.graph.pin]


def layer_costs(model: Model, cfg: ParallelConfig, roles: list[LayerRole]) -> np.ndarray:
    """(layers, 4) FLOPs/bytes of forward and backward per micro-batch on one tp rank."""
    return _work(model, cfg, roles).costs


def _work(model: Model, cfg: ParallelConfig, roles: list[LayerRole]) -> LayerWork:
    return layer_work(model, cfg.microbatch_size, cfg.dtype_bytes, cfg.tp, roles)


def activation_bytes(layer: Layer, cfg: ParallelConfig) -> float:
    return float(np.prod(layer.output_shape)) * cfg.microbatch_size * cfg.dtype_bytes


def build_step(model: Model, cfg: ParallelConfig, cluster: Cluster,
               cost: CostModel = DEFAULT) -> StepGraph:
    """The step graph; `cost` prices the layers the pipeline partition balances."""
    from .plan_memory import plan_memory  # the memory plan raises before any graph is built

    if cluster.size != cfg.units:
        raise ValueError(f"dp x pp x tp = {cfg.units} units, but the cluster has {cluster.size}")
    check_split(model, cfg.tp)
    roles = layer_roles(model) if cfg.tp > 1 else [LayerRole(False, "", "")] * len(model.layers)
    work = _work(model, cfg, roles)
    costs = work.costs
    unit = cluster.unit_types[int(cluster.unit_type[0])]
    # a layer's forward and backward as one column (no single op kind: kinds None)
    per_layer = cost.work_seconds(costs[:, 0] + costs[:, 2], costs[:, 1] + costs[:, 3], unit,
                                  gemms=work.rows(), kernels=work.kernels.sum(axis=1))
    stages = partition(per_layer.tolist(), cfg.virtual_stages)
    orders = _orders(cfg)
    memory = plan_memory(model, cfg, cluster, roles, stages, orders)
    builder = _StepBuilder(model, cfg, cluster, roles, work, stages)
    builder.build(orders)
    return StepGraph(model, builder.b.build(), cfg, tuple(stages), memory, builder.groups(),
                     builder.work, builder.collapsed if cfg.tp_mode == "symmetric" else None)


def _orders(cfg: ParallelConfig) -> list[list[Op]]:
    orders = schedule(cfg.schedule, cfg.pp, cfg.microbatches, cfg.chunks)
    if not cfg.training:
        orders = [[op for op in order if op[0] == "F"] for order in orders]
    return orders


class _StepBuilder:
    def __init__(self, model: Model, cfg: ParallelConfig, cluster: Cluster,
                 roles: list[LayerRole], work: LayerWork, stages: list[tuple[int, int]]) -> None:
        self.model, self.cfg, self.cluster, self.roles = model, cfg, cluster, roles
        self.work_of, self.costs = work, work.costs
        self.b = GraphBuilder()
        self.stages = stages
        self.segments = [self._segments(a, z) for a, z in stages]
        self.done: dict[tuple[str, int, int, int], Ends] = {}   # (F|B, d, v, k) -> ends
        self.collectives = 0
        self.work: dict[int, tuple[str, tuple[int, ...]]] = {}
        self.last_backward: dict[tuple[int, int, int], int] = {}  # (d, layer, t) -> task
        self.collapsed = np.zeros(len(cluster.channels))  # bytes per channel, symmetric mode

    def _segments(self, start: int, end: int) -> list[Segment]:
        """One segment per layer, or with cfg.fuse one per run of layers between
        collectives: a forward collective ends a run after its layer, a backward
        collective (which follows the layer's backward) starts a run at its layer."""
        roles, out, run = self.roles, [], []  # type: list[LayerRole], list[Segment], list[int]
        for i in range(start, end):
            if run and roles[i].backward_after:
                out.append(self._segment(run))
                run = []
            run.append(i)
            if roles[i].forward_after or not self.cfg.fuse:
                out.append(self._segment(run))
                run = []
        if run:
            out.append(self._segment(run))
        return out

    def _segment(self, run: list[int]) -> Segment:
        return Segment(tuple(run), self.roles[run[-1]].forward_after,
                       self.roles[run[0]].backward_after)

    # -- the whole step ------------------------------------------------------------
    def build(self, orders: list[list[Op]]) -> None:
        """Every op's tasks first, then the edges between ops, then synchronisation."""
        cfg = self.cfg
        for d in range(cfg.dp):
            for s, order in enumerate(orders):
                for kind, k, chunk in order:
                    v = chunk * cfg.pp + s
                    build = self._forward if kind == "F" else self._backward
                    self.done[(kind, d, v, k)] = build(d, v, k)
        for (kind, d, v, k), ends in self.done.items():
            if kind == "F" and v > 0:  # activations from the previous virtual stage
                self._link(self.done[("F", d, v - 1, k)], ends, self._boundary_bytes(v - 1))
            if kind == "B":
                self._link(self.done[("F", d, v, k)], ends, 0.0)
                if v + 1 < cfg.virtual_stages:  # gradients from the next virtual stage
                    self._link(self.done[("B", d, v + 1, k)], ends, self._boundary_bytes(v))
        for d in range(cfg.dp):
            for s, order in enumerate(orders):  # each device runs its ops in order
                ops = [self.done[(kind, d, chunk * cfg.pp + s, k)] for kind, k, chunk in order]
                for before, after in zip(ops, ops[1:], strict=False):
                    self._link(before, after, 0.0)
        if cfg.training:
            for s in range(cfg.pp):
                self._synchronise(s, orders[s])

    # -- forward and backward of one virtual stage for one micro-batch -------------
    def _forward(self, d: int, v: int, k: int) -> Ends:
        s = v % self.cfg.pp
        chains = self._chains()
        for seg in self.segments[v]:
            self._compute(chains, d, s, seg, "F", k)
            if seg.forward_after:
                self._tp_collective(chains, d, s, seg.forward_after,
                                    activation_bytes(self.model.layers[seg.layers[-1]], self.cfg))
        return [(first, last) for first, last in chains]

    def _backward(self, d: int, v: int, k: int) -> Ends:
        s = v % self.cfg.pp
        chains = self._chains()
        for seg in reversed(self.segments[v]):
            self._compute(chains, d, s, seg, "B", k)
            if seg.backward_after:
                first_layer = self.model.layers[seg.layers[0]]
                self._tp_collective(chains, d, s, seg.backward_after,
                                    float(np.prod(first_layer.input_shape))
                                    * self.cfg.microbatch_size * self.cfg.dtype_bytes)
        return [(first, last) for first, last in chains]

    def _chains(self) -> list[list[int]]:
        """Per simulated tp rank, [first task, last task] of the op being built."""
        return [[-1, -1] for _ in self.cfg.simulated_tp_ranks()]

    def _append(self, chain: list[int], task: int) -> None:
        if chain[1] >= 0:
            self.b.edge(chain[1], task)
        else:
            chain[0] = task
        chain[1] = task

    def _compute(self, chains: list[list[int]], d: int, s: int, seg: Segment, kind: str,
                 k: int) -> None:
        cols = (0, 1) if kind == "F" else (2, 3)
        rows = self.costs[list(seg.layers)]
        flops, nbytes = rows[:, cols[0]].sum(), rows[:, cols[1]].sum()
        phases = [FORWARD] if kind == "F" else [BACKWARD]
        if kind == "B" and self.cfg.recompute:
            flops, nbytes = flops + rows[:, 0].sum(), nbytes + rows[:, 1].sum()
            phases.append(FORWARD)
        gemms, kernels = self.work_of.segment(seg.layers, phases)
        layer = self.model.layers[seg.layers[0]]
        label = layer.kind if len(seg.layers) == 1 else "segment"
        for t, chain in zip(self.cfg.simulated_tp_ranks(), chains, strict=True):
            task = self.b.task(f"{kind}.d{d}.{layer.name}.k{k}.t{t}", flops=float(flops),
                               nbytes=float(nbytes), pin=self.cfg.rank(d, s, t),
                               kind=label if kind == "F" else f"{label}.bwd",
                               gemms=gemms, kernels=kernels)
            self.work[task] = (kind, seg.layers)
            self._append(chain, task)
            if kind == "B" and k == self.cfg.microbatches - 1:
                for i in seg.layers:
                    self.last_backward[(d, i, t)] = task

    def _link(self, src: Ends, dst: Ends, nbytes: float) -> None:
        share = nbytes / self.cfg.tp if self.cfg.tp_mode == "full" else nbytes
        for (_, last), (first, _) in zip(src, dst, strict=True):
            self.b.edge(last, first, share)

    def _boundary_bytes(self, v: int) -> float:
        """Activation (forward) or gradient (backward) bytes crossing after stage v."""
        end = self.segments[v][-1].layers[-1]
        return activation_bytes(self.model.layers[end], self.cfg)

    # -- collectives -------------------------------------------------------------------
    def _tp_collective(self, chains: list[list[int]], d: int, s: int, kind: str,
                       nbytes: float) -> None:
        cfg = self.cfg
        if cfg.tp == 1:
            return
        ranks = [cfg.rank(d, s, t) for t in range(cfg.tp)]
        self.collectives += 1
        name = f"tp.{kind}.d{d}.s{s}.{self.collectives}"
        if cfg.tp_mode == "symmetric":
            task = self.b.task(name, duration_s=self._collapse(kind, ranks, nbytes),
                               pin=ranks[0], kind=f"tp_{kind}", comm=True)
            self._append(chains[0], task)
            return
        build = collectives.ring_allreduce if kind == "allreduce" else collectives.ring_allgather
        done = build(self.b, ranks, nbytes, [c[1] for c in chains], name)
        for chain, task in zip(chains, done, strict=True):
            chain[1] = task

    def _collapse(self, kind: str, ranks: list[int], nbytes: float) -> float:
        """The ring collective `collectives` would spell out, as one duration: uncontended
        ring time over the group's own links (formulas.ring_allreduce_time or
        ring_allgather_time), the slowest neighbour pair setting the pace of each step.
        Its messages' bytes are added to `collapsed`, per channel of each message's
        route, as the full ring sends them."""
        p = len(ranks)
        steps = 2 * (p - 1) if kind == "allreduce" else p - 1
        pairs = list(zip(ranks, ranks[1:] + ranks[:1], strict=True))
        for a, b in pairs:
            self.collapsed[list(self.cluster.route(a, b))] += steps * (nbytes / p)
        latency, gap = np.array([self.cluster.path_cost(a, b) for a, b in pairs]).T
        ring = (formulas.ring_allreduce_seconds if kind == "allreduce"
                else formulas.ring_allgather_seconds)
        return float(ring(p, nbytes, latency, 1.0 / gap).max())

    def _synchronise(self, s: int, order: list[Op]) -> None:
        """Bucketed gradient all-reduce over replicas, then the optimizer step."""
        cfg = self.cfg
        for t in cfg.simulated_tp_ranks():
            ends: list[list[int]] = [[] for _ in range(cfg.dp)]
            for chunk in range(cfg.chunks):
                v = chunk * cfg.pp + s
                for bucket, nbytes in self._buckets(v):
                    ready = [self.last_backward[(d, bucket[-1], t)] for d in range(cfg.dp)]
                    ranks = [cfg.rank(d, s, t) for d in range(cfg.dp)]
                    done = (collectives.ring_allreduce(
                        self.b, ranks, nbytes, ready, f"dp.s{s}.t{t}.{bucket[0]}")
                        if cfg.dp > 1 else ready)
                    for d in range(cfg.dp):
                        ends[d].append(done[d])
            for d in range(cfg.dp):
                self._optimizer(d, s, t, ends[d], order)

    def _buckets(self, v: int) -> list[tuple[list[int], float]]:
        """Layers of virtual stage v in backward order, grouped until bucket_bytes."""
        cfg = self.cfg
        out: list[tuple[list[int], float]] = []
        bucket: list[int] = []
        size = 0.0
        for seg in reversed(self.segments[v]):
            for i in reversed(seg.layers):
                layer, role = self.model.layers[i], self.roles[i]
                share = cfg.tp if role.sharded and cfg.tp_mode == "full" else 1
                size += layer.params * cfg.dtype_bytes / share
                bucket.append(i)
                if size >= cfg.bucket_bytes:
                    out.append((bucket, size))
                    bucket, size = [], 0.0
        if bucket and size > 0:
            out.append((bucket, size))
        return out

    def _optimizer(self, d: int, s: int, t: int, after: list[int], order: list[Op]) -> None:
        cfg = self.cfg
        phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
        flops = nbytes = 0.0
        kernels = 0
        for chunk in range(cfg.chunks):
            for i in range(*self.stages[chunk * cfg.pp + s]):
                c = self.model.layers[i].cost(cfg.microbatch_size, phase, cfg.dtype_bytes)  # type: ignore[arg-type]
                share = cfg.tp if self.roles[i].sharded else 1
                flops, nbytes = flops + c.flops / share, nbytes + c.bytes / share
                kernels += c.kernels
        task = self.b.task(f"optimizer.d{d}.s{s}.t{t}", flops=flops, nbytes=nbytes,
                           pin=cfg.rank(d, s, t), kind="optimizer", kernels=kernels)
        self.work[task] = ("update", tuple(i for c in range(cfg.chunks)
                                           for i in range(*self.stages[c * cfg.pp + s])))
        kind, k, chunk = order[-1]
        self.b.edge(self.done[(kind, d, chunk * cfg.pp + s, k)][self._tindex(t)][1], task)
        for src in after:
            self.b.edge(src, task)

    def _tindex(self, t: int) -> int:
        return t if self.cfg.tp_mode == "full" else 0

    def groups(self) -> dict[int, tuple[int, ...]]:
        cfg = self.cfg
        if cfg.tp_mode == "full":
            return {u: (u,) for u in range(cfg.units)}
        return {cfg.rank(d, s, 0): tuple(cfg.rank(d, s, t) for t in range(cfg.tp))
                for d in range(cfg.dp) for s in range(cfg.pp)}
