"""Invariants every trace must satisfy, shared by the engine, execution and golden tests."""

from __future__ import annotations

import numpy as np

from leptonsim.trace import Trace

REL = 1e-9


def _overlaps(resource: np.ndarray, start: np.ndarray, end: np.ndarray) -> bool:
    order = np.lexsort((start, resource))
    r, s, e = resource[order], start[order], end[order]
    same = r[1:] == r[:-1]
    return bool(np.any(same & (s[1:] < e[:-1] - 1e-12 * np.maximum(1, e[:-1]))))


def check_trace_invariants(graph, trace: Trace, exclusive_channels: bool = True) -> None:
    """Every task once; no unit (and, unless links are shared, no link direction) does
    two things at once (a zero-duration task is an instant, run beside the compute as
    NCCL's ring steps are: sim.engine); no task starts before its predecessors end and
    their data has arrived."""
    assert np.array_equal(np.sort(trace.task), np.arange(graph.size))
    busy = trace.task_end > trace.task_start
    assert not _overlaps(trace.task_unit[busy], trace.task_start[busy], trace.task_end[busy])
    if exclusive_channels:
        assert not _overlaps(trace.xfer_channel, trace.xfer_start, trace.xfer_end)
    start, end, unit = (np.empty(graph.size), np.empty(graph.size),
                        np.empty(graph.size, np.int64))
    start[trace.task], end[trace.task], unit[trace.task] = (
        trace.task_start, trace.task_end, trace.task_unit)
    src, dst = graph.edge_src, graph.edge_dst
    assert np.all(start[dst] >= end[src])
    # per (producer, consumer) pair: when its first hop left and its last hop arrived
    pair = trace.xfer_src_task * graph.size + trace.xfer_dst_task
    keys, which = np.unique(pair, return_inverse=True)
    first = np.full(len(keys), np.inf)
    last = np.full(len(keys), -np.inf)
    np.minimum.at(first, which, trace.xfer_start)
    np.maximum.at(last, which, trace.xfer_end)
    moved = (unit[src] != unit[dst]) & (graph.edge_bytes > 0)
    wanted = src[moved] * graph.size + dst[moved]
    assert len(keys) or not len(wanted), "an edge crossed units without a transfer"
    at = np.searchsorted(keys, wanted)
    found = (at < len(keys)) & (keys[np.minimum(at, len(keys) - 1)] == wanted)
    assert found.all(), "an edge crossed units without a transfer"
    assert np.all(first[at] >= end[src[moved]])
    assert np.all(last[at] <= start[dst[moved]])


def ready_times(graph, trace: Trace) -> np.ndarray:
    """Per task id: when its last input was in (producer's end, or last hop's end)."""
    end = np.empty(graph.size)
    end[trace.task] = trace.task_end
    ready = np.zeros(graph.size)
    np.maximum.at(ready, graph.edge_dst, end[graph.edge_src])
    np.maximum.at(ready, trace.xfer_dst_task, trace.xfer_end)
    return ready


def check_work_conserving(graph, trace: Trace) -> None:
    """Between a task's ready time and its start, its unit is never idle."""
    ready = ready_times(graph, trace)
    for u in np.unique(trace.task_unit).tolist():
        mine = trace.task_unit == u
        order = np.argsort(trace.task_start[mine], kind="stable")
        start, end = trace.task_start[mine][order], trace.task_end[mine][order]
        idle_from, idle_to = [0.0, *end[:-1].tolist()], start.tolist()
        gaps = [(a, b) for a, b in zip(idle_from, idle_to, strict=True) if b > a * (1 + REL) + 1e-15]
        for t, s in zip(trace.task[mine].tolist(), trace.task_start[mine].tolist(), strict=True):
            r = ready[t] * (1 + REL)
            assert not [g for g in gaps if g[0] < s and g[1] > r], (
                f"unit {u} idle during {gaps} while task {t} was ready at {ready[t]} (start {s})")
