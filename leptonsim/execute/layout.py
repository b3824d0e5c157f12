"""Where everything goes before a run starts: workers, lanes and trace channels.

A *lane* is one sender's one-slot shared-memory buffer plus its credit: a worker
writes a tensor into the lane, signals the consumer, and writes the next one only
after the consumer has copied it out and acknowledged. A lane carries one transfer
at a time, in FIFO order, like a channel of the simulator, so the two traces compare
directly (and neither ever shows two transfers overlapping on one channel).

Trace channels: without a cluster, one per ordered worker pair, named "w0→w1" (with
the unit names), the real channels of the shared-memory transport. With a cluster,
a transfer is recorded on the first hop of the cluster's route between the two
units, so measured and simulated channel rows line up; later hops do not appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..graph import TaskGraph
from ..hardware import Cluster


@dataclass(frozen=True)
class Layout:
    worker_of: np.ndarray      # per task
    lane_of_edge: np.ndarray   # per edge; -1 = no transfer (same worker or 0 bytes)
    lane_channel: np.ndarray   # per lane: index into channel_names
    lane_sender: np.ndarray    # per lane: the worker that writes into it
    lane_bytes: np.ndarray     # per lane: the slot size (largest edge it carries)
    unit_names: tuple[str, ...]
    channel_names: tuple[str, ...]

    @property
    def workers(self) -> int:
        return len(self.unit_names)


def plan_layout(graph: TaskGraph, placement: np.ndarray, workers: int | None,
                cluster: Cluster | None, unit_names: Sequence[str] | None) -> Layout:
    placement = _check_placement(graph, placement, workers, cluster)
    count = cluster.size if cluster else workers if workers else int(placement.max(initial=0)) + 1
    names = tuple(unit_names) if unit_names else (
        tuple(u.name for u in cluster.units) if cluster else tuple(f"w{i}" for i in range(count)))
    if len(names) != count:
        raise ValueError(f"{len(names)} unit names for {count} workers")
    src_w, dst_w = placement[graph.edge_src], placement[graph.edge_dst]
    moves = (src_w != dst_w) & (np.rint(graph.edge_bytes) > 0)
    if cluster is None:  # ordered pairs u != v: "w0→w1", "w0→w2", ..., "w1→w0", ...
        channel = src_w * (count - 1) + dst_w - (dst_w > src_w)
        channel_names = tuple(f"{names[u]}→{names[v]}" for u in range(count)
                              for v in range(count) if u != v)
    else:
        channel = np.array([cluster.route(int(u), int(v))[0] if m else -1
                            for u, v, m in zip(src_w, dst_w, moves, strict=True)], np.int64)
        channel_names = tuple(c.name for c in cluster.channels)
    lanes, lane_of = np.unique(channel[moves], return_inverse=True)
    lane_of_edge = np.full(graph.num_edges, -1, np.int64)
    lane_of_edge[moves] = lane_of
    sender = np.zeros(len(lanes), np.int64)
    nbytes = np.zeros(len(lanes), np.int64)
    np.maximum.at(nbytes, lane_of, np.rint(graph.edge_bytes[moves]).astype(np.int64))
    for lane in range(len(lanes)):
        senders = np.unique(src_w[moves][lane_of == lane])
        if senders.size > 1:
            raise ValueError(f"channel {channel_names[lanes[lane]]} would carry data from "
                             f"{senders.size} workers; real execution needs duplex links")
        sender[lane] = senders[0]
    return Layout(placement, lane_of_edge, lanes.astype(np.int64), sender, nbytes,
                  names, channel_names)


def _check_placement(graph: TaskGraph, placement: np.ndarray, workers: int | None,
                     cluster: Cluster | None) -> np.ndarray:
    p = np.asarray(placement)
    if p.shape != (graph.size,) or (p.size and not np.issubdtype(p.dtype, np.integer)):
        raise ValueError(f"placement must be one integer unit per task ({graph.size}), "
                         f"got shape {p.shape} dtype {p.dtype}")
    limit = cluster.size if cluster else workers
    if cluster and workers not in (None, cluster.size):
        raise ValueError(f"workers = {workers} but the cluster has {cluster.size} units")
    if p.size and (p.min() < 0 or (limit is not None and p.max() >= limit)):
        t = int(np.flatnonzero((p < 0) | (p >= (limit or np.inf)))[0])
        raise ValueError(f"task {graph.names[t]} is placed on unit {p[t]}, "
                         f"outside 0..{(limit or 1) - 1} (unplaced tasks need a scheduler)")
    return p.astype(np.int64)
