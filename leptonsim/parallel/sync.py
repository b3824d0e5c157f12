"""The end of a training step: gradient synchronisation over the data-parallel replicas
and the optimizer.

DDP's bucketed all-reduce overlapping the backward (Li et al., "PyTorch Distributed",
VLDB 2020, sections 3.2.3 and 4.2), ZeRO's reduce-scatters and all-gathers
(parallel.zero), the expert data-parallel all-reduce of routed experts
(parallel.experts), each rank's update (or its host's, parallel.offload), over every
replica or, mirrored, replica 0's side of each ring (parallel.mirror). A mixin of the
step builder (parallel.step), which owns the state annotated here.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from .. import mesh
from ..graph import GraphBuilder
from ..hardware import Cluster
from ..models import Model
from ..ops.base import Cost, chained_update
from . import collectives, experts, mirror, offload, zero
from .config import ParallelConfig
from .pipeline import Op
from .tensor import LayerRole

if TYPE_CHECKING:
    from .step import Ends, Segment


def optimizer_cost(model: Model, cfg: ParallelConfig, roles: list[LayerRole],
                   layers: tuple[int, ...]) -> Cost:
    """One device's optimizer step over `layers` (1/tp of the split ones): a memory-bound
    pass over the weights, gradients and optimizer state (ops.base.update_cost), one
    kernel per parameter tensor (`update_kernels` each, unfused: ops.base.chained_update),
    or one for the device's whole group when fused."""
    phase = "update_adam" if cfg.optimizer == "adam" else "update_sgd"
    flops = nbytes = 0.0
    kernels = 0
    for i in layers:
        c = chained_update(model.layers[i].cost(cfg.microbatch_size, phase, cfg.dtype_bytes),  # type: ignore[arg-type]
                           phase, cfg.dtype_bytes, cfg.update_kernels)  # type: ignore[arg-type]
        share = (cfg.tp if roles[i].sharded else 1) / experts.held_fraction(
            model.layers[i], cfg.ep)
        flops, nbytes, kernels = flops + c.flops / share, nbytes + c.bytes / share, kernels + c.kernels
    return Cost(flops, nbytes, kernels=min(kernels, 1) if cfg.fused_optimizer else kernels)


class DataParallelSync:
    """The step builder's data-parallel synchronisation and optimizer tasks."""

    cfg: ParallelConfig
    b: GraphBuilder
    cluster: Cluster
    model: Model
    roles: list[LayerRole]
    stages: list[tuple[int, int]]
    segments: list[list[Segment]]
    exchanges: frozenset[int]
    host: offload.Host | None
    done: dict[tuple[str, int, int, int], Ends]
    work: dict[int, tuple[str, tuple[int, ...]]]
    last_backward: dict[tuple[int, int, int, int], int]
    first_forward: dict[tuple[int, int, int], int]

    def _synchronise(self, s: int, order: list[Op]) -> None:
        """Bucketed gradient all-reduce over replicas, then the optimizer step; under
        ZeRO (parallel.zero) a reduce-scatter instead, then the update of each rank's
        shard, then (stages 1 and 2) an all-gather of the updated parameters.

        As PyTorch DDP does it (Li et al., "PyTorch Distributed: Experiences on
        Accelerating Data Parallel Training", VLDB 2020, sections 3.2.3 and 4.2):
        buckets fill in reverse layer order as the last micro-batch's backward makes
        the gradients, the later chunks' first (their backward ends earlier); a
        bucket's all-reduce starts when its last gradient is ready, and the buckets
        of one communicator (replicas of a stage and tp rank) run one after another,
        in that order, as NCCL runs collectives issued on one stream."""
        cfg = self.cfg
        reduce = collectives.ring_reduce_scatter if cfg.zero else collectives.ring_allreduce
        buckets = [bucket for chunk in reversed(range(cfg.chunks))
                   for bucket in self._buckets(chunk * cfg.pp + s)]
        replicas = cfg.simulated_replicas()
        for t in cfg.simulated_tp_ranks():
            ranks = [cfg.replica_rank(d, s, t) for d in replicas]
            ends: list[list[int]] = [[] for _ in replicas]
            done: list[int] = []
            for k in zero.reduced_microbatches(cfg.zero, cfg.microbatches):
                for bucket, nbytes in buckets:
                    ready = [self.last_backward[(d, bucket[-1], t, k)] for d in replicas]
                    name = f"dp.s{s}.t{t}.{bucket[0]}" + (f".k{k}" if cfg.zero >= 2 else "")
                    if cfg.replicas > 1:
                        ready = collectives.join(self.b, ready, done, ranks, f"{name}.wait",
                                                 reduce.__name__)
                        done = self._dp_ring(reduce, s, t, nbytes, ready, name)
                    for d in replicas:
                        ends[d].append(done[d] if cfg.replicas > 1 else ready[d])
            self._expert_gradients(s, t, ends)
            updated = [self._update(d, s, t, ends[d], order, buckets) for d in replicas]
            if cfg.overlap_param_gather and cfg.replicas > 1:  # under the next forward
                ahead = buckets[::-1]
                zero.forward_allgathers(
                    self.b, partial(self._dp_ring, collectives.ring_allgather, s, t),
                    [[self.first_forward[(d, min(bucket), t)] for d in replicas]
                     for bucket, _ in ahead],
                    [nbytes for _, nbytes in ahead], f"dp.s{s}.t{t}.gather")
            elif cfg.zero in (1, 2) and cfg.replicas > 1:
                for bucket, nbytes in buckets:  # the updated shards back to every replica
                    updated = self._dp_ring(collectives.ring_allgather, s, t, nbytes, updated,
                                            f"dp.s{s}.t{t}.{bucket[0]}.gather")

    def _dp_ring(self, ring: collectives.Ring, s: int, t: int, nbytes: float,
                 ready: list[int], name: str) -> list[int]:
        """A ring over the replicas of stage s and tp rank t: spelled out, or, mirrored,
        replica 0's side of it (parallel.mirror.ring)."""
        cfg = self.cfg
        if cfg.dp_mode != "mirrored":
            ranks = [cfg.replica_rank(d, s, t) for d in range(cfg.replicas)]
            return collectives.on_rings(ring, self.b, mesh.rings(self.cluster, ranks), ranks,
                                        nbytes, ready, name)
        steps = (cfg.dp - 1) * (2 if ring is collectives.ring_allreduce else 1)
        return [mirror.ring(self.b, cfg.rank(0, s, t), mirror.shadow(cfg, s, t), cfg.dp, nbytes,
                            ready[0], name, ring.__name__, steps)]

    def _expert_gradients(self, s: int, t: int, ends: list[list[int]]) -> None:
        """With expert parallelism, each MoE layer's routed-expert gradients are
        all-reduced (ring) over the dp / ep replicas that hold the same experts (the
        same position in their expert-parallel groups), on a communicator of their own,
        as Megatron-Core's expert data-parallel group; the optimizer waits for them."""
        cfg = self.cfg
        if cfg.ep == 1 or cfg.dp == cfg.ep:
            return
        layers = [i for c in range(cfg.chunks) for i in range(*self.stages[c * cfg.pp + s])
                  if i in self.exchanges]
        share = cfg.tp if cfg.tp_mode == "full" else 1
        for i in layers:
            nbytes = experts.held_expert_params(self.model.layers[i], cfg.ep) * cfg.dtype_bytes
            for j in range(cfg.ep):
                ds = list(range(j, cfg.dp, cfg.ep))
                ranks = [cfg.rank(d, s, t) for d in ds]
                ready = [self.last_backward[(d, i, t, cfg.microbatches - 1)] for d in ds]
                done = collectives.ring_allreduce(self.b, ranks, nbytes / share, ready,
                                                  f"edp.s{s}.t{t}.{i}.e{j}")
                for d, task in zip(ds, done, strict=True):
                    ends[d].append(task)

    def _buckets(self, v: int) -> list[tuple[list[int], float]]:
        """Layers of virtual stage v with parameters, in backward order, grouped until a
        bucket holds bucket_bytes of gradients (DDP closes a bucket at its cap)."""
        cfg = self.cfg
        out: list[tuple[list[int], float]] = []
        bucket: list[int] = []
        size = 0.0
        for seg in reversed(self.segments[v]):
            for i in reversed(seg.layers):
                if not self.model.layers[i].params:  # no gradient: neither fills nor delays a bucket
                    continue
                size += self._param_bytes(i)
                bucket.append(i)
                if size >= cfg.bucket_bytes:
                    out.append((bucket, size))
                    bucket, size = [], 0.0
        if bucket and size > 0:
            out.append((bucket, size))
        return out

    def _param_bytes(self, i: int, gathered: bool = False) -> float:
        """Layer i's parameter (and gradient) bytes on one simulated rank: 1/tp of a split
        layer in full mode; in symmetric mode rank 0 moves its whole group's. Routed
        experts are reduced by expert data parallelism, not here; ZeRO-3 gathers
        (`gathered`) the rank's own experts too, and only those (ASSUMPTION: over the
        stage's dp ring, not the expert data-parallel subgroup that shards them)."""
        share = self.cfg.tp if self.roles[i].sharded and self.cfg.tp_mode == "full" else 1
        layer, ep = self.model.layers[i], self.cfg.ep
        held = experts.replicated_params(layer, ep) + (
            experts.held_expert_params(layer, ep) if gathered and ep > 1 else 0.0)
        return held * self.cfg.dtype_bytes / share

    def _update(self, d: int, s: int, t: int, after: list[int], order: list[Op],
                buckets: list[tuple[list[int], float]]) -> int:
        """The rank's optimizer step: on its GPU, or offloaded to its host."""
        if self.host is None or not self.cfg.offload_optimizer:
            return self._optimizer(d, s, t, after, order)
        kind, k, chunk = order[-1]
        last = self.done[(kind, d, chunk * self.cfg.pp + s, k)][self._tindex(t)][1]
        return offload.cpu_update(self, self.host, d, s, t, after, buckets, last)

    def _optimizer(self, d: int, s: int, t: int, after: list[int], order: list[Op]) -> int:
        """The update after the gradients are in; under ZeRO each rank updates its 1/dp
        shard of the optimizer state (Rajbhandari et al., SC'20, section 5.1)."""
        cfg = self.cfg
        layers = tuple(i for c in range(cfg.chunks) for i in range(*self.stages[c * cfg.pp + s]))
        c = optimizer_cost(self.model, cfg, self.roles, layers)
        shard = cfg.replicas if cfg.zero else 1
        task = self.b.task(f"optimizer.d{d}.s{s}.t{t}", flops=c.flops / shard, nbytes=c.bytes / shard,
                           pin=cfg.replica_rank(d, s, t), kind="optimizer", kernels=c.kernels)
        self.work[task] = ("update", layers)
        kind, k, chunk = order[-1]
        self.b.edge(self.done[(kind, d, chunk * cfg.pp + s, k)][self._tindex(t)][1], task)
        for src in after:
            self.b.edge(src, task)
        return task

    def _tindex(self, t: int) -> int:
        return t if self.cfg.tp_mode == "full" else 0
