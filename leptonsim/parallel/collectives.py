"""Collectives decomposed into point-to-point transfers inside a task graph.

Each function adds zero-duration tasks pinned to the ranks (kind = the function's
name, task names prefixed with `name`) and edges between them. An edge between two
ranks carries the bytes of one message, so the engine turns it into a transfer along
the route (per hop alpha + n/B, FIFO per link direction); an edge on one rank, or of
0 bytes, is a pure dependency. Where nothing contends the simulated time equals the
closed forms in `leptonsim.formulas` exactly (up to float rounding).

`ready[i]` is the task after which rank i's input is available (None: at time 0);
the result `done[i]` is a task on rank i that ends when rank i holds its output.
With p = 1 nothing moves: `done[0]` is `ready[0]` (or one new zero task if None).

Reduction compute is NOT modelled: the element-wise adds of the reducing steps are
assumed hidden behind (or fused with) the transfers, as the closed forms also assume.
An optional `reduce_flops_per_byte` could later add a roofline task per step.
Messages of 0 bytes cost nothing (the engine's pure-dependency rule), so the closed
forms, which charge alpha per message, hold for nbytes > 0.

Sources: Thakur, Rabenseifner & Gropp, "Optimization of collective communication
operations in MPICH", IJHPCA 19(1), 2005 (ring, recursive halving/doubling,
pairwise all-to-all); Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms for
clusters of workstations", JPDC 69(2), 2009 (the ring is bandwidth optimal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import GraphBuilder

Ready = Sequence[int | None]
Ring = Callable[[GraphBuilder, Sequence[int], float, Ready, str], list[int]]
"""ring_allreduce, ring_reduce_scatter or ring_allgather."""


def ring_reduce_scatter(b: GraphBuilder, ranks: Sequence[int], nbytes: float, ready: Ready,
                        name: str) -> list[int]:
    """Ring reduce-scatter of an n-byte buffer per rank: p-1 steps; at step s rank i
    sends a chunk of n/p bytes to rank i+1 (mod p). Rank i ends with one reduced
    n/p chunk. Uncontended time (p-1) alpha + (p-1)/p n/B."""
    p = _check(ranks, nbytes, ready)
    return _ring(b, ranks, nbytes / p, ready, name, "ring_reduce_scatter", p - 1)


def ring_allgather(b: GraphBuilder, ranks: Sequence[int], nbytes: float, ready: Ready,
                   name: str) -> list[int]:
    """Ring all-gather of an n-byte result (each rank contributes n/p bytes): p-1
    steps of n/p-byte chunks to the right neighbour. Time (p-1) alpha + (p-1)/p n/B."""
    p = _check(ranks, nbytes, ready)
    return _ring(b, ranks, nbytes / p, ready, name, "ring_allgather", p - 1)


def ring_allreduce(b: GraphBuilder, ranks: Sequence[int], nbytes: float, ready: Ready,
                   name: str) -> list[int]:
    """Ring all-reduce: reduce-scatter then all-gather, 2(p-1) steps of n/p bytes to
    the right neighbour; each rank sends 2(p-1)/p n bytes. Time 2(p-1) alpha +
    2(p-1)/p n/B on a ring or fully connected duplex topology."""
    p = _check(ranks, nbytes, ready)
    return _ring(b, ranks, nbytes / p, ready, name, "ring_allreduce", 2 * (p - 1))


def halving_doubling_allreduce(b: GraphBuilder, ranks: Sequence[int], nbytes: float,
                               ready: Ready, name: str) -> list[int]:
    """Rabenseifner's all-reduce, p a power of two: a recursive-halving reduce-scatter
    (partners at distance p/2, p/4, ..., 1 exchange n/2, n/4, ..., n/p bytes), then a
    recursive-doubling all-gather (distance 1, 2, ..., p/2; n/p, ..., n/2 bytes).
    Time 2 log2(p) alpha + 2(p-1)/p n/B when every pair has its own duplex link."""
    p = _check(ranks, nbytes, ready)
    if p & (p - 1):
        raise ValueError(f"halving-doubling all-reduce needs a power-of-two number of ranks, got {p}")
    kind = "halving_doubling_allreduce"
    if p == 1:
        return _starts(b, ranks, ready, name, kind, reuse=True)
    k = p.bit_length() - 1
    steps = [(p >> (s + 1), nbytes / (2 << s)) for s in range(k)]       # halving
    steps += [(1 << s, nbytes * (1 << s) / p) for s in range(k)]        # doubling
    prev = _starts(b, ranks, ready, name, kind)
    for s, (distance, size) in enumerate(steps, start=1):
        cur = _step_tasks(b, ranks, name, kind, s)
        for i in range(p):
            b.edge(prev[i], cur[i], 0.0)
            b.edge(prev[i ^ distance], cur[i], size)
        prev = cur
    return prev


def all_to_all(b: GraphBuilder, ranks: Sequence[int], nbytes: float, ready: Ready,
               name: str) -> list[int]:
    """Direct pairwise all-to-all: rank i holds n bytes and sends n/p to every other
    rank, all p-1 messages at once. Time alpha + n/(pB) when each ordered pair has
    its own link direction (fully connected, duplex); on shared links they queue.
    The equal case of `uneven_all_to_all`."""
    _check(ranks, nbytes, ready)
    return uneven_all_to_all(b, ranks, [nbytes] * len(ranks), ready, name)


def uneven_all_to_all(b: GraphBuilder, ranks: Sequence[int], nbytes: Sequence[float],
                      ready: Ready, name: str) -> list[int]:
    """All-to-all where rank i holds its own n_i bytes and sends n_i/p to every other
    rank (a DLRM's table owner sends each rank the rows of its share of the batch; the
    owners hold unequal numbers of tables). Time alpha + max_i n_i/(pB) where each
    ordered pair has its own link direction (formulas.uneven_all_to_all_time): rank j
    waits for the largest message sent to it, and some rank receives the largest of
    all. A rank with nothing to send sends no message."""
    p = _check(ranks, 0.0, ready)
    if len(nbytes) != p or not all(n >= 0 for n in nbytes):
        raise ValueError(f"all-to-all: one size >= 0 per rank needed, got {list(nbytes)}")
    kind = "all_to_all"
    if p == 1:
        return _starts(b, ranks, ready, name, kind, reuse=True)
    start = _starts(b, ranks, ready, name, kind)
    done = _step_tasks(b, ranks, name, kind, 1)
    for j in range(p):
        b.edge(start[j], done[j], 0.0)
        for i in range(p):
            if i != j and nbytes[i] > 0:
                b.edge(start[i], done[j], nbytes[i] / p)
    return done


def hierarchical_allreduce(b: GraphBuilder, groups: Sequence[Sequence[int]], nbytes: float,
                           ready: Sequence[Ready], name: str) -> list[list[int]]:
    """Two-level all-reduce over m groups (nodes) of g ranks each.

    1. intra-group ring reduce-scatter of n bytes (rank l of a group then holds one
       reduced n/g shard, the same shard index in every group);
    2. for each local index l, a ring all-reduce of that n/g shard among the m ranks
       groups[0][l], ..., groups[m-1][l] (g rings at once, sharing node uplinks);
    3. intra-group ring all-gather of n bytes.

    Time on two_level(units, g, intra=(a1, B1), inter=(a2, B2)), groups = nodes, all
    ready at 0 (formulas.hierarchical_allreduce_time). Routes: unit -> node switch ->
    unit is 2 hops, unit -> switch -> spine -> switch -> unit is 4. Let delta =
    a1 + n/(g B1), c = n/(g m), gamma = a1 + c/B1, beta = a2 + c/B2, S = 2(m-1).
    Phases 1 and 3: a step is two hops and each port direction carries one message
    per step, so each takes (g-1) 2 delta. Phase 2: the g rings leave a node through
    its one uplink direction, served FIFO; the last ring's first step ends after
    2 gamma + (g+1) beta, and every later step costs the slower of one ring's round
    (2 gamma + 2 beta) and the uplink's g messages (g beta):
    P2 = 2 gamma + (g+1) beta + (S-1) max(2 gamma + 2 beta, g beta), 0 if m = 1.
    The rings finish beta apart; the total 4 (g-1) delta + P2 is exact when g = 1
    (nothing contends), m = 1, or (g-1) beta <= delta (an early ring's all-gather
    cannot reach a node port before a later ring's last inter message has passed it).
    Otherwise such messages may queue ahead of it, and the formula is a lower bound.
    """
    m, g = _check_groups(groups, nbytes, ready)
    kind = "hierarchical_allreduce"
    shard = nbytes / g
    rs = [_ring(b, grp, shard, ready[k], f"{name}.n{k}.rs", kind, g - 1)
          for k, grp in enumerate(groups)]
    ar = [_ring(b, [grp[loc] for grp in groups], shard / m, [rs[k][loc] for k in range(m)],
                f"{name}.l{loc}.ar", kind, 2 * (m - 1)) for loc in range(g)]
    return [_ring(b, grp, shard, [ar[loc][k] for loc in range(g)], f"{name}.n{k}.ag", kind, g - 1)
            for k, grp in enumerate(groups)]


def join(b: GraphBuilder, ready: Sequence[int], previous: Sequence[int], ranks: Sequence[int],
         name: str, kind: str) -> list[int]:
    """Per rank, `ready` or, after a previous collective on the same communicator, a zero
    task that waits for both: how collectives issued on one NCCL stream queue."""
    if not previous:
        return list(ready)
    out = []
    for i, (r, p) in enumerate(zip(ready, previous, strict=True)):
        task = b.task(f"{name}.r{i}", duration_s=0.0, pin=ranks[i], kind=kind)
        b.edge(r, task)
        b.edge(p, task)
        out.append(task)
    return out


def on_rings(ring: Ring, b: GraphBuilder, orders: Sequence[Sequence[int]], ranks: Sequence[int],
             nbytes: float, ready: Ready, name: str) -> list[int]:
    """A ring collective over `ranks` run as NCCL runs it on several channels: ring c
    goes round `orders[c]` (the same ranks in another order) with nbytes / len(orders)
    of the buffer, all at once (leptonsim.mesh.rings). `ready` and the result are in
    the order of `ranks`; done[i] waits for rank i's part on every ring. One ring in
    the ranks' own order is the ring itself, task for task."""
    if len(orders) == 1 and list(orders[0]) == list(ranks):
        return ring(b, ranks, nbytes, ready, name)
    where = {r: i for i, r in enumerate(ranks)}
    ends: list[list[int]] = [[] for _ in ranks]
    for c, order in enumerate(orders):
        done = ring(b, order, nbytes / len(orders), [ready[where[r]] for r in order],
                    f"{name}.c{c}")
        for r, task in zip(order, done, strict=True):
            ends[where[r]].append(task)
    out = []
    for i, tasks in enumerate(ends):
        task = b.task(f"{name}.r{i}.done", duration_s=0.0, pin=ranks[i], kind=ring.__name__)
        for t in tasks:
            b.edge(t, task)
        out.append(task)
    return out


# -- building blocks ----------------------------------------------------------------

def _ring(b: GraphBuilder, ranks: Sequence[int], chunk: float, ready: Ready, name: str,
          kind: str, steps: int) -> list[int]:
    """`steps` ring steps: task (s, i) waits for its own step s-1 (0 bytes) and for
    the chunk sent by rank i-1 at the end of its step s-1."""
    if steps == 0:
        return _starts(b, ranks, ready, name, kind, reuse=True)
    prev = _starts(b, ranks, ready, name, kind)
    for s in range(1, steps + 1):
        cur = _step_tasks(b, ranks, name, kind, s)
        for i in range(len(ranks)):
            b.edge(prev[i], cur[i], 0.0)
            b.edge(prev[i - 1], cur[i], chunk)
        prev = cur
    return prev


def _starts(b: GraphBuilder, ranks: Sequence[int], ready: Ready, name: str, kind: str,
            reuse: bool = False) -> list[int]:
    """A zero task per rank after its ready task; with reuse, the ready task itself."""
    out = []
    for i, (unit, r) in enumerate(zip(ranks, ready, strict=True)):
        if reuse and r is not None:
            out.append(r)
            continue
        t = b.task(f"{name}.r{i}.s0", duration_s=0.0, pin=unit, kind=kind)
        if r is not None:
            b.edge(r, t, 0.0)
        out.append(t)
    return out


def _step_tasks(b: GraphBuilder, ranks: Sequence[int], name: str, kind: str, s: int) -> list[int]:
    return [b.task(f"{name}.r{i}.s{s}", duration_s=0.0, pin=unit, kind=kind)
            for i, unit in enumerate(ranks)]


def _check(ranks: Sequence[int], nbytes: float, ready: Ready) -> int:
    p = len(ranks)
    if p == 0:
        raise ValueError("a collective needs at least one rank")
    if len(set(ranks)) != p:
        raise ValueError(f"ranks must be distinct units, got {list(ranks)}")
    if len(ready) != p:
        raise ValueError(f"ready has {len(ready)} entries for {p} ranks")
    if not nbytes >= 0:
        raise ValueError(f"nbytes must be >= 0, got {nbytes!r}")
    return p


def _check_groups(groups: Sequence[Sequence[int]], nbytes: float,
                  ready: Sequence[Ready]) -> tuple[int, int]:
    if not groups or any(len(grp) != len(groups[0]) for grp in groups):
        raise ValueError(f"groups must be non-empty and of equal size, got {[len(x) for x in groups]}")
    if len(ready) != len(groups):
        raise ValueError(f"ready has {len(ready)} groups for {len(groups)} groups of ranks")
    _check([u for grp in groups for u in grp], nbytes, [r for rs in ready for r in rs])
    for k, grp in enumerate(groups):
        _check(grp, nbytes, ready[k])
    return len(groups), len(groups[0])
