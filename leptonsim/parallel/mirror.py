"""Data-parallel mirroring: one replica simulated for all of them, exactly.

When nothing distinguishes the dp replicas, each one's step is a translate of replica
0's: the same tasks at the same times on its own units, the same transfers at the same
times on its own channels. `dp_mode = "mirrored"` builds replica 0 only and keeps the
data-parallel rings (DDP's bucketed all-reduces, ZeRO-1/2's reduce-scatters and
all-gathers) spelled out from replica 0's side (`ring`): every step is a task on the
replica-0 rank, as in the full graph, and its chunk goes to a receiving task on the
replica-1 rank of the same stage and tensor-parallel rank (its "shadow", idle
otherwise) along a loop-back route (`routed`): up replica 0's side of the route to
replica 1, down replica 0's side of the route from replica dp - 1. By the translation
symmetry the chunk rank dp-1 sends rank 0 reaches it when rank 0's reaches rank 1, so
the loop carries, on replica 0's channels, exactly the messages out of and into replica
0 of the full step, queued FIFO behind (or ahead of) replica 0's own pipeline
transfers as they are there; and the steps still wait for their unit to be free of
compute, as spelled-out steps do. Nothing is approximated: the mirrored step's
makespan equals the full step's (tests/test_mirror.py, a Hypothesis theorem over dp,
pp, tp, micro-batches, schedules, ZeRO stages, sizes, switch and two-level clusters).

That holds when the channels split into one class per replica, translates of each
other (`obstacle` checks it on the cluster's routes): replica d's own transfers
(pipeline activations and gradients, spelled-out tensor-parallel rings), the half of
each ring route d -> d+1 up to the switch where it turns, and the half of each ring
route d-1 -> d from it, use channels no other replica's class uses, and every such
route has the hops of replica 0's. On a two-level cluster this is the case when each
node holds units of one replica (Llama 3's TP 8 x PP 16 on 8-GPU nodes, Megatron's
runs): the concurrent rings of every stage and tp rank that share a node's uplink are
then all in replica 0's class and share it in the mirrored graph as in the full one.
It is not the case, and `auto` builds every replica, with units not all alike, expert
parallelism (its all-to-alls couple the replicas), ZeRO-3 (parameter all-gathers
beside the reduce-scatters), a hierarchical tensor-parallel all-reduce spelled out, a
node holding two replicas, or ring neighbours near for some and far for others.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import numpy as np

from ..graph import GraphBuilder, TaskGraph
from ..hardware import Cluster
from .config import ParallelConfig

Pair = tuple[int, int]


class MirrorError(ValueError):
    """dp_mode = "mirrored" where the replicas are not interchangeable."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"dp_mode 'mirrored': {reason}")


def resolve(cfg: ParallelConfig, cluster: Cluster) -> ParallelConfig:
    """The configuration with dp_mode "auto" decided: "mirrored" where mirroring is
    exact, else "full". A forced "mirrored" that is not exact raises MirrorError."""
    if cfg.dp_mode == "full":
        return cfg
    why = obstacle(cfg, cluster)
    if why is not None and cfg.dp_mode == "mirrored":
        raise MirrorError(why)
    return replace(cfg, dp_mode="full" if why else "mirrored")


def obstacle(cfg: ParallelConfig, cluster: Cluster) -> str | None:
    """Why replica 0 cannot stand for the others exactly, or None when it can."""
    if cfg.dp == 1:
        return "dp = 1: there is one replica"
    if len(cluster.unit_types) > 1:
        return "the units are not all alike"
    if cfg.ep > 1:
        return "expert parallelism all-to-alls tokens between replicas"
    if cfg.cp > 1:
        return "context parallelism rings K and V between a replica's cp ranks"
    if cfg.zero == 3:
        return "ZeRO-3's parameter all-gathers run beside its reduce-scatters"
    if cfg.tp_mode == "full" and cfg.tp > 1 and cfg.collective == "hierarchical":
        return "a spelled-out hierarchical tensor-parallel all-reduce"
    heights = _heights(cluster)
    owner: dict[int, int] = {}  # channel -> the replica whose class it is in
    turns: set[int] = set()     # where the rings' routes turn: the same hop for every one
    for d in range(cfg.dp):
        for a, b in _own_pairs(cfg, d):
            if (why := _claim(cluster, owner, cluster.route(a, b), d)) is not None:
                return why
        for a, b in _ring_pairs(cfg, d):  # up to the turn: d's; down from it: d + 1's
            halves = _halves(cluster, heights, a, b)
            if halves is None:
                return (f"the ring's route {cluster.units[a].name} -> {cluster.units[b].name} "
                        "turns at no single switch")
            turns.add(len(halves[0]))
            if len(turns) > 1:
                return "the dp rings' routes turn at different hops"
            for half, who in zip(halves, (d, (d + 1) % cfg.dp), strict=True):
                if (why := _claim(cluster, owner, half, who)) is not None:
                    return why
    for d in range(1, cfg.dp):
        mine = [*_own_pairs(cfg, d), *_ring_pairs(cfg, d)]
        first = [*_own_pairs(cfg, 0), *_ring_pairs(cfg, 0)]
        for (a, b), (a0, b0) in zip(mine, first, strict=True):
            if _hops(cluster, a, b) != _hops(cluster, a0, b0):
                return (f"replica {d}'s route {cluster.units[a].name} -> "
                        f"{cluster.units[b].name} differs from replica 0's")
    return None


def _claim(cluster: Cluster, owner: dict[int, int], route: tuple[int, ...], d: int) -> str | None:
    for c in route:
        if owner.setdefault(c, d) != d:
            return f"replicas {owner[c]} and {d} both use channel {cluster.channels[c].name}"
    return None


def _heights(cluster: Cluster) -> list[int]:
    """Per node (units, then switches), its hops from the nearest unit."""
    index = cluster.node_index
    adj: list[list[int]] = [[] for _ in index]
    for link in cluster.links:
        a, b = index[link.a], index[link.b]
        adj[a].append(b)
        adj[b].append(a)
    height = [0 if i < cluster.size else -1 for i in range(len(index))]
    frontier = list(range(cluster.size))
    while frontier:
        nxt = []
        for node in frontier:
            for other in adj[node]:
                if height[other] < 0:
                    height[other] = height[node] + 1
                    nxt.append(other)
        frontier = nxt
    return height


def _halves(cluster: Cluster, heights: list[int], a: int, b: int
            ) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The route from unit a to unit b split where it turns: the channels up to its
    highest switch (a's side) and from it (b's side); None without one such switch."""
    route, index = cluster.route(a, b), cluster.node_index
    nodes, node = [a], a
    for c in route:
        link = cluster.links[cluster.channels[c].link]
        ends = index[link.a], index[link.b]
        node = ends[1] if ends[0] == node else ends[0]
        nodes.append(node)
    inner = [heights[n] for n in nodes[1:-1]]
    if not inner or inner.count(max(inner)) > 1:
        return None
    turn = 1 + inner.index(max(inner))
    return route[:turn], route[turn:]


def routed(cfg: ParallelConfig, cluster: Cluster) -> Cluster:
    """The cluster a step is simulated on: mirrored, with each ring message from replica
    0 to its shadow looped back: up replica 0's side of its route to replica 1, down
    replica 0's side of the route from replica dp - 1, so it queues behind replica 0's
    own transfers both ways, as the messages out of and into replica 0 do in the full
    step (`obstacle` has checked the halves are translates)."""
    if cfg.dp_mode != "mirrored" or not cfg.training:
        return cluster
    heights = _heights(cluster)
    loops: dict[Pair, tuple[int, ...]] = {}
    for s in range(cfg.pp):
        for t in cfg.simulated_tp_ranks():
            r0 = cfg.rank(0, s, t)
            up = _halves(cluster, heights, r0, shadow(cfg, s, t))
            down = _halves(cluster, heights, cfg.rank(cfg.dp - 1, s, t), r0)
            assert up is not None and down is not None  # obstacle found both
            loops[(r0, shadow(cfg, s, t))] = up[0] + down[1]
    return cluster.with_routes(loops)


def _own_pairs(cfg: ParallelConfig, d: int) -> Iterator[Pair]:
    """Replica d's own transfers: between consecutive virtual stages (both ways) and,
    spelled out, its tensor-parallel rings."""
    for v in range(cfg.virtual_stages - 1):
        s, n = v % cfg.pp, (v + 1) % cfg.pp
        for t in cfg.simulated_tp_ranks():
            if s != n:
                yield cfg.rank(d, s, t), cfg.rank(d, n, t)
                yield cfg.rank(d, n, t), cfg.rank(d, s, t)
    if cfg.tp_mode == "full" and cfg.tp > 1:
        for s in range(cfg.pp):
            for t in range(cfg.tp):
                yield cfg.rank(d, s, t), cfg.rank(d, s, (t + 1) % cfg.tp)


def _ring_pairs(cfg: ParallelConfig, d: int) -> Iterator[Pair]:
    """The dp rings' messages replica d sends: to replica d + 1, per stage and tp rank."""
    if cfg.training:
        for s in range(cfg.pp):
            for t in cfg.simulated_tp_ranks():
                yield cfg.rank(d, s, t), cfg.rank((d + 1) % cfg.dp, s, t)


def _hops(cluster: Cluster, a: int, b: int) -> tuple[tuple[float, float, object], ...]:
    """What times (and prices) a route: each hop's latency, bandwidth and link spec."""
    chans = cluster.channels
    return tuple((chans[c].latency_s, chans[c].bandwidth, cluster.links[chans[c].link].spec)
                 for c in cluster.route(a, b))


def shadow(cfg: ParallelConfig, s: int, t: int) -> int:
    """The unit that receives replica 0's ring messages for stage s and tp rank t."""
    return cfg.rank(1, s, t)


def ring(b: GraphBuilder, unit: int, to: int, p: int, nbytes: float, ready: int | None, name: str,
         kind: str, steps: int) -> int:
    """Replica 0's side of a ring collective over p replicas of `steps` steps of n/p
    bytes (collectives._ring, for one rank): step s waits for step s-1 on `unit` and
    for the chunk step s-1 sent to `to`, which by symmetry arrives when the chunk from
    the left neighbour does. Returns the last step's task."""
    prev = b.task(f"{name}.r0.s0", duration_s=0.0, pin=unit, kind=kind)
    if ready is not None:  # None: from the step's start
        b.edge(ready, prev, 0.0)
    for s in range(1, steps + 1):
        got = b.task(f"{name}.r1.s{s}", duration_s=0.0, pin=to, kind=kind)
        b.edge(prev, got, nbytes / p)
        cur = b.task(f"{name}.r0.s{s}", duration_s=0.0, pin=unit, kind=kind)
        b.edge(prev, cur, 0.0)
        b.edge(got, cur, 0.0)
        prev = cur
    return prev


def others_bytes(graph: TaskGraph, cluster: Cluster, cfg: ParallelConfig,
                 collapsed: np.ndarray | None) -> np.ndarray:
    """Per channel, the bytes the replicas not simulated move (their network energy): by
    symmetry dp - 1 times replica 0's transfers, on hops priced as replica 0's, and dp
    times its collapsed tensor-parallel collectives (minus the one already counted)."""
    out = np.zeros(len(cluster.channels)) if collapsed is None else collapsed * cfg.dp
    src, dst = graph.pin[graph.edge_src], graph.pin[graph.edge_dst]
    moving = (src != dst) & (graph.edge_bytes > 0)
    pairs, which = np.unique(np.stack([src[moving], dst[moving]], axis=1), axis=0,
                             return_inverse=True)
    moved = np.bincount(which.ravel(), graph.edge_bytes[moving], minlength=len(pairs))
    for (a, b), nbytes in zip(pairs.tolist(), moved.tolist(), strict=True):
        out[list(cluster.route(a, b))] += (cfg.dp - 1) * nbytes
    return out
