"""The Chrome trace's layers beside the slices (Trace Event Format, Google, 2016:
https://docs.google.com/document/d/1CvAClvFfyA5R-PhYUmn5OOQtYMH4h6I0nSsKchNAySU):

* flow events (``"s"`` start, ``"t"`` step, ``"f"`` finish, one id per arrow) for each
  data dependency that crossed units: producer task -> every hop of its transfer ->
  consumer task. At most MAX_FLOWS arrows (the earliest transfers); above, the rest are
  left out and otherData says how many (an arrow per edge would double a big trace);
* counter events (``"C"``) per link direction: the mean GB/s its transfers carry in
  each of BINS bins of the step (a counter per hop start and end doubled the trace);
* counter events per unit with a memory plan: its planned peak memory by kind, in GB.

Each event's position is on a slice's midpoint, which binds the flow to that slice
(the finish with ``"bp": "e"``, the enclosing slice, as the format allows).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from .trace import Trace
from .trace_view import TraceView

__all__ = ["BINS", "DIGITS", "MAX_FLOWS", "Flows", "link_counters", "memory_counters", "task_args"]

MAX_FLOWS = 2_000
BINS = 200  # counter bins per step: 0.5 % of the makespan each
DIGITS = 6  # significant digits of a counter value: within 5e-6 of it
GB = 1e9
US_PER_S = 1e6


class Flows:
    """The arrows of `trace`: one per (src_task, dst_task) pair of its transfer hops
    whose both tasks ran and that runs forward in time (producer's midpoint <= each
    hop's <= consumer's; a simulated trace always does), earliest first hop first, at
    most `limit`. `row[task]`: the trace row of the task's slice the arrow binds to (its
    earliest, ties by position; -1 where it never ran)."""

    def __init__(self, trace: Trace, limit: int = MAX_FLOWS):
        src = np.asarray(trace.xfer_src_task, np.int64)
        dst = np.asarray(trace.xfer_dst_task, np.int64)
        start = np.asarray(trace.xfer_start, float)
        hmid = (start + np.asarray(trace.xfer_end, float)) / 2
        n = self.n_tasks = len(trace.task_names)
        t_start = np.asarray(trace.task_start, float)
        by_start = np.lexsort((np.arange(len(t_start)), t_start))[::-1]
        self.row = np.full(n, -1, np.int64)
        self.row[np.asarray(trace.task, np.int64)[by_start]] = by_start  # earliest wins
        mid = np.full(n, np.nan)
        ran = self.row >= 0
        mid[ran] = (t_start + np.asarray(trace.task_end, float))[self.row[ran]] / 2
        pair = src * n + dst
        late = (hmid < mid[src]) | (hmid > mid[dst]) | ~ran[src] | ~ran[dst]
        hops = np.flatnonzero(~np.isin(pair, pair[late]))
        hops = hops[np.lexsort((hops, start[hops]))]  # by start, ties by position
        pair = pair[hops]
        _, first = np.unique(pair, return_index=True)
        chosen = np.sort(first)  # positions in `hops` of each pair's first hop, by time
        self.total = len(chosen)
        keep = pair[chosen[:limit]]
        ids = {int(p): i for i, p in enumerate(keep.tolist())}  # pair -> flow id
        self.pair = keep
        mask = np.isin(pair, keep)
        self.hops = hops[mask]  # hop rows of kept arrows, by start
        self.hop_id = np.array([ids[int(p)] for p in pair[mask].tolist()], np.int64)

    def ends(self) -> tuple[np.ndarray, np.ndarray]:
        """(producer task, consumer task) of each arrow, by flow id."""
        return self.pair // self.n_tasks, self.pair % self.n_tasks


def _flow(ph: str, fid: int, pid: int, tid: int, ts: float) -> dict[str, Any]:
    event = {"name": "data", "cat": "dependency", "ph": ph, "id": fid, "pid": pid,
             "tid": tid, "ts": ts}
    if ph == "f":
        event["bp"] = "e"
    return event


def flow_events(flows: Flows, task_slot: dict[int, tuple[int, int, float]],
                hop_slot: Sequence[tuple[int, int, float]]) -> Iterator[dict[str, Any]]:
    """s at the producer, t at each hop, f at the consumer; `task_slot[task]` and
    `hop_slot[k]` (hop k of flows.hops) are (pid, tid, midpoint us) of their slices."""
    src, dst = flows.ends()
    for fid, s in enumerate(src.tolist()):
        yield _flow("s", fid, *task_slot[s])
    for k, fid in enumerate(flows.hop_id.tolist()):
        yield _flow("t", fid, *hop_slot[k])
    for fid, d in enumerate(dst.tolist()):
        yield _flow("f", fid, *task_slot[d])


def link_counters(trace: Trace, pid: int, names: Sequence[str], bins: int = BINS
                  ) -> Iterator[dict[str, Any]]:
    """Per channel with hops, its mean carried GB/s over each of `bins` equal bins of the
    makespan (a hop's bytes spread evenly over its duration; an instant hop's land at
    its end), one event per change of value: at most `bins` events per channel, however
    many hops. The bins' GB/s x width sum to the channel's bytes (to DIGITS digits)."""
    chan = np.asarray(trace.xfer_channel, np.int64)
    edges = np.linspace(0.0, trace.makespan_s, bins + 1)
    width = edges[1] - edges[0]
    if width <= 0:
        return
    for c in np.unique(chan).tolist():
        on = np.flatnonzero(chan == c)
        mean = np.diff(_carried(trace, on, edges)) / width / GB
        mean = np.array([float(f"{v:.{DIGITS}g}") for v in mean.tolist()])  # 1/3 the text
        keep = np.r_[True, mean[1:] != mean[:-1]]
        for ts, v in zip((edges[:-1][keep] * US_PER_S).tolist(), mean[keep].tolist(),
                         strict=True):
            yield {"name": names[c], "ph": "C", "pid": pid, "tid": 0, "ts": ts,
                   "args": {"GB/s": max(v, 0.0)}}


def _carried(trace: Trace, hops: np.ndarray, edges: np.ndarray, chunk: int = 4096
             ) -> np.ndarray:
    """Bytes the hops had carried by each edge: each hop's bytes x the share of its
    duration before the edge, summed `chunk` hops at a time (memory stays flat)."""
    out = np.zeros(len(edges))
    for lo in range(0, len(hops), chunk):
        h = hops[lo:lo + chunk]
        s, e = np.asarray(trace.xfer_start, float)[h], np.asarray(trace.xfer_end, float)[h]
        b = np.asarray(trace.xfer_bytes, float)[h]
        t, dur = edges[:, None], (e - s)[None, :]
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            share = np.where(dur > 0, (t - s[None, :]) / dur, (t >= e[None, :]) * 1.0)
        out += np.clip(share, 0.0, 1.0) @ b
    return out


def memory_counters(view: TraceView, slots: dict[int, tuple[int, int]],
                    names: Sequence[str]) -> Iterator[dict[str, Any]]:
    """At ts 0, each unit's planned peak memory by kind (GB), for units that have a
    track (`slots[u]` = (pid, tid)); the plan is per step, not a time series."""
    for u in sorted(set(view.memory) & set(slots)):
        m = view.memory[u]
        yield {"name": f"{names[u]} memory plan", "ph": "C", "pid": slots[u][0], "tid": 0,
               "ts": 0.0, "args": {"weights GB": m.weights_bytes / GB,
                                   "gradients GB": m.gradients_bytes / GB,
                                   "optimizer GB": m.optimizer_bytes / GB,
                                   "activations GB": m.activations_bytes / GB}}


def task_args(view: TraceView | None, task: int, unit: str) -> dict[str, Any]:
    """A task slice's args: its id and unit, and what the view knows of it (FLOPs and
    bytes where nonzero, phase, layer, micro-batch)."""
    args: dict[str, Any] = {"task": task, "unit": unit}
    if view is None:
        return args
    for key, col in (("flops", view.flops), ("bytes", view.nbytes)):
        if col is not None and col[task] > 0:
            v = float(col[task])
            args[key] = int(v) if v.is_integer() and v < 2**53 else v
    if view.phase is not None:
        args["phase"] = view.phase[task]
    if view.layer is not None and view.layer[task]:
        args["layer"] = view.layer[task]
    if view.microbatch is not None and view.microbatch[task] >= 0:
        args["microbatch"] = int(view.microbatch[task])
    return args
