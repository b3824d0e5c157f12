"""The discrete-event loop: arrivals routed to replicas, iterations run back to back.

Two event streams merge in time order: the arrivals (already sorted) and the ends of
iterations (a heap keyed by time, then by a sequence number, so ties resolve the same
way every run). An arrival at the same time as an iteration's end is taken first, so
it can join the next iteration. A replica that ends an iteration plans its next one at
once; with nothing to run it idles until an arrival wakes it. Routing is Vidur's
global scheduler: round robin, or the replica with the fewest unfinished requests
(the lowest index on a tie), or with the fewest KV blocks held (issue 15's least KV
usage; then the fewest unfinished, then the lowest index).
"""

from __future__ import annotations

import heapq
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..errors import SimulationError
from .requests import Requests
from .schedulers import Batch, Replica, Req

Cost = Callable[[int, int, float, float], float]  # IterationCost.seconds


@dataclass
class Iterations:
    """One row per iteration: replica, start, end, requests, tokens, KV blocks held,
    context tokens whose K and V it reads."""

    replica: array = field(default_factory=lambda: array("l"))
    start: array = field(default_factory=lambda: array("d"))
    end: array = field(default_factory=lambda: array("d"))
    batch: array = field(default_factory=lambda: array("l"))
    tokens: array = field(default_factory=lambda: array("l"))
    kv_blocks: array = field(default_factory=lambda: array("l"))
    context: array = field(default_factory=lambda: array("d"))


def route(policy: str, replicas: Sequence[Replica], count: int) -> Replica:
    """The replica the `count`-th request goes to."""
    if policy == "round_robin":
        return replicas[count % len(replicas)]
    if policy == "least_kv":
        return min(replicas, key=lambda r: (r.kv.used, r.outstanding, r.index))
    return min(replicas, key=lambda r: (r.outstanding, r.index))


def simulate(requests: Requests, replicas: Sequence[Replica], routing: str,
             cost: Cost) -> tuple[list[Req], Iterations]:
    """Every request served to its last token; each request's times, every iteration."""
    reqs = [Req(i, float(a), int(p), int(o)) for i, (a, p, o) in
            enumerate(zip(requests.arrival, requests.prompt, requests.output, strict=True))]
    log, seq = Iterations(), 0
    events: list[tuple[float, int, int]] = []
    batches: dict[int, Batch] = {}
    i = 0
    while i < len(reqs) or events:
        if i < len(reqs) and (not events or reqs[i].arrival <= events[0][0]):
            r, t = reqs[i], reqs[i].arrival
            rep = route(routing, replicas, i)
            r.replica = rep.index
            rep.waiting.append(r)
            rep.outstanding += 1
            i += 1
            if rep.busy:
                continue
        else:
            t, _, k = heapq.heappop(events)
            rep = replicas[k]
            _finish(rep, batches.pop(k), t)
        end = _start(rep, t, cost, log)
        if end is not None:
            batches[rep.index] = end[1]
            heapq.heappush(events, (end[0], seq, rep.index))
            seq += 1
    if left := sum(r.generated < r.output for r in reqs):  # build's checks rule it out
        raise SimulationError(f"{left} requests never finished: a replica idled with "
                              "requests waiting that could not be admitted")
    return reqs, log


def _start(rep: Replica, t: float, cost: Cost, log: Iterations) -> tuple[float, Batch] | None:
    """Plan and price rep's next iteration from t; None (idle) if nothing can run."""
    batch = rep.plan()
    rep.busy = bool(batch)
    if not batch:
        return None
    tokens = emits = 0
    pairs = context = 0.0
    for r, q in batch:
        if r.start != r.start:  # NaN: first scheduled now
            r.start = t
        d = r.done
        tokens += q
        emits += d + q == r.prompt + r.generated
        pairs += q * d + q * (q + 1) // 2  # iteration.chunk_pairs, inlined: the hot loop
        context += d + q
    end = t + cost(tokens, emits, pairs, context)
    for col, x in zip((log.replica, log.start, log.end, log.batch, log.tokens, log.kv_blocks,
                       log.context),
                      (rep.index, t, end, len(batch), tokens, rep.kv.used, context),
                      strict=True):
        col.append(x)
    return end, batch


def _finish(rep: Replica, batch: Batch, t: float) -> None:
    """Feed the batch's tokens; a request whose context is complete emits one token,
    and a request with every output token leaves, freeing its blocks."""
    left = False
    for r, q in batch:
        r.done += q
        if r.done == r.prompt + r.generated:
            r.generated += 1
            if r.generated == 1:
                r.first_token = t
            if r.generated == r.output:
                r.finish, r.active, left = t, False, True
                rep.kv.release(r.rid)
                rep.outstanding -= 1
    if left:
        rep.running = [r for r in rep.running if r.active]
