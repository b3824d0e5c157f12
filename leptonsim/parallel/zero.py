"""ZeRO's communication in the step graph (stages 1 to 3; FSDP is stage 3).

Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training Trillion Parameter
Models", SC'20, sections 5 and 7; Zhao et al., "PyTorch FSDP: Experiences on Scaling
Fully Sharded Data Parallel", VLDB 2023, sections 3.3 and 4. Over the dp replicas of
one stage and tensor-parallel rank (parallel.step builds the rest):

- stage 1 (and Megatron-LM's distributed optimizer): the last micro-batch's gradients
  are reduce-scattered in the DDP buckets, each rank updates its 1/dp shard, and the
  updated parameters are all-gathered, bucket by bucket: (p-1)/p n twice, the volume
  of one all-reduce (ZeRO section 7.2.1).
- stage 2: the same, but every micro-batch's gradients are reduce-scattered as its
  backward makes them, since a rank keeps only its shard of the gradients (DeepSpeed
  reduces after every backward at stages 2 and 3: deepspeedai/DeepSpeed issue 2252).
  With `overlap_param_gather` (Megatron-LM's --overlap-param-gather, distributed
  optimizer only) the all-gather moves under the next step's forward instead: bucket
  by bucket in forward order, each bucket's first forward waiting for its gather, so
  only the first bucket's is exposed (forward_allgathers; a step of the steady state
  starts with the previous update's gathers).
- stage 3 / FSDP FULL_SHARD: no all-gather after the update; instead every forward
  and every backward of every micro-batch all-gathers the parameters of each bucket
  of layers before it runs, prefetched one bucket ahead (prefetched_allgathers), and
  the gradients are reduce-scattered as in stage 2: three (p-1)/p n passes per
  micro-batch, 1.5 all-reduces (ZeRO section 7.2.2; FSDP section 3.3).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from ..graph import GraphBuilder
from . import collectives

Run = tuple[int, float]  # a compute task and the parameter bytes it needs gathered


def reduced_microbatches(stage: int, microbatches: int) -> range:
    """The micro-batches whose gradients are reduced: the last one (gradients
    accumulate locally, DDP's no_sync), or from stage 2 on every one."""
    return range(microbatches) if stage >= 2 else range(microbatches - 1, microbatches)


def buckets(runs: Sequence[Run], bucket_bytes: float) -> list[tuple[int, int, float]]:
    """Consecutive runs as (first index, last index, bytes) groups, closed when they
    hold bucket_bytes of parameters (FSDP's wrapping unit; DeepSpeed's prefetch
    bucket), in execution order: a device's whole step, micro-batch after micro-batch."""
    out: list[tuple[int, int, float]] = []
    first, size = 0, 0.0
    for i, (_, nbytes) in enumerate(runs):
        size += nbytes
        if size >= bucket_bytes or i == len(runs) - 1:
            out.append((first, i, size))
            first, size = i + 1, 0.0
    return out


def prefetched_allgathers(b: GraphBuilder, ranks: Sequence[int], runs: Sequence[Sequence[Run]],
                          bucket_bytes: float, name: str) -> None:
    """Stage 3's parameter all-gathers over `ranks` (one per replica, each with its
    runs in execution order, alike on every replica): bucket j's compute waits for its
    ring all-gather; that all-gather starts once bucket j-1's compute may start (bucket
    j-2's has ended: one bucket ahead, FSDP's forward and backward prefetch, so at most
    two buckets are gathered at once, FSDP's limit_all_gathers) and after bucket j-1's
    all-gather, as collectives on one stream run."""
    groups = buckets(runs[0], bucket_bytes)
    previous: list[int] = []
    for j, (first, _, nbytes) in enumerate(groups):
        if nbytes <= 0:  # nothing to gather (layers without parameters)
            continue
        ready: Sequence[int | None] = previous or [None] * len(ranks)
        if j >= 2:
            ready = collectives.join(b, [replica[groups[j - 2][1]][0] for replica in runs],
                                     previous, ranks, f"{name}.b{j}.wait", "ring_allgather")
        previous = collectives.ring_allgather(b, ranks, nbytes, ready, f"{name}.b{j}")
        for replica, done in zip(runs, previous, strict=True):
            b.edge(done, replica[first][0])


def forward_allgathers(b: GraphBuilder, gather: Callable[[float, Sequence[int | None], str], list[int]],
                       firsts: Sequence[Sequence[int]], sizes: Sequence[float], name: str) -> None:
    """The distributed optimizer's parameter all-gathers overlapped with the forward:
    bucket j (`sizes[j]` bytes, forward order) is all-gathered by `gather(bytes, ready,
    name)` (a ring over the replicas: one end task per replica simulated) from the
    step's start, after bucket j-1's (one stream), and `firsts[j][d]`, replica d's first
    forward task that uses it, waits for it."""
    previous: Sequence[int | None] = [None] * len(firsts[0]) if firsts else []
    for j, nbytes in enumerate(sizes):
        previous = gather(nbytes, previous, f"{name}.b{j}")
        for done, first in zip(previous, firsts[j], strict=True):
            b.edge(done, first)
