"""Pipeline parallelism: stage partitioning and per-device schedules.

partition() solves the linear partition problem exactly: split per-layer costs into
contiguous non-empty stages minimising the most expensive stage.

schedule() gives the order in which each pipeline device runs its ops. An op is
("F" | "B", microbatch, chunk); device s's chunk c is virtual stage c * stages + s
(Megatron-LM's layout), so without interleaving virtual stage = device.
- "gpipe": every forward, then every backward, both in microbatch order
  (Huang et al., GPipe, 2019).
- "1f1b": PipeDream-Flush as Megatron-LM runs it without interleaving: device s does
  min(stages - s - 1, m) warm-up forwards, alternates one forward and one backward,
  then drains its backwards (Narayanan et al., SC'21, section 2.2.1).
- "interleaved": Megatron-LM's interleaved 1F1B (SC'21 section 2.2.2;
  megatron/core/pipeline_parallel/schedules.py, forward_backward_pipelining_with_
  interleaving): microbatches go through the chunks in groups of `stages`; device s
  warms up with 2 (stages - s - 1) + (chunks - 1) stages forwards, or with all of them
  when microbatches == stages, as Megatron does.

simulate_order() is a reference list simulation (uniform op times, free
communication) so schedules can be checked without the engine.

The bubble, a device's idle fraction idle / (idle + busy) with busy = m (t_f + t_b),
is formulas.gpipe_bubble_fraction, (p - 1) / (m + p - 1), for GPipe and 1F1B, and
(p - 1) / (v m + p - 1) interleaved. Narayanan et al. report the ratio idle / busy
instead: (p - 1) / m, and (p - 1) / (v m) from bubble time (p - 1)(t_f + t_b) / v;
the fraction is that ratio r as r / (1 + r). tests/test_pipeline.py checks both
against simulate_order.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from itertools import accumulate

Op = tuple[str, int, int]
KINDS = ("gpipe", "1f1b", "interleaved")


class DeadlockError(ValueError):
    """A pipeline order in which no device can run its next op."""


def partition(costs: Sequence[float], stages: int) -> list[tuple[int, int]]:
    """Contiguous [start, end) stages minimising the largest stage cost.

    Exact: a bottleneck DP finds the optimum; then each boundary is placed as early as
    the optimum allows, so ties resolve to the earliest boundaries. O(n stages log n).
    """
    n = len(costs)
    if not 1 <= stages <= n:
        raise ValueError(f"stages must be between 1 and {n} (the number of layers), got {stages}")
    if any(not c >= 0 for c in costs):
        raise ValueError("layer costs must be non-negative numbers")
    prefix = [0.0, *accumulate(float(c) for c in costs)]
    best = _optimal_bottleneck(prefix, stages)
    return _earliest_boundaries(prefix, stages, best)


def partition_at(costs: Sequence[float], starts: Sequence[int], stages: int
                 ) -> list[tuple[int, int]]:
    """`partition`, with stage boundaries only where a stage may start (`starts`, after
    0): the layers between two starts stay on one stage. Megatron-LM assigns whole
    transformer layers to stages (Narayanan et al., SC'21, section 2.2), the embedding
    with the first and the head with the last; with fewer groups than stages, the
    boundaries fall between any two layers."""
    bounds = [0, *(i for i in starts if 0 < i < len(costs)), len(costs)]
    if len(bounds) - 1 < stages:
        return partition(costs, stages)
    prefix = [0.0, *accumulate(float(c) for c in costs)]
    groups = partition([prefix[b] - prefix[a] for a, b in zip(bounds, bounds[1:], strict=False)],
                       stages)
    return [(bounds[a], bounds[b]) for a, b in groups]


def _optimal_bottleneck(prefix: list[float], stages: int) -> float:
    """Minimal largest stage cost, by DP over (stages used, layers covered)."""
    n = len(prefix) - 1
    # f[j]: best bottleneck for the first j layers in r stages (r = 1 here).
    f = [prefix[j] for j in range(n + 1)]
    for r in range(2, stages + 1):
        g = [float("inf")] * (n + 1)
        for j in range(r, n - (stages - r) + 1):
            g[j] = _best_split(f, prefix, r - 1, j)
        f = g
    return f[n]


def _best_split(f: list[float], prefix: list[float], lo: int, j: int) -> float:
    """min over i in [lo, j) of max(f[i], cost(i, j)).

    f is non-decreasing in i and cost(i, j) non-increasing (costs are non-negative and
    rounding is monotone), so the optimum sits where they cross: binary search.
    """
    keys = range(lo, j)
    i = lo + bisect.bisect_left(keys, True, key=lambda t: f[t] >= prefix[j] - prefix[t])
    candidates = [t for t in (i - 1, i) if lo <= t < j]
    return min(max(f[t], prefix[j] - prefix[t]) for t in candidates)


def _earliest_boundaries(prefix: list[float], stages: int, best: float) -> list[tuple[int, int]]:
    n = len(prefix) - 1
    need = _min_parts_of_suffix(prefix, best)
    ranges: list[tuple[int, int]] = []
    start = 0
    for left in range(stages - 1, 0, -1):  # `left` stages still to place after this one
        # Shortest stage whose remainder still splits into `left` parts <= best. need[]
        # falls as end grows, so the first such end is at most where greedy packing
        # would end this stage: its own cost is <= best too.
        end = start + 1
        while not need[end] <= left <= n - end:
            end += 1
        ranges.append((start, end))
        start = end
    ranges.append((start, n))
    return ranges


def _min_parts_of_suffix(prefix: list[float], best: float) -> list[float]:
    """need[j]: fewest stages of cost <= best covering layers j..n (greedy packing)."""
    n = len(prefix) - 1
    need: list[float] = [float("inf")] * (n + 1)
    need[n] = 0
    end = n
    for j in range(n - 1, -1, -1):
        while prefix[end] - prefix[j] > best:  # moves left only: the window shrinks
            end -= 1
        if end > j:
            need[j] = 1 + need[end]
    return need


def schedule(kind: str, stages: int, microbatches: int, chunks: int = 1) -> list[list[Op]]:
    """Per device, the order of its ("F" | "B", microbatch, chunk) ops."""
    _check(kind, stages, microbatches, chunks)
    if kind == "gpipe":
        return [_gpipe(microbatches) for _ in range(stages)]
    if kind == "1f1b":
        return [_one_f_one_b(stages, s, microbatches) for s in range(stages)]
    return [_interleaved(stages, s, microbatches, chunks) for s in range(stages)]


def _check(kind: str, stages: int, microbatches: int, chunks: int) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown pipeline schedule {kind!r}; expected one of {', '.join(KINDS)}")
    for name, value in (("stages", stages), ("microbatches", microbatches), ("chunks", chunks)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if kind != "interleaved" and chunks != 1:
        raise ValueError(f"schedule {kind!r} takes chunks=1, got {chunks}")
    if kind == "interleaved" and microbatches % stages:
        raise ValueError(
            f"interleaved schedule needs microbatches ({microbatches}) to be a multiple of stages ({stages})"
        )


def _gpipe(m: int) -> list[Op]:
    return [("F", k, 0) for k in range(m)] + [("B", k, 0) for k in range(m)]


def _one_f_one_b(p: int, s: int, m: int) -> list[Op]:
    warmup = min(p - s - 1, m)
    order: list[Op] = [("F", k, 0) for k in range(warmup)]
    for k in range(m - warmup):
        order += [("F", warmup + k, 0), ("B", k, 0)]
    return order + [("B", k, 0) for k in range(m - warmup, m)]


def _interleaved(p: int, s: int, m: int, v: int) -> list[Op]:
    total = m * v  # ops of each direction on this device
    # Megatron: with as many microbatches as stages, every forward is a warm-up one
    warmup = total if m == p else min(2 * (p - s - 1) + (v - 1) * p, total)

    def op(i: int, phase: str) -> Op:
        # the i-th forward (backward) runs chunk c of microbatch k; groups of p
        # microbatches go through chunks 0..v-1 forward and v-1..0 backward
        j = i % (p * v)
        chunk = j // p if phase == "F" else v - 1 - j // p
        return (phase, (i // (p * v)) * p + j % p, chunk)

    order = [op(i, "F") for i in range(warmup)]
    for i in range(total - warmup):
        order += [op(warmup + i, "F"), op(i, "B")]
    return order + [op(i, "B") for i in range(total - warmup, total)]


def _dependencies(op: Op, virtual: int, last: int) -> list[tuple[str, int, int]]:
    """(phase, microbatch, virtual stage) keys that must finish before `op` starts."""
    phase, k, _ = op
    if phase == "F":
        return [("F", k, virtual - 1)] if virtual else []
    after = [("B", k, virtual + 1)] if virtual < last else []
    return [("F", k, virtual), *after]


def simulate_order(
    order: Sequence[Sequence[Op]], t_f: float, t_b: float, stages: int, chunks: int = 1
) -> float:
    """Makespan when each device runs its ops strictly in order, each F taking t_f and
    each B t_b, communication free; DeadlockError if the order cannot complete."""
    if len(order) != stages:
        raise ValueError(f"order has {len(order)} devices, expected {stages}")
    last = stages * chunks - 1
    finish: dict[tuple[str, int, int], float] = {}
    clock = [0.0] * stages
    position = [0] * stages
    while any(position[s] < len(order[s]) for s in range(stages)):
        progressed = False
        for s in range(stages):
            while position[s] < len(order[s]):
                op = order[s][position[s]]
                virtual = op[2] * stages + s
                deps = _dependencies(op, virtual, last)
                if any(d not in finish for d in deps):
                    break
                start = max([clock[s], *(finish[d] for d in deps)])
                clock[s] = start + (t_f if op[0] == "F" else t_b)
                finish[(op[0], op[1], virtual)] = clock[s]
                position[s] += 1
                progressed = True
        if not progressed:
            stuck = {s: order[s][position[s]] for s in range(stages) if position[s] < len(order[s])}
            raise DeadlockError(f"pipeline order deadlocks; devices wait at {stuck}")
    return max(clock)
