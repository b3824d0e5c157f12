"""The task graph of one training step (or inference pass) under DP x PP x TP.

The seed's three steps, made concrete:
- model partition: layers into pipeline stages (cost-balanced) and tensor shards;
- task assignment: each (replica, stage, shard) pinned to one unit;
- data synchronisation: activations between stages, tensor-parallel all-reduces,
  and a bucketed data-parallel gradient all-reduce that overlaps the backward pass
  (or ZeRO's reduce-scatters and all-gathers, parallel.zero).
The graph is meant for the static scheduler: every task is pinned, and each device
runs its pipeline ops strictly in schedule order (0-byte edges chain them).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace

import numpy as np

from ..cost import DEFAULT, CostModel
from ..graph import GraphBuilder, TaskGraph
from ..hardware import Cluster
from ..models import Layer, Model
from ..ops.base import Gemm
from ..trace import Trace, mirror_units
from . import collectives, context, experts, mirror, nccl, offload, zero
from .config import ParallelConfig
from .memory import MemoryBreakdown, block_starts
from .pipeline import Op, partition_at, schedule
from .sync import DataParallelSync
from .tensor import LayerRole, check_sequence, check_split, layer_roles
from .tp_overlap import TensorParallelOverlap
from .work import BACKWARD, CORE, FORWARD, LayerWork, layer_work

Ends = list[tuple[int, int]]  # per simulated tp rank: (first task, last task) of an op


@dataclass(frozen=True)
class Segment:
    """Consecutive layers of one virtual stage run as one unit of work, and the
    tensor-parallel collectives that follow each of them (forward, backward) and,
    with sequence parallelism, precede them."""

    layers: tuple[int, ...]
    forward_after: str
    backward_after: str
    forward_before: str = ""
    backward_before: str = ""
    exchange: bool = False  # a MoE layer whose tokens expert parallelism all-to-alls
    ring: bool = False      # an attention layer that context parallelism runs as a ring


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
    input_s: float = 0.0
    """Seconds the busiest host's input pipeline needs per step (input_seconds)."""
    hosts: Cluster | None = None
    """With offload, the cluster with each unit's host and host link, which the step runs
    on (parallel.offload.with_hosts); None: the cluster it was built for."""

    def with_input(self, trace: Trace) -> Trace:
        """The simulated trace of this step, lasting at least input_s: the hosts prepare
        the next step's samples while this one runs, so a step is never shorter."""
        return replace(trace, wait_until_s=max(trace.wait_until_s, self.input_s))

    def every_unit(self, trace: Trace) -> Trace:
        """The trace with every unit of a symmetric group or mirrored replica shown
        running what its simulated rank ran (the trace itself when every rank was)."""
        groups = self.mirrored()
        return trace if groups is None else mirror_units(trace, groups)

    def mirrored(self) -> dict[int, tuple[int, ...]] | None:
        """The groups whose simulated rank stands for every member (None: every rank ran)."""
        full = self.config.tp_mode == "full" and self.config.dp_mode == "full"
        return None if full else self.groups

    def copies(self) -> np.ndarray:
        """Per task, how many units run it at once: its unit's group size."""
        size = np.ones(self.config.units if self.hosts is None else self.hosts.size, np.int64)
        for u, members in self.groups.items():
            size[u] = len(members)
        return size[self.graph.pin]


def layer_costs(model: Model, cfg: ParallelConfig, roles: list[LayerRole]) -> np.ndarray:
    """(layers, 4) FLOPs/bytes of forward and backward per micro-batch on one tp rank."""
    return _work(model, cfg, roles).costs


def _work(model: Model, cfg: ParallelConfig, roles: list[LayerRole]) -> LayerWork:
    return layer_work(model, cfg.microbatch_size, cfg.dtype_bytes, cfg.tp, roles, cfg.cp)


def input_seconds(cfg: ParallelConfig, cluster: Cluster) -> float:
    """The input pipeline's seconds per step on the busiest host: its replicas' samples
    (batch / dp each) times cfg.input_s_per_sample. A replica's samples are loaded by
    the host of its first-stage unit (tensor-parallel rank 0; Megatron's loader
    broadcasts from it), and the units of a node share one host (a two-level cluster's
    units_per_node; otherwise each unit is its own host).

    The pipeline runs on the host CPUs beside the accelerators and prefetches (NVIDIA
    DALI; PyTorch DataLoader workers): it overlaps the step, so it costs time only
    when it is the slower of the two, and the step lasts max(the simulated step, this)
    (StepGraph.with_input). NVIDIA's ResNet-50 v1.5 recipe (DeepLearningExamples,
    PyTorch) decodes and augments with DALI for this reason."""
    if cfg.input_s_per_sample == 0:
        return 0.0
    per_node = cluster.units_per_node or 1
    hosts = Counter(cfg.rank(d, 0, 0) // per_node for d in range(cfg.dp))
    return max(hosts.values()) * (cfg.batch // cfg.dp) * cfg.input_s_per_sample


def activation_bytes(layer: Layer, cfg: ParallelConfig) -> float:
    """A layer's output on one rank: its s/cp tokens of each sample of a micro-batch."""
    return float(math.prod(layer.output_shape)) * cfg.microbatch_size * cfg.dtype_bytes / cfg.cp


def build_step(model: Model, cfg: ParallelConfig, cluster: Cluster,
               cost: CostModel = DEFAULT, cut_through: bool = True,
               host: offload.Host | None = None) -> StepGraph:
    """The step graph; `cost` prices the layers the pipeline partition balances, and
    collapsed collectives (symmetric mode) are timed for a cut-through or a
    store-and-forward network. Offload (cfg.offload_*) needs the `host`."""
    from .plan_memory import check_fits  # the memory plan raises before any graph is built

    offload.check(cfg, host)
    roles, work, stages, orders, memory = plan(model, cfg, cluster, cost)
    cfg = mirror.resolve(cfg, cluster)  # dp_mode auto: mirrored where that is exact
    check_fits(memory, cluster, [cfg.rank(0, s, 0) for s in range(cfg.pp)], cfg)
    builder = _StepBuilder(model, cfg, cluster, roles, work, stages, cut_through, host)
    builder.build(orders)
    graph = builder.b.build()
    collapsed = builder.collapsed if cfg.tp_mode == "symmetric" else None
    if cfg.dp_mode == "mirrored":  # the other replicas' bytes, for the network energy
        collapsed = mirror.others_bytes(graph, cluster, cfg, collapsed)
    return StepGraph(model, graph, cfg, tuple(stages), memory, builder.groups(),
                     builder.work, collapsed, input_seconds(cfg, cluster),
                     None if host is None else offload.with_hosts(cluster, host))


def plan(model: Model, cfg: ParallelConfig, cluster: Cluster, cost: CostModel = DEFAULT
         ) -> tuple[list[LayerRole], LayerWork, list[tuple[int, int]], list[list[Op]],
                    tuple[tuple[str, MemoryBreakdown], ...]]:
    """What a step is before its graph: the layers' roles and work, the stages balanced
    with `cost`, each stage's order and each stage's memory (not yet checked against
    the units': parallel.plan_memory.check_fits does that)."""
    from .plan_memory import plan_memory

    if cluster.size != cfg.units:
        raise ValueError(f"dp x pp x tp x cp = {cfg.units} units, but the cluster has "
                         f"{cluster.size}")
    check_split(model, cfg.tp)
    context.check_context(model, cfg)
    experts.check_experts(model, cfg.ep)
    roles = layer_roles(model, cfg.sp) if cfg.tp > 1 else [LayerRole(False, "", "")] * len(
        model.layers)
    check_sequence(model, roles, cfg.tp)
    work = _work(model, cfg, roles)
    costs = work.costs
    unit = cluster.unit_types[int(cluster.unit_type[0])]
    # a layer's forward and backward as one column (no single op kind: kinds None)
    per_layer = cost.work_seconds(costs[:, 0] + costs[:, 2], costs[:, 1] + costs[:, 3], unit,
                                  gemms=work.rows(), kernels=work.kernels[:, :CORE].sum(axis=1))
    stages = partition_at(per_layer.tolist(), block_starts(model), cfg.virtual_stages)
    orders = _orders(cfg)
    return roles, work, stages, orders, plan_memory(model, cfg, cluster, roles, stages, orders)


def _orders(cfg: ParallelConfig) -> list[list[Op]]:
    orders = schedule(cfg.schedule, cfg.pp, cfg.microbatches, cfg.chunks)
    if not cfg.training:
        orders = [[op for op in order if op[0] == "F"] for order in orders]
    return orders


class _StepBuilder(TensorParallelOverlap, DataParallelSync):
    """The step's graph, op by op (compute, pipeline links, the splits' exchanges); its
    collectives and synchronisation are the mixins' (parallel.tp_comm, parallel.tp_overlap,
    parallel.sync)."""

    def __init__(self, model: Model, cfg: ParallelConfig, cluster: Cluster,
                 roles: list[LayerRole], work: LayerWork, stages: list[tuple[int, int]],
                 cut_through: bool = True, host: offload.Host | None = None) -> None:
        self.model, self.cfg, self.cluster, self.roles = model, cfg, cluster, roles
        self.host = host
        self.passes: dict[tuple[str, int, int, int, int], int] = {}  # (F|B, d, layer, k, t)
        self.work_of, self.costs = work, work.costs
        self.cut_through = cut_through
        self.b = GraphBuilder()
        self.stages = stages
        self.exchanges = experts.exchanged_layers(model, cfg)
        self.rings = context.ring_layers(model, cfg)
        self.segments = [self._segments(a, z) for a, z in stages]
        self.done: dict[tuple[str, int, int, int], Ends] = {}   # (F|B, d, v, k) -> ends
        self.collectives = 0
        self.work: dict[int, tuple[str, tuple[int, ...]]] = {}
        # (d, layer, t, k) -> task: the last micro-batch's backward, every one's with zero >= 2
        self.last_backward: dict[tuple[int, int, int, int], int] = {}
        self.runs: dict[tuple[int, int, int], list[tuple[int, float]]] = {}  # zero 3: (d, s, t)
        self.first_forward: dict[tuple[int, int, int], int] = {}  # (d, layer, t) -> task
        self.collapsed = np.zeros(len(cluster.channels))  # bytes per channel, symmetric mode
        self.groups_seen: dict[tuple[int, ...], tuple[nccl.Group, np.ndarray]] = {}
        self.seconds_seen: dict[tuple[str, tuple[int, ...], float], float] = {}
        self.tp_groups: dict[tuple[int, int], list[int]] = {}
        self.works_seen: dict[tuple[tuple[int, ...], str, int], tuple[float, float,
                                                                     tuple[Gemm, ...], int]] = {}

    def _segments(self, start: int, end: int) -> list[Segment]:
        """One segment per layer, or with cfg.fuse one per run of layers between
        collectives: a collective after a layer's forward or before its backward ends a
        run at the layer, one before its forward or after its backward starts one."""
        roles, out, run = self.roles, [], []  # type: list[LayerRole], list[Segment], list[int]
        for i in range(start, end):
            alone = i in self.exchanges or i in self.rings
            if run and (roles[i].backward_after or roles[i].forward_before or alone):
                out.append(self._segment(run))
                run = []
            run.append(i)
            if roles[i].forward_after or roles[i].backward_before or alone or not self.cfg.fuse:
                out.append(self._segment(run))
                run = []
        if run:
            out.append(self._segment(run))
        return out

    def _segment(self, run: list[int]) -> Segment:
        first, last = self.roles[run[0]], self.roles[run[-1]]
        return Segment(tuple(run), last.forward_after, first.backward_after,
                       first.forward_before, last.backward_before, run[0] in self.exchanges,
                       run[0] in self.rings)

    # -- the whole step ------------------------------------------------------------
    def build(self, orders: list[list[Op]]) -> None:
        """Every op's tasks first, then the edges between ops, then synchronisation."""
        cfg = self.cfg
        for group in context.lockstep_groups(cfg):  # replicas that exchange data: in lockstep
            for s, order in enumerate(orders):
                for kind, k, chunk in order:
                    v = chunk * cfg.pp + s
                    build = self._forward if kind == "F" else self._backward
                    for d, ends in build(group, v, k).items():
                        self.done[(kind, d, v, k)] = ends
        for (kind, d, v, k), ends in self.done.items():
            if kind == "F" and v > 0:  # activations from the previous virtual stage
                self._link(self.done[("F", d, v - 1, k)], ends, self._boundary_bytes(v - 1))
            if kind == "B":
                self._link(self.done[("F", d, v, k)], ends, 0.0)
                if v + 1 < cfg.virtual_stages:  # gradients from the next virtual stage
                    self._link(self.done[("B", d, v + 1, k)], ends, self._boundary_bytes(v))
        for d in cfg.simulated_replicas():
            for s, order in enumerate(orders):  # each device runs its ops in order
                ops = [self.done[(kind, d, chunk * cfg.pp + s, k)] for kind, k, chunk in order]
                for before, after in zip(ops, ops[1:], strict=False):
                    self._link(before, after, 0.0)
        if cfg.training and cfg.zero == 3 and cfg.replicas > 1:
            for s in range(cfg.pp):
                for t in cfg.simulated_tp_ranks():
                    ds = range(cfg.replicas)
                    zero.prefetched_allgathers(self.b, [cfg.replica_rank(d, s, t) for d in ds],
                                               [self.runs[(d, s, t)] for d in ds],
                                               cfg.bucket_bytes, f"fsdp.s{s}.t{t}")
        if cfg.training:
            for s in range(cfg.pp):
                self._synchronise(s, orders[s])
        if cfg.offload_activations:
            offload.move_activations(self, self.passes)

    # -- forward and backward of one virtual stage for one micro-batch -------------
    def _forward(self, ds: tuple[int, ...], v: int, k: int) -> dict[int, Ends]:
        """The forward of virtual stage v for micro-batch k on replicas ds (one expert-
        parallel group, which exchanges tokens around each MoE layer)."""
        s = v % self.cfg.pp
        chains = {d: self._chains() for d in ds}
        for seg in self.segments[v]:
            if self._overlapped(chains, s, seg, "F", k):  # tp_comm_overlap (parallel.tp_overlap)
                continue
            for d in ds:
                self._tp_collectives(chains[d], d, s, self._input_gather(seg))
            self._exchange(chains, s, seg, f"F.k{k}.dispatch")
            self._computes(chains, s, seg, "F", k)
            self._exchange(chains, s, seg, f"F.k{k}.combine")
            for d in ds:
                if seg.forward_after:
                    self._tp_collectives(chains[d], d, s, [self._forward_collective(seg)])
        return {d: [(first, last) for first, last in c] for d, c in chains.items()}

    def _backward(self, ds: tuple[int, ...], v: int, k: int) -> dict[int, Ends]:
        """The backward of virtual stage v, in reverse. With full recompute each
        segment's backward task also recomputes its forward, and that forward's
        tensor-parallel collective runs again, after it and before the backward's own:
        per transformer layer and micro-batch 6 all-reduces instead of 4 (Korthikanti
        et al., "Reducing Activation Recomputation in Large Transformer Models", MLSys
        2023, section 4 and Table 2; Narayanan et al., SC'21, section 3.5). With
        selective recompute (ibid., section 5) it rebuilds only each attention layer's
        core (scores, softmax, dropout, context: Op.recompute_cost), within the
        tensor-parallel region, so no collective runs again. On one rank's chain the
        order inside a segment does not change its time. With sequence
        parallelism a closer's output gradient is all-gathered before its backward. A
        MoE layer's backward all-to-alls the output gradients back to the experts
        (combine's backward) and the input gradients to their tokens (dispatch's);
        recomputing its forward repeats both forward all-to-alls."""
        s = v % self.cfg.pp
        chains = {d: self._chains() for d in ds}
        for seg in reversed(self.segments[v]):
            if self._overlapped(chains, s, seg, "B", k):
                continue
            for d in ds:
                if seg.backward_before:
                    self._tp_collectives(chains[d], d, s,
                                         [(seg.backward_before, self._output_bytes(seg))])
            again = ("dispatch", "combine") if self.cfg.recompute == "full" else ()
            for name in (*again, "combine.grad"):
                self._exchange(chains, s, seg, f"B.k{k}.{name}")
            self._computes(chains, s, seg, "B", k)
            self._exchange(chains, s, seg, f"B.k{k}.dispatch.grad")
            for d in ds:
                todo: list[tuple[str, float]] = []
                if self.cfg.recompute == "full":  # the recomputed forward's collectives
                    todo += self._input_gather(seg)
                    todo += [self._forward_collective(seg)] if seg.forward_after else []
                if seg.backward_after:
                    todo.append((seg.backward_after, self._input_bytes(seg)))
                self._tp_collectives(chains[d], d, s, todo)
        return {d: [(first, last) for first, last in c] for d, c in chains.items()}

    def _exchange(self, chains: dict[int, list[list[int]]], s: int, seg: Segment,
                  name: str) -> None:
        """Expert parallelism's all-to-all among the replicas of `chains` (one expert-
        parallel group), per simulated tp rank, where the segment is a MoE layer."""
        if not seg.exchange:
            return
        ds = list(chains)
        layer = self.model.layers[seg.layers[0]]
        nbytes = experts.exchange_bytes(layer, self.cfg)
        for ti, t in enumerate(self.cfg.simulated_tp_ranks()):
            ranks = [self.cfg.replica_rank(d, s, t) for d in ds]
            ready = [self._started(chains[d][ti], r, name) for d, r in zip(ds, ranks, strict=True)]
            done = collectives.all_to_all(self.b, ranks, nbytes, ready,
                                          f"ep.{layer.name}.d{ds[0]}.t{t}.{name}")
            for d, task in zip(ds, done, strict=True):
                chains[d][ti][1] = task

    def _forward_collective(self, seg: Segment) -> tuple[str, float]:
        return seg.forward_after, self._output_bytes(seg)

    def _input_gather(self, seg: Segment) -> list[tuple[str, float]]:
        """Sequence parallelism's all-gather of an opener's input, or nothing."""
        return [(seg.forward_before, self._input_bytes(seg))] if seg.forward_before else []

    def _output_bytes(self, seg: Segment) -> float:
        return activation_bytes(self.model.layers[seg.layers[-1]], self.cfg)

    def _input_bytes(self, seg: Segment) -> float:
        first_layer = self.model.layers[seg.layers[0]]
        return (float(np.prod(first_layer.input_shape)) * self.cfg.microbatch_size
                * self.cfg.dtype_bytes / self.cfg.cp)

    def _chains(self) -> list[list[int]]:
        """Per simulated tp rank, [first task, last task] of the op being built."""
        return [[-1, -1] for _ in self.cfg.simulated_tp_ranks()]

    def _computes(self, chains: dict[int, list[list[int]]], s: int, seg: Segment, kind: str,
                  k: int) -> None:
        """The segment on each replica of `chains`; a ring-attention layer as cp blocks,
        each after the ring step that brings its K, V block (parallel.context)."""
        blocks = self.cfg.cp if seg.ring else 1
        sources: list[list[int]] = []  # per simulated tp rank, the tasks that forward a block
        for block in range(blocks):
            if seg.ring:
                sources = self._ring(chains, s, seg, kind, k, block, sources)
            for d in chains:
                self._compute(chains[d], d, s, seg, kind, k, block, blocks)

    def _ring(self, chains: dict[int, list[list[int]]], s: int, seg: Segment, kind: str,
              k: int, block: int, sources: list[list[int]]) -> list[list[int]]:
        """Before block 0 each rank's own K, V leave from its last task; before block j
        the ring step that brings block j, which forwards it on."""
        layer = self.model.layers[seg.layers[0]]
        nbytes = context.ring_bytes(layer, self.cfg, kind)
        out = []
        for ti, t in enumerate(self.cfg.simulated_tp_ranks()):
            units = [self.cfg.replica_rank(d, s, t) for d in chains]
            name = f"cp.{kind}.{layer.name}.d{min(chains)}.k{k}.t{t}.{block}"
            if block == 0:
                out.append([self._started(chains[d][ti], u, name) for d, u in zip(chains, units,
                                                                                  strict=True)])
                continue
            relays = context.ring_step(self.b, units, sources[ti], nbytes, name)
            for d, relay in zip(chains, relays, strict=True):
                self._append(chains[d][ti], relay)
            out.append(relays)
        return out

    def _compute(self, chains: list[list[int]], d: int, s: int, seg: Segment, kind: str,
                 k: int, block: int = 0, blocks: int = 1) -> None:
        """The segment's compute task on each simulated tp rank of replica d; block of
        `blocks` equal parts of it (ring attention's blocks, parallel.context)."""
        flops, nbytes, gemms, kernels = self._segment_work(seg, kind, blocks)
        layer = self.model.layers[seg.layers[0]]
        label = layer.kind if len(seg.layers) == 1 else "segment"
        part = f".b{block}" if blocks > 1 else ""
        for t, chain in zip(self.cfg.simulated_tp_ranks(), chains, strict=True):
            task = self.b.task(f"{kind}.d{d}.{layer.name}.k{k}.t{t}{part}", flops=flops,
                               nbytes=nbytes, pin=self.cfg.replica_rank(d, s, t),
                               kind=label if kind == "F" else f"{label}.bwd",
                               gemms=gemms, kernels=kernels)
            self.work[task] = (kind, seg.layers)
            self.passes[(kind, d, seg.layers[0], k, t)] = task
            self._append(chain, task)
            if self.cfg.zero == 3 and block == 0:  # the parameters it needs gathered first
                self.runs.setdefault((d, s, t), []).append(
                    (task, sum(self._param_bytes(i, gathered=True) for i in seg.layers)))
            for i in seg.layers if kind == "F" else ():
                self.first_forward.setdefault((d, i, t), task)
            if kind == "B" and (k == self.cfg.microbatches - 1 or self.cfg.zero >= 2):
                for i in seg.layers:
                    self.last_backward[(d, i, t, k)] = task

    def _segment_work(self, seg: Segment, kind: str, blocks: int
                      ) -> tuple[float, float, tuple[Gemm, ...], int]:
        """One block's FLOPs, bytes, GEMMs and kernels of the segment's pass: the same
        for every replica and micro-batch, so worked out once per segment and pass."""
        key = (seg.layers, kind, blocks)
        if (hit := self.works_seen.get(key)) is not None:
            return hit
        cols = (0, 1) if kind == "F" else (2, 3)
        rows = self.costs[list(seg.layers)]
        flops, nbytes = rows[:, cols[0]].sum(), rows[:, cols[1]].sum()
        phases = [FORWARD] if kind == "F" else [BACKWARD]
        if kind == "B" and self.cfg.recompute == "full":
            flops, nbytes = flops + rows[:, 0].sum(), nbytes + rows[:, 1].sum()
            phases.append(FORWARD)
        if kind == "B" and self.cfg.recompute == "selective":  # the attention core again
            core = self.work_of.core[list(seg.layers)].sum(axis=0)
            flops, nbytes = flops + core[0], nbytes + core[1]
            phases.append(CORE)
        gemms, kernels = self.work_of.segment(seg.layers, phases)
        flops, nbytes, gemms, kernels = self._carve(seg, kind, flops, nbytes, gemms, kernels)
        if blocks > 1:  # ASSUMPTION: each block launches an equal share of the kernels
            flops, nbytes, kernels = flops / blocks, nbytes / blocks, -(-kernels // blocks)
            gemms = list(context.token_split(gemms, blocks))
        work = self.works_seen[key] = (float(flops), float(nbytes), tuple(gemms), kernels)
        return work

    def _link(self, src: Ends, dst: Ends, nbytes: float) -> None:
        share = nbytes / self.cfg.tp if self.cfg.tp_mode == "full" else nbytes
        for (_, last), (first, _) in zip(src, dst, strict=True):
            self.b.edge(last, first, share)

    def _boundary_bytes(self, v: int) -> float:
        """Activation (forward) or gradient (backward) bytes crossing after stage v."""
        end = self.segments[v][-1].layers[-1]
        return activation_bytes(self.model.layers[end], self.cfg)

    # -- collectives -------------------------------------------------------------------

    def groups(self) -> dict[int, tuple[int, ...]]:
        cfg = self.cfg
        if cfg.tp_mode == "full" and cfg.dp_mode == "full":
            return {u: (u,) for u in range(cfg.units)}
        ds = range(cfg.replicas) if cfg.dp_mode == "mirrored" else None
        ts = range(cfg.tp) if cfg.tp_mode == "symmetric" else None
        rank = cfg.replica_rank
        return {rank(d, s, t): tuple(rank(e, s, u) for e in ds or (d,) for u in ts or (t,))
                for d in cfg.simulated_replicas() for s in range(cfg.pp)
                for t in cfg.simulated_tp_ranks()}
